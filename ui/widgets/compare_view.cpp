#include "widgets/compare_view.h"
#include "widgets/compare_view_pane.h"

#include <algorithm>
#include <QColor>
#include <QComboBox>
#include <QDir>
#include <QFileDialog>
#include <QFileInfo>
#include <QGridLayout>
#include <QHBoxLayout>
#include <QLabel>
#include <QCloseEvent>
#include <QLineEdit>
#include <QPushButton>
#include <QScrollArea>
#include <QSpinBox>
#include <QSplitter>
#include <QStackedWidget>
#include <QTabBar>
#include <QTextBrowser>
#include <QTextCharFormat>
#include <QTextCursor>
#include <QTextDocument>
#include <QVBoxLayout>

#include "engine/inference_worker.h"
#include "engine/model_names.h"
#include "engine/model_paths.h"
#include "engine/remote_model_ref.h"
#include "engine/remote_models.h"
#include "engine/worker_thread.h"
#include "widgets/divergence_view.h"
#include "widgets/judge_bar.h"
#include "widgets/mask_view.h"
#include "widgets/reply_parting.h"

namespace wp::ui {


namespace {

QString bytesText(double b) {
    if (b >= 1 << 20) return QStringLiteral("%1 MB").arg(b / (1 << 20), 0, 'f', 1);
    return QStringLiteral("%1 KB").arg(b / 1024, 0, 'f', 1);
}

}  // namespace

CompareView::CompareView(QWidget* parent) : QWidget(parent) {
    // Two modes under one switch: the panes' replies, and the divergence of two of their models.
    auto* outer = new QVBoxLayout(this);
    mode_ = new QTabBar(this);
    mode_->setObjectName("compareMode");
    mode_->addTab(tr("Replies"));
    mode_->addTab(tr("Divergence"));
    mode_->setTabToolTip(0, tr("One prompt to every pane's model, the replies side by side"));
    mode_->setTabToolTip(1, tr("Two of the panes' models read one text: where do their predictions part?"));
    mode_->setDocumentMode(true);
    mode_->setExpanding(false);
    outer->addWidget(mode_);
    pages_ = new QStackedWidget(this);
    outer->addWidget(pages_, 1);
    auto* replies = new QWidget(pages_);
    pages_->addWidget(replies);
    divergence_ = new DivergenceView(pages_);
    divergence_->setObjectName("compareDivergence");
    pages_->addWidget(divergence_);
    connect(mode_, &QTabBar::currentChanged, pages_, &QStackedWidget::setCurrentIndex);
    // The divergence models stay while the user is in Divergence mode (a re-run loads nothing)
    // and go when they leave it.
    connect(mode_, &QTabBar::currentChanged, this, [this](int index) {
        if (index != 1) divergence_->release();
    });
    connect(divergence_, &DivergenceView::conversationRequested, this,
            [this] { divergence_->setText(conversationText()); });

    auto* layout = new QVBoxLayout(replies);
    layout->setContentsMargins(0, 0, 0, 0);
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
    judgeBar_ = new JudgeBar(this);
    judgeBar_->setObjectName("compareJudgeBar");
    connect(judgeBar_, &JudgeBar::judgeChosen, this, &CompareView::setJudge);
    layout->addWidget(judgeBar_);

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
            } else if (path == "open-gguf") {
                path = QFileDialog::getOpenFileName(this, tr("Open a GGUF file"), QString(), ggufFileFilter());
                if (path.isEmpty()) return;
            }
            if (!path.isEmpty()) setModel(raw->slot, path);
        });
        p->title = new QLabel(this);
        p->title->setWordWrap(true);
        p->output = new QTextBrowser(this);
        p->output->setObjectName(QStringLiteral("compareOutput%1").arg(i));
        p->verdict = new QLabel(this);
        p->verdict->setObjectName(QStringLiteral("compareVerdict%1").arg(i));
        p->verdict->setWordWrap(true);
        p->verdict->setTextFormat(Qt::RichText);
        p->verdict->setVisible(false);
        p->parting = new QLabel(this);
        p->parting->setObjectName(QStringLiteral("compareParting%1").arg(i));
        p->parting->setWordWrap(true);
        p->parting->setTextFormat(Qt::RichText);
        p->parting->setStyleSheet(QStringLiteral("QLabel { background-color: rgba(245,197,66,0.18); padding: 2px; }"));
        p->parting->setVisible(false);
        p->statsLabel = new QLabel(this);
        p->statsLabel->setWordWrap(true);
        p->tokens = new QLabel(this);
        p->tokens->setObjectName(QStringLiteral("compareTokens%1").arg(i));
        p->tokens->setWordWrap(true);
        p->tokens->setTextFormat(Qt::RichText);
        p->mask = new MaskView(this);
        p->mask->setMinimumHeight(220);
        p->remoteNote = new QLabel(this);
        p->remoteNote->setObjectName(QStringLiteral("compareRemoteNote%1").arg(i));
        p->remoteNote->setWordWrap(true);
        p->remoteNote->setAlignment(Qt::AlignTop | Qt::AlignLeft);
        p->remoteNote->setMargin(8);
        p->remoteNote->setStyleSheet(QStringLiteral("QLabel { background-color: rgba(120,160,230,0.12); border-radius: 4px; }"));
        p->remoteNote->setVisible(false);
        p->remoteNote->setMinimumWidth(260);
        // A pane without a model shows no mask view (it would show nothing): its column stays as
        // narrow as its chooser, and the panes in use share the width.
        p->mask->setVisible(false);
        grid->addWidget(p->chooser, 0, i);
        grid->addWidget(p->title, 1, i);
        grid->addWidget(p->output, 2, i);
        grid->addWidget(p->parting, 3, i);
        grid->addWidget(p->verdict, 4, i);
        grid->addWidget(p->statsLabel, 5, i);
        grid->addWidget(p->tokens, 6, i);
        grid->addWidget(p->mask, 7, i);
        grid->addWidget(p->remoteNote, 7, i);

        InferenceWorker* w = p->worker.worker();
        connect(w, &InferenceWorker::modelLoaded, this, [this, raw](quint64 id, const ModelCard& card) {
            if (id != raw->loadId) return;
            raw->loadId = 0;
            onModelLoaded(*raw, card);
        });
        // The pane's worker's replies count while its run is the local worker's.
        connect(w, &InferenceWorker::tokenText, this, [this, raw](quint64 id, const QString& text, const TokenInfo& info) {
            if (!raw->runRemote) onReplyToken(raw->slot, id, text, info);
        });
        connect(w, &InferenceWorker::stats, this, [this, raw](quint64 id, const ReplyStats& s) {
            if (id != raw->runId || raw->runRemote) return;
            raw->stats = s;
            updatePane(*raw);
        });
        connect(w, &InferenceWorker::finished, this, [this, raw](quint64 id, const QString& text, const ReplyStats& s) {
            if (!raw->runRemote) onReplyFinished(raw->slot, id, text, s);
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
            } else if (!raw->runRemote) {
                onReplyError(raw->slot, id, message);
            }
        });
        panes_.push_back(std::move(p));
    }

    JudgeWorker* jw = judge_.worker();
    connect(jw, &JudgeWorker::loadProgress, this, [this](quint64 id, double f) {
        if (id != judgeLoadId_) return;
        judgeBar_->setState(JudgeBar::State::Loading,
                            tr("Loading %1\u2026 %2%").arg(modelDisplayName(judgeLoadingPath_)).arg(qRound(f * 100)));
    });
    connect(jw, &JudgeWorker::judgeLoaded, this, [this](quint64 id, const JudgeCard& card) {
        if (id != judgeLoadId_) return;
        judgeLoadId_ = 0;
        judgeCard_ = card;
        judgeBar_->showChosen(card.path);
        judgeBar_->setState(JudgeBar::State::Ready,
                            tr("%1, %2 parameters: scores each pane's prompt and reply once all replies end")
                                .arg(card.architecture.isEmpty() ? card.family : card.architecture)
                                .arg(QLocale().toString(card.parameters)));
        emit judgeLoaded(card.path);
        if (!isRunning()) judgeReplies();  // the replies already there, under the new judge
        updateButtons();
    });
    connect(jw, &JudgeWorker::judged, this, [this](quint64 id, const JudgeScore& s) {
        for (auto& p : panes_)
            if (id != 0 && p->judgeId == id) {
                p->judgeId = 0;
                p->judgement.state = Judgement::State::Scored;
                p->judgement.reward = s.reward;
                p->judgement.score = s.score;
                p->judgement.tokens = s.tokens;
                onJudgementDone();
            }
    });
    connect(jw, &JudgeWorker::error, this, [this](quint64 id, const QString& message) {
        if (id == judgeLoadId_) {
            judgeLoadId_ = 0;
            judgeCard_ = {};
            judgeBar_->setState(JudgeBar::State::Failed,
                                tr("Could not use %1 as a judge: %2").arg(modelDisplayName(judgeLoadingPath_), message));
            updateButtons();
            emit judgeFailed(message);
            return;
        }
        for (auto& p : panes_)
            if (id != 0 && p->judgeId == id) {
                p->judgeId = 0;
                p->judgement.state = Judgement::State::Failed;
                p->judgement.message = message;
                onJudgementDone();
            }
    });

    auto* scroll = new QScrollArea(this);
    scroll->setObjectName("comparePanes");
    scroll->setFrameShape(QFrame::NoFrame);
    scroll->setWidgetResizable(true);
    scroll->setWidget(panes);
    layout->addWidget(scroll, 1);
    updateButtons();
}

CompareView::~CompareView() = default;

void CompareView::setRemoteModels(RemoteModels* remote) {
    remote_ = remote;
    if (remote_ == nullptr) return;
    RemoteWorker* w = remote_->thread().worker();
    // One remote worker for every pane: a result goes to the pane whose remote run has its id.
    auto pane = [this](quint64 id) -> Pane* {
        for (auto& p : panes_)
            if (p->runRemote && p->runId == id && id != 0) return p.get();
        return nullptr;
    };
    connect(w, &RemoteWorker::tokenText, this, [this, pane](quint64 id, const QString& text, const TokenInfo& info) {
        if (Pane* p = pane(id)) onReplyToken(p->slot, id, text, info);
    });
    connect(w, &RemoteWorker::stats, this, [this, pane](quint64 id, const ReplyStats& s) {
        if (Pane* p = pane(id)) {
            p->stats = s;
            updatePane(*p);
        }
    });
    connect(w, &RemoteWorker::finished, this, [this, pane](quint64 id, const QString& text, const ReplyStats& s) {
        if (Pane* p = pane(id)) onReplyFinished(p->slot, id, text, s);
    });
    connect(w, &RemoteWorker::error, this, [this, pane](quint64 id, const QString& message) {
        if (Pane* p = pane(id)) onReplyError(p->slot, id, message);
    });
    connect(w, &RemoteWorker::retrying, this,
            [this, pane](quint64 id, int seconds, int attempt, int maxAttempts, const QString& why) {
                if (Pane* p = pane(id)) onRetrying(*p, seconds, attempt, maxAttempts, why);
            });
    connect(remote_, &RemoteModels::keyLoaded, this, [this](const QString& url) {  // "reading the key…" ends
        for (auto& p : panes_)
            if (p->running && p->runRemote && p->card.remoteEndpoint == url) updatePane(*p);
    });
}

void CompareView::onModelLoaded(Pane& p, const ModelCard& card) {
    p.card = card;
    p.path = card.path;
    if (card.isRemote()) p.pieces.clear();  // the server's tokens are not known here
    // Show the loaded model in the pane's chooser.
    int index = p.chooser->findData(card.path);
    if (index < 0) {
        p.chooser->insertItem(1, card.name, card.path);
        index = 1;
    }
    p.chooser->setCurrentIndex(index);
    p.mask->setVisible(!card.isRemote());
    p.remoteNote->setVisible(card.isRemote());
    p.remoteNote->setText(card.isRemote() ? tr("No attention mask: %1 runs on a remote server, which sends only the reply's "
                                               "tokens (with their probabilities when it gives logprobs). The mask, the "
                                               "prompt's tokens and Divergence need a model on this computer.")
                                                .arg(card.name)
                                          : QString());
    updatePane(p);
    updateMasks();
    updateButtons();
    updateDivergenceCandidates();
    emit modelLoaded(p.slot);
}

void CompareView::onRetrying(Pane& p, int seconds, int attempt, int maxAttempts, const QString& why) {
    QString text = tr("The server is busy: trying again in %n s (retry %1 of %2)", nullptr, seconds).arg(attempt).arg(maxAttempts);
    if (!why.isEmpty()) text += QStringLiteral(" \u2014 ") + why;
    p.statsLabel->setText(text);
}

void CompareView::closeEvent(QCloseEvent* event) {
    divergence_->release();  // closed: nobody re-runs a divergence soon
    QWidget::closeEvent(event);
}

// ---- a pane's reply ------------------------------------------------------------------------

quint64 CompareView::startReply(int slot) {
    Pane& p = *panes_[slot];
    p.text.clear();
    p.output->clear();
    p.replyTokens.clear();
    p.stats = {};
    p.running = true;
    p.stopping = false;
    p.ran = true;
    p.failure.clear();
    p.stopReason.clear();
    p.runRemote = p.card.isRemote() && remote_ != nullptr;
    p.runId = p.runRemote ? remote_->thread().nextRequestId() : p.worker.nextRequestId();
    return p.runId;
}

void CompareView::onReplyToken(int slot, quint64 id, const QString& text, const TokenInfo& info) {
    Pane& p = *panes_[slot];
    if (id != p.runId || !p.running || p.stopping) return;
    ReplyToken t{info.id, info.text, info.probability, info.top, 0, 0};
    for (const TokenAlternativeInfo& alt : info.top)
        if (alt.id == info.id) t.piece = alt.text;  // an end-of-turn token by its name
    p.text += text;
    // Appended, not the whole reply set again per token: that grows quadratic, and a fast
    // model's queued tokens would keep the window (and a Stop) behind. In the plain format, not a
    // parting mark's before it. The token's place is the document's: it keeps "\r\n" as one
    // character, so offsets into the text would drift after one; setPlainText of the same text
    // at the end gives the same positions.
    QTextCursor end(p.output->document());
    end.movePosition(QTextCursor::End);
    t.begin = end.position();
    end.insertText(text, QTextCharFormat());
    t.end = end.position();
    p.replyTokens << t;
    updatePartings();
}

void CompareView::onReplyFinished(int slot, quint64 id, const QString& text, const ReplyStats& s) {
    Pane& p = *panes_[slot];
    if (id != p.runId) return;
    p.running = false;
    if (s.stopReason != "cancelled") p.text = text;
    p.output->setPlainText(p.text);
    if (!s.incomplete.isEmpty()) {  // a remote stream cut: the text so far, marked
        QTextCursor end(p.output->document());
        end.movePosition(QTextCursor::End);
        QTextCharFormat mark;
        mark.setForeground(QColor(0xc0, 0x39, 0x2b));
        mark.setFontItalic(true);
        end.insertText(QStringLiteral("\n\n") + tr("(incomplete: %1)").arg(s.incomplete), mark);
    }
    p.stats = s;
    p.stopReason = s.stopReason;
    // Text the decoder held back to the end came with the last token once more: it is that
    // token's text, not another token.
    if (s.generatedTokens > 0 && p.replyTokens.size() > s.generatedTokens) {
        p.replyTokens[s.generatedTokens - 1].end = p.replyTokens.last().end;
        p.replyTokens.resize(s.generatedTokens);
    }
    updatePartings(true);  // the text was set again, without its mark
    updatePane(p);
    if (!isRunning()) judgeReplies();  // before allFinished: a listener sees the judgements pending
    updateButtons();
    if (!isRunning()) emit allFinished();
}

void CompareView::onReplyError(int slot, quint64 id, const QString& message) {
    Pane& p = *panes_[slot];
    if (id != p.runId || id == 0) return;
    p.running = false;
    p.failure = message;
    p.statsLabel->clear();  // no "running…" left behind
    p.output->setPlainText(tr("Error: %1").arg(message));
    updatePartings(true);  // the failed reply parts from nothing, and the others' marks of it go
    if (!isRunning()) judgeReplies();
    updateButtons();
    if (!isRunning()) emit allFinished();
}

void CompareView::setCandidateModels(const QStringList& paths, const QHash<QString, QString>& names) {
    const auto label = [&](const QString& path) {
        if (const auto remote = parseRemoteModelPath(path)) return remoteModelLabel(*remote);
        return names.value(path, modelDisplayName(path));
    };
    for (auto& p : panes_) {
        while (p->chooser->count() > 1) p->chooser->removeItem(1);
        for (const QString& path : paths) p->chooser->addItem(label(path), path);
        p->chooser->addItem(tr("Open a folder\u2026"), QStringLiteral("open"));
        p->chooser->addItem(tr("Open a GGUF file\u2026"), QStringLiteral("open-gguf"));
    }
}

QStringList CompareView::candidateLabels(int slot) const {
    QStringList out;
    if (slot < 0 || slot >= kMaxModels) return out;
    for (int i = 0; i < panes_[slot]->chooser->count(); ++i) out << panes_[slot]->chooser->itemText(i);
    return out;
}

void CompareView::setModel(int slot, const QString& path, const QString& precision) {
    if (slot < 0 || slot >= kMaxModels) return;
    Pane& p = *panes_[slot];
    if (p.running) return;
    // Its reply (and the judgement of it) belongs to the model it replaces: a late score for it
    // no longer matches its id and is dropped; the other panes' judgements go on.
    const bool wasJudging = p.judgeId != 0;
    p.judgeId = 0;
    p.ran = false;
    clearJudgement(p);
    for (auto& other : panes_) showJudgement(*other);  // the best may be another pane now
    if (wasJudging && !isJudging()) onJudgementDone();
    p.replyTokens.clear();
    updatePartings(true);  // its reply no longer parts from anything
    divergence_->release();  // the divergence models may be this pane's old one: freed for the new
    if (const auto remote = parseRemoteModelPath(path)) {  // nothing to load: the server has it
        p.loadId = 0;
        onModelLoaded(p, remoteModelCard(*remote));
        return;
    }
    p.loadId = p.worker.nextRequestId();
    p.title->setText(tr("Loading %1\u2026").arg(modelDisplayName(path).toHtmlEscaped()));
    p.worker.post(&InferenceWorker::loadModel, p.loadId, path, precision, QString());
    updateButtons();
}

void CompareView::setPrompt(const QString& prompt) { prompt_->setText(prompt); }

void CompareView::run() {
    const QString prompt = prompt_->text().trimmed();
    if (prompt.isEmpty() || isRunning()) return;
    cancelJudgements();  // they judge the replies this run replaces
    runPrompt_ = prompt;
    runStopped_ = false;
    GenerationSettings settings;
    settings.greedy = true;  // the same prompt, deterministic replies: differences come from the models
    settings.maxNewTokens = maxTokens_->value();
    runGreedy_ = settings.greedy;
    const QList<ChatTurn> turns = {{"user", prompt}};
    for (auto& pp : panes_) {
        Pane& p = *pp;
        if (p.card.path.isEmpty()) continue;
        startReply(p.slot);
        if (p.card.isRemote()) {
            if (!p.runRemote) {  // no remote backend in this window
                onReplyError(p.slot, p.runId, tr("%1 is a remote model, and this view has no remote backend.").arg(p.card.name));
                continue;
            }
            remote_->generate(p.runId, p.card.path, turns, settings);  // waits for a key being read
        } else {
            p.tokenizeId = p.worker.nextRequestId();
            p.worker.post(&InferenceWorker::tokenize, p.tokenizeId, p.card.path, prompt);
            p.worker.post(&InferenceWorker::generate, p.runId, p.card.path, turns, settings);
        }
        updatePane(p);
    }
    updatePartings(true);
    updateButtons();
}

void CompareView::stopAll() {
    if (isRunning()) runStopped_ = true;  // a stopped run's replies are cut short: not judged
    if (isJudging()) cancelJudgements();
    for (auto& p : panes_)
        if (p->running) {
            p->stopping = true;
            if (p->runRemote) remote_->cancel(p->runId);
            else p->worker.cancel(p->runId);
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
    if (p.card.isRemote()) {
        p.title->setText(tr("<b>%1</b> \u00b7 remote \u00b7 %2").arg(p.card.name.toHtmlEscaped(), p.card.remoteEndpoint.toHtmlEscaped()));
        const ReplyStats& s = p.stats;
        QString stats = p.running && s.generatedTokens == 0
                            ? (remote_ != nullptr && remote_->keyPending(p.card.remoteEndpoint) ? tr("reading the key\u2026")
                                                                                             : tr("waiting for the server\u2026"))
                            : tr("first token %1 ms \u00b7 %2 tokens/s \u00b7 %3 tokens")
                                  .arg(s.timeToFirstTokenMs, 0, 'f', 0)
                                  .arg(s.tokensPerSecond, 0, 'f', 1)
                                  .arg(s.generatedTokens);
        if (s.promptTokens > 0) stats.prepend(tr("%1 prompt tokens \u00b7 ").arg(s.promptTokens));
        if (!s.incomplete.isEmpty()) stats += tr(" \u00b7 incomplete");
        p.statsLabel->setText(stats);
        p.tokens->setText(p.ran ? tr("The prompt's tokens are the server's: its tokenizer is not here.") : QString());
        return;
    }
    int sliding = 0;
    for (const LayerInfo& l : p.card.layers) sliding += l.sliding;
    p.title->setText(tr("<b>%1</b> \u00b7 %2 \u00b7 %6 \u00b7 %3 parameters \u00b7 %4 layers (%5 sliding)")
                         .arg(p.card.name.toHtmlEscaped(), p.card.family)
                         .arg(QLocale().toString(p.card.parameters))
                         .arg(p.card.layers.size())
                         .arg(sliding)
                         .arg(p.card.precision));
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
    stop_->setEnabled(running || isJudging());
    for (auto& p : panes_) p->chooser->setEnabled(!running);
}

// ---- where greedy replies part -------------------------------------------------------------

// Every pair of panes whose greedy replies are of one vocabulary (ModelCard::vocabFingerprint):
// only there a token id means the same in both, and each pane shows where it parts from each
// other pane. A streamed token resumes each pair's comparison where it stopped (pairs_); `force`
// starts every pair again (the replies were set anew, or one was cut or failed) and shows the
// partings again even when nothing changed.
void CompareView::updatePartings(bool force) {
    const auto comparable = [this](const Pane& p) {
        return runGreedy_ && p.ran && !p.card.path.isEmpty() && p.failure.isEmpty() && !p.card.vocabFingerprint.isEmpty();
    };
    std::vector<QVector<Pane::PartsFrom>> partings(panes_.size());
    for (int i = 0; i < kMaxModels; ++i)
        for (int j = i + 1; j < kMaxModels; ++j) {
            PairParting& pair = pairs_[i][j];
            const Pane& a = *panes_[i];
            const Pane& b = *panes_[j];
            if (force || !comparable(a) || !comparable(b) || a.card.vocabFingerprint != b.card.vocabFingerprint) pair = {};
            if (!comparable(a) || !comparable(b) || a.card.vocabFingerprint != b.card.vocabFingerprint) continue;
            if (pair.parted < 0) pair.parted = firstParting(a.replyTokens, b.replyTokens, &pair.agreed);
            if (pair.parted < 0) continue;
            partings[i] << Pane::PartsFrom{j, pair.parted};
            partings[j] << Pane::PartsFrom{i, pair.parted};
        }
    for (auto& p : panes_) {
        QVector<Pane::PartsFrom>& now = partings[p->slot];
        std::stable_sort(now.begin(), now.end(), [](const auto& a, const auto& b) { return a.token < b.token; });
        if (!force && now == p->partings) continue;
        p->partings = now;
        showParting(*p);
    }
}

void CompareView::showParting(Pane& p) {
    QStringList lines;
    QVector<int> marks;
    for (const Pane::PartsFrom& f : p.partings) {
        const Pane& other = *panes_[f.slot];
        lines << partingHtml(tr("pane %1").arg(f.slot + 1), tr("%1, %2").arg(other.card.name, other.card.precision), f.token,
                             p.replyTokens[f.token], other.replyTokens[f.token]);
        marks << f.token;
    }
    p.parting->setText(lines.join(QStringLiteral("<br>")));
    p.parting->setVisible(!lines.isEmpty());
    markPartings(p.output->document(), p.replyTokens, marks);
}

QVector<int> CompareView::partingTokens(int slot) const {
    QVector<int> out;
    if (slot < 0 || slot >= kMaxModels) return out;
    for (const Pane::PartsFrom& f : panes_[slot]->partings) out << f.token;
    return out;
}

QString CompareView::partingText(int slot) const {
    if (slot < 0 || slot >= kMaxModels || panes_[slot]->partings.isEmpty()) return {};
    QTextDocument doc;
    doc.setHtml(panes_[slot]->parting->text());
    return doc.toPlainText();
}

QVector<ReplyToken> CompareView::replyTokens(int slot) const {
    return slot >= 0 && slot < kMaxModels ? panes_[slot]->replyTokens : QVector<ReplyToken>();
}

QVector<int> CompareView::replyTokenIds(int slot) const {
    QVector<int> out;
    if (slot < 0 || slot >= kMaxModels) return out;
    for (const ReplyToken& t : panes_[slot]->replyTokens) out << t.id;
    return out;
}

// ---- divergence mode -----------------------------------------------------------------------

void CompareView::setMode(Mode mode) { mode_->setCurrentIndex(mode == Mode::Divergence ? 1 : 0); }

CompareView::Mode CompareView::mode() const { return mode_->currentIndex() == 1 ? Mode::Divergence : Mode::Replies; }

void CompareView::updateDivergenceCandidates() {
    QList<DivergenceView::Candidate> candidates;
    for (const auto& p : panes_)
        if (!p->card.path.isEmpty() && !p->card.isTaskHead() && !p->card.isRemote())  // remote: no logits here
            candidates.push_back({p->slot, p->card.name, p->card.path, p->card.precision});
    divergence_->setCandidates(candidates);
}

void CompareView::setChatConversation(const QList<ChatTurn>& turns) { chatConversation_ = turns; }

QString CompareView::conversationText() const {
    QStringList parts;
    for (const ChatTurn& t : chatConversation_)
        if (!t.content.trimmed().isEmpty()) parts << t.content.trimmed();
    if (!parts.isEmpty()) return parts.join(QStringLiteral("\n\n"));
    const QString prompt = runPrompt_.isEmpty() ? prompt_->text().trimmed() : runPrompt_;
    if (!prompt.isEmpty()) parts << prompt;
    for (const auto& p : panes_)
        if (p->ran && !p->text.trimmed().isEmpty()) parts << p->text.trimmed();
    return parts.join(QStringLiteral("\n\n"));
}

}  // namespace wp::ui
