#include "widgets/compare_view.h"

#include <QComboBox>
#include <QFileDialog>
#include <QFileInfo>
#include <QGridLayout>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QPushButton>
#include <QScrollArea>
#include <QSpinBox>
#include <QSplitter>
#include <QTextBrowser>
#include <QTextCursor>
#include <QVBoxLayout>

#include "engine/inference_worker.h"
#include "engine/model_names.h"
#include "engine/worker_thread.h"
#include "widgets/mask_view.h"

namespace wp::ui {

struct CompareView::Pane {
    explicit Pane(int index) : slot(index), worker(QStringLiteral("compare-%1").arg(index)) {}

    int slot = 0;
    WorkerThread worker;
    ModelCard card;
    QString path;
    quint64 loadId = 0, runId = 0, tokenizeId = 0;
    QString text;
    QStringList pieces;
    ReplyStats stats;
    bool running = false;
    bool stopping = false;  // Stop all pressed: the tokens still queued for this run are dropped

    QComboBox* chooser = nullptr;
    QLabel* title = nullptr;
    QTextBrowser* output = nullptr;
    QLabel* statsLabel = nullptr;
    QLabel* tokens = nullptr;
    MaskView* mask = nullptr;
};

namespace {

QString bytesText(double b) {
    if (b >= 1 << 20) return QStringLiteral("%1 MB").arg(b / (1 << 20), 0, 'f', 1);
    return QStringLiteral("%1 KB").arg(b / 1024, 0, 'f', 1);
}

}  // namespace

CompareView::CompareView(QWidget* parent) : QWidget(parent) {
    auto* layout = new QVBoxLayout(this);
    auto* top = new QHBoxLayout;
    prompt_ = new QLineEdit(this);
    prompt_->setObjectName("comparePrompt");
    prompt_->setPlaceholderText(tr("One prompt for every model"));
    connect(prompt_, &QLineEdit::returnPressed, this, &CompareView::run);
    top->addWidget(prompt_, 1);
    top->addWidget(new QLabel(tr("Max tokens"), this));
    maxTokens_ = new QSpinBox(this);
    maxTokens_->setRange(1, 100000);
    maxTokens_->setValue(128);
    top->addWidget(maxTokens_);
    run_ = new QPushButton(tr("Run all"), this);
    run_->setObjectName("compareRun");
    connect(run_, &QPushButton::clicked, this, &CompareView::run);
    top->addWidget(run_);
    stop_ = new QPushButton(tr("Stop all"), this);
    stop_->setObjectName("compareStop");
    connect(stop_, &QPushButton::clicked, this, &CompareView::stopAll);
    top->addWidget(stop_);
    top->addWidget(new QLabel(tr("Mask of layer"), this));
    layer_ = new QSpinBox(this);
    layer_->setRange(0, 999);
    connect(layer_, &QSpinBox::valueChanged, this, [this] { updateMasks(); });
    top->addWidget(layer_);
    layout->addLayout(top);

    // Each pane's MaskView brings its wide toolbar: three side by side would make the window wider
    // than most screens, so the panes scroll sideways when the window is narrower than they need.
    auto* panes = new QWidget;
    auto* grid = new QGridLayout(panes);
    grid->setContentsMargins(0, 0, 0, 0);
    for (int i = 0; i < kMaxModels; ++i) {
        auto p = std::make_unique<Pane>(i);
        Pane* raw = p.get();

        p->chooser = new QComboBox(this);
        p->chooser->setObjectName(QStringLiteral("compareModel%1").arg(i));
        p->chooser->addItem(i < 2 ? tr("Choose a model\u2026") : tr("(optional third model)"));
        connect(p->chooser, &QComboBox::activated, this, [this, raw](int index) {
            QString path = raw->chooser->itemData(index).toString();
            if (path == "open") {
                path = QFileDialog::getExistingDirectory(this, tr("Open a model folder"));
                if (path.isEmpty()) return;
            }
            if (!path.isEmpty()) setModel(raw->slot, path);
        });
        p->title = new QLabel(this);
        p->title->setWordWrap(true);
        p->output = new QTextBrowser(this);
        p->output->setObjectName(QStringLiteral("compareOutput%1").arg(i));
        p->statsLabel = new QLabel(this);
        p->statsLabel->setWordWrap(true);
        p->tokens = new QLabel(this);
        p->tokens->setObjectName(QStringLiteral("compareTokens%1").arg(i));
        p->tokens->setWordWrap(true);
        p->tokens->setTextFormat(Qt::RichText);
        p->mask = new MaskView(this);
        p->mask->setMinimumHeight(220);
        grid->addWidget(p->chooser, 0, i);
        grid->addWidget(p->title, 1, i);
        grid->addWidget(p->output, 2, i);
        grid->addWidget(p->statsLabel, 3, i);
        grid->addWidget(p->tokens, 4, i);
        grid->addWidget(p->mask, 5, i);

        InferenceWorker* w = p->worker.worker();
        connect(w, &InferenceWorker::modelLoaded, this, [this, raw](quint64 id, const ModelCard& card) {
            if (id != raw->loadId) return;
            raw->loadId = 0;
            raw->card = card;
            raw->path = card.path;
            // Show the loaded model in the pane's chooser.
            int index = raw->chooser->findData(card.path);
            if (index < 0) {
                raw->chooser->insertItem(1, card.name, card.path);
                index = 1;
            }
            raw->chooser->setCurrentIndex(index);
            updatePane(*raw);
            updateMasks();
            updateButtons();
            emit modelLoaded(raw->slot);
        });
        connect(w, &InferenceWorker::tokenText, this, [raw](quint64 id, const QString& text, const TokenInfo&) {
            if (id != raw->runId || !raw->running || raw->stopping) return;
            raw->text += text;
            // Appended, not the whole reply set again per token: that grows quadratic, and a fast
            // model's queued tokens would keep the window (and a Stop) behind.
            QTextCursor end(raw->output->document());
            end.movePosition(QTextCursor::End);
            end.insertText(text);
        });
        connect(w, &InferenceWorker::stats, this, [this, raw](quint64 id, const ReplyStats& s) {
            if (id != raw->runId) return;
            raw->stats = s;
            updatePane(*raw);
        });
        connect(w, &InferenceWorker::finished, this, [this, raw](quint64 id, const QString& text, const ReplyStats& s) {
            if (id != raw->runId) return;
            raw->running = false;
            if (s.stopReason != "cancelled") raw->text = text;
            raw->output->setPlainText(raw->text);
            raw->stats = s;
            updatePane(*raw);
            updateButtons();
            if (!isRunning()) emit allFinished();
        });
        connect(w, &InferenceWorker::tokenized, this, [this, raw](quint64 id, const QStringList& pieces) {
            if (id != raw->tokenizeId) return;
            raw->pieces = pieces;
            updatePane(*raw);
            updateMasks();
        });
        connect(w, &InferenceWorker::error, this, [this, raw](quint64 id, const QString& message) {
            if (id == raw->loadId) {
                raw->loadId = 0;
                raw->title->setText(tr("<span style='color:#c0392b'>Could not load: %1</span>").arg(message.toHtmlEscaped()));
                updateButtons();
                emit modelFailed(raw->slot, message);
            } else if (id == raw->runId) {
                raw->running = false;
                raw->output->setPlainText(tr("Error: %1").arg(message));
                updateButtons();
                if (!isRunning()) emit allFinished();
            }
        });
        panes_.push_back(std::move(p));
    }
    auto* scroll = new QScrollArea(this);
    scroll->setObjectName("comparePanes");
    scroll->setFrameShape(QFrame::NoFrame);
    scroll->setWidgetResizable(true);
    scroll->setWidget(panes);
    layout->addWidget(scroll, 1);
    updateButtons();
}

CompareView::~CompareView() = default;

void CompareView::setCandidateModels(const QStringList& paths) {
    for (auto& p : panes_) {
        while (p->chooser->count() > 1) p->chooser->removeItem(1);
        for (const QString& path : paths) p->chooser->addItem(modelDisplayName(path), path);
        p->chooser->addItem(tr("Open a folder\u2026"), QStringLiteral("open"));
    }
}

QStringList CompareView::candidateLabels(int slot) const {
    QStringList out;
    if (slot < 0 || slot >= kMaxModels) return out;
    for (int i = 0; i < panes_[slot]->chooser->count(); ++i) out << panes_[slot]->chooser->itemText(i);
    return out;
}

void CompareView::setModel(int slot, const QString& path) {
    if (slot < 0 || slot >= kMaxModels) return;
    Pane& p = *panes_[slot];
    if (p.running) return;
    p.loadId = p.worker.nextRequestId();
    p.title->setText(tr("Loading %1\u2026").arg(modelDisplayName(path).toHtmlEscaped()));
    p.worker.post(&InferenceWorker::loadModel, p.loadId, path, QString(), QString());
    updateButtons();
}

void CompareView::setPrompt(const QString& prompt) { prompt_->setText(prompt); }

void CompareView::run() {
    const QString prompt = prompt_->text().trimmed();
    if (prompt.isEmpty() || isRunning()) return;
    GenerationSettings settings;
    settings.greedy = true;  // the same prompt, deterministic replies: differences come from the models
    settings.maxNewTokens = maxTokens_->value();
    const QList<ChatTurn> turns = {{"user", prompt}};
    for (auto& pp : panes_) {
        Pane& p = *pp;
        if (p.card.path.isEmpty()) continue;
        p.text.clear();
        p.output->clear();
        p.stats = {};
        p.running = true;
        p.stopping = false;
        p.runId = p.worker.nextRequestId();
        p.tokenizeId = p.worker.nextRequestId();
        p.worker.post(&InferenceWorker::tokenize, p.tokenizeId, p.card.path, prompt);
        p.worker.post(&InferenceWorker::generate, p.runId, p.card.path, turns, settings);
        updatePane(p);
    }
    updateButtons();
}

void CompareView::stopAll() {
    for (auto& p : panes_)
        if (p->running) {
            p->stopping = true;
            p->worker.cancel(p->runId);  // thread-safe
        }
}

bool CompareView::isRunning() const {
    for (const auto& p : panes_)
        if (p->running) return true;
    return false;
}

bool CompareView::isLoading() const {
    for (const auto& p : panes_)
        if (p->loadId) return true;
    return false;
}

int CompareView::loadedCount() const {
    int n = 0;
    for (const auto& p : panes_) n += !p->card.path.isEmpty();
    return n;
}

QString CompareView::replyText(int slot) const { return panes_[slot]->text; }
QStringList CompareView::tokenPieces(int slot) const { return panes_[slot]->pieces; }
const ModelCard& CompareView::card(int slot) const { return panes_[slot]->card; }

void CompareView::setMaskLayer(int layer) { layer_->setValue(layer); }
void CompareView::setMaxTokens(int n) { maxTokens_->setValue(n); }

void CompareView::updatePane(Pane& p) {
    if (p.card.path.isEmpty()) return;
    int sliding = 0;
    for (const LayerInfo& l : p.card.layers) sliding += l.sliding;
    p.title->setText(tr("<b>%1</b> \u00b7 %2 \u00b7 %3 parameters \u00b7 %4 layers (%5 sliding)")
                         .arg(p.card.name.toHtmlEscaped(), p.card.family)
                         .arg(QLocale().toString(p.card.parameters))
                         .arg(p.card.layers.size())
                         .arg(sliding));
    const ReplyStats& s = p.stats;
    p.statsLabel->setText(p.running && s.generatedTokens == 0
                              ? tr("running\u2026")
                              : tr("%1 prompt tokens \u00b7 first token %2 ms \u00b7 %3 tokens/s \u00b7 KV cache %4 \u00b7 %5 tokens")
                                    .arg(s.promptTokens)
                                    .arg(s.timeToFirstTokenMs, 0, 'f', 0)
                                    .arg(s.tokensPerSecond, 0, 'f', 1)
                                    .arg(bytesText(static_cast<double>(s.kvBytes)))
                                    .arg(s.generatedTokens));
    QString chips;
    for (int i = 0; i < p.pieces.size(); ++i)
        chips += QStringLiteral("<span style='background:%1'>%2</span>&#8203;")
                     .arg(i % 2 ? "rgba(120,160,230,0.35)" : "rgba(230,170,90,0.35)", MaskView::visibleToken(p.pieces[i]).toHtmlEscaped());
    p.tokens->setText(p.pieces.isEmpty() ? QString() : tr("%1 tokens: ").arg(p.pieces.size()) + chips);
}

void CompareView::updateMasks() {
    int maxLayers = 0;
    for (auto& pp : panes_) {
        Pane& p = *pp;
        maxLayers = std::max(maxLayers, static_cast<int>(p.card.layers.size()));
        if (p.card.path.isEmpty() || p.pieces.isEmpty()) continue;
        MaskViewData data;
        data.tokens = p.pieces;
        for (const LayerInfo& l : p.card.layers) data.layers.push_back(MaskSpec{true, l.sliding ? l.window : 0});
        data.heads = p.card.heads;
        p.mask->setData(std::move(data));
        p.mask->setMode(MaskView::Mode::Mask);
        p.mask->setSmallMultiples(false);
        p.mask->setLayer(std::min(layer_->value(), static_cast<int>(p.card.layers.size()) - 1));
        p.mask->fitToView();
    }
    layer_->setMaximum(std::max(0, maxLayers - 1));
}

void CompareView::updateButtons() {
    const bool running = isRunning();
    run_->setEnabled(!running && loadedCount() > 0 && !isLoading());
    stop_->setEnabled(running);
    for (auto& p : panes_) p->chooser->setEnabled(!running);
}

}  // namespace wp::ui
