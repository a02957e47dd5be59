#include "widgets/attention_tab.h"

#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QProgressBar>
#include <QPushButton>
#include <QTabWidget>
#include <QVBoxLayout>
#include <algorithm>

#include "engine/remote_model_ref.h"
#include "engine/worker_thread.h"
#include "store/conversation_store.h"
#include "widgets/head_summary_grid.h"
#include "widgets/lens_grid.h"
#include "widgets/mask_view.h"

namespace wp::ui {

namespace {
constexpr int kLensTopK = 5;
}

AttentionTab::AttentionTab(WorkerThread& worker, ConversationStore& store, QWidget* parent)
    : QWidget(parent), worker_(worker), store_(store) {
    auto* layout = new QVBoxLayout(this);
    auto* top = new QHBoxLayout;
    text_ = new QLineEdit(this);
    text_->setObjectName("analyzeText");
    text_->setPlaceholderText(tr("Text to look at (empty: the current conversation)"));
    connect(text_, &QLineEdit::returnPressed, this, [this] { runShown(true); });
    top->addWidget(text_, 1);
    auto* show = new QPushButton(tr("Show"), this);
    connect(show, &QPushButton::clicked, this, [this] { runShown(true); });
    top->addWidget(show);
    progress_ = new QProgressBar(this);
    progress_->setObjectName("analyzeProgress");
    progress_->setMaximumWidth(140);
    progress_->setTextVisible(false);
    progress_->setVisible(false);
    top->addWidget(progress_);
    stop_ = new QPushButton(tr("Stop"), this);
    stop_->setObjectName("analyzeStop");
    stop_->setVisible(false);
    connect(stop_, &QPushButton::clicked, this, &AttentionTab::stop);
    top->addWidget(stop_);
    status_ = new QLabel(this);
    status_->setObjectName("analyzeStatus");
    status_->setWordWrap(true);  // a worker's error can be long: wrap it rather than widen the window
    top->addWidget(status_);
    layout->addLayout(top);

    views_ = new QTabWidget(this);
    views_->setObjectName("attentionViews");
    views_->setDocumentMode(true);
    maskView_ = new MaskView(views_);
    maskView_->setObjectName("maskView");
    views_->addTab(maskView_, tr("Masks && attention"));
    lensGrid_ = new LensGrid(views_);
    lensGrid_->setObjectName("lensGrid");
    views_->addTab(lensGrid_, tr("Logit lens"));
    headGrid_ = new HeadSummaryGrid(views_);
    headGrid_->setObjectName("headSummaryGrid");
    views_->addTab(headGrid_, tr("Head summary"));
    layout->addWidget(views_, 1);
    connect(views_, &QTabWidget::currentChanged, this, [this] { runShown(false); });
    connect(lensGrid_, &LensGrid::windowRequested, this, [this] { runLens(text_->text()); });
    connect(headGrid_, &HeadSummaryGrid::headClicked, this, &AttentionTab::showHead);

    InferenceWorker* w = worker_.worker();
    connect(w, &InferenceWorker::analyzed, this, [this](quint64 id, const MaskViewData& data) {
        if (id != request_) return;
        request_ = 0;
        maskKey_ = maskRequestKey_;
        maskView_->setData(data);
        maskView_->fitToView();
        status_->setText(tr("%1 tokens \u00b7 %2 layers \u00b7 %3 cache steps")
                             .arg(data.tokens.size())
                             .arg(data.layers.size())
                             .arg(data.cacheSteps.size()));
        if (pendingLayer_ >= 0) {
            if (!data.hasAttention(pendingLayer_)) {  // not recorded this time: ask for that layer
                analyze(text_->text());
                return;
            }
            showHead(pendingLayer_, pendingHead_);
        }
        updateBusy();
        emit analysisReady();
    });
    connect(w, &InferenceWorker::lensReady, this, [this](quint64 id, const LensViewData& data) {
        if (id != lensRequest_) return;
        lensRequest_ = 0;
        lensKey_ = lensRequestKey_;
        lensGrid_->setData(data);
        status_->setText(tr("%1 tokens \u00b7 %2 layers read out").arg(data.positions()).arg(data.layers));
        updateBusy();
        emit lensReady();
    });
    connect(w, &InferenceWorker::headsSummarized, this, [this](quint64 id, const HeadSummaryData& data) {
        if (id != headsRequest_) return;
        headsRequest_ = 0;
        headsKey_ = headsRequestKey_;
        headGrid_->setData(data);
        status_->setText(tr("%1 tokens \u00b7 %2 layers \u00d7 %3 heads")
                             .arg(data.positions)
                             .arg(data.layers)
                             .arg(data.heads));
        updateBusy();
        emit headSummaryReady();
    });
    connect(w, &InferenceWorker::analysisProgress, this, [this](quint64 id, double fraction) {
        if (id == lensRequest_ || id == headsRequest_) {
            progress_->setRange(0, 1000);
            progress_->setValue(static_cast<int>(fraction * 1000));
        }
    });
    connect(w, &InferenceWorker::error, this, [this](quint64 id, const QString& message) {
        if (id == 0 || (id != request_ && id != lensRequest_ && id != headsRequest_)) return;
        status_->setText(message);
        if (id == request_) {
            request_ = 0;
            pendingLayer_ = -1;
            updateBusy();
            emit analysisReady();
        } else if (id == lensRequest_) {
            lensRequest_ = 0;
            lensKey_.clear();
            lensGrid_->showMessage(message);
            updateBusy();
            emit lensReady();
        } else if (id == headsRequest_) {
            headsRequest_ = 0;
            headsKey_.clear();
            headGrid_->showMessage(message);
            updateBusy();
            emit headSummaryReady();
        }
    });
}

void AttentionTab::setModelPath(const QString& path) {
    modelPath_ = path;
    if (const auto remote = parseRemoteModelPath(path)) {  // nothing to run here: say why, in every view
        const QString why = remoteViewUnavailable(remoteModelLabel(*remote));
        status_->setText(why);
        maskView_->setData({});
        lensGrid_->showMessage(why);
        headGrid_->showMessage(why);
    }
}
void AttentionTab::setConversation(qint64 id) { conversation_ = id; }

bool AttentionTab::input(const QString& text, QList<ChatTurn>& turns) {
    if (modelPath_.isEmpty()) {
        status_->setText(tr("No model is loaded."));
        return false;
    }
    if (const auto remote = parseRemoteModelPath(modelPath_)) {
        status_->setText(remoteViewUnavailable(remoteModelLabel(*remote)));
        return false;
    }
    if (text.isEmpty() && conversation_)
        for (const StoredMessage& m : store_.activePath(conversation_)) turns.push_back({m.role, m.content});
    if (text.isEmpty() && turns.isEmpty()) {
        status_->setText(tr("Type a text, or chat first: the view shows the conversation's tokens."));
        return false;
    }
    return true;
}

QString AttentionTab::inputKey(const QString& text, const QList<ChatTurn>& turns) const {
    QString key = modelPath_ + QChar(0);
    if (!text.isEmpty()) return key + QStringLiteral("text") + QChar(0) + text;
    for (const ChatTurn& t : turns) key += t.role + QChar(1) + t.content + QChar(0);
    return key;
}

void AttentionTab::analyze(const QString& text) {
    QList<ChatTurn> turns;
    if (!input(text, turns)) return;
    request_ = worker_.nextRequestId();
    maskRequestKey_ = inputKey(text, turns);
    status_->setText(tr("Running the model\u2026"));
    const int layer = pendingLayer_ >= 0 ? pendingLayer_ : maskView_->layer();
    worker_.post(&InferenceWorker::analyze, request_, modelPath_, text, turns, layer);
    updateBusy();
}

void AttentionTab::runLens(const QString& text) {
    QList<ChatTurn> turns;
    if (!input(text, turns)) return;
    const QString key = inputKey(text, turns);
    if (key != lensKey_ && key != lensRequestKey_) lensGrid_->resetWindow();  // a new text: its last positions
    if (lensRequest_ != 0) worker_.cancel(lensRequest_);  // superseded: its readouts are wasted work
    lensRequest_ = worker_.nextRequestId();
    lensRequestKey_ = key;
    if (lensGrid_->data().empty()) lensGrid_->showMessage(tr("Reading out every layer\u2026"));
    status_->setText(tr("Reading out every layer\u2026"));
    worker_.post(&InferenceWorker::lens, lensRequest_, modelPath_, text, turns, lensGrid_->windowFirst(),
                 lensGrid_->windowCount(), kLensTopK);
    updateBusy();
}

void AttentionTab::summarizeHeads(const QString& text) {
    QList<ChatTurn> turns;
    if (!input(text, turns)) return;
    if (headsRequest_ != 0) worker_.cancel(headsRequest_);  // superseded
    headsRequest_ = worker_.nextRequestId();
    headsRequestKey_ = inputKey(text, turns);
    if (headGrid_->data().empty()) headGrid_->showMessage(tr("Recording every layer's attention\u2026"));
    status_->setText(tr("Recording every layer's attention\u2026"));
    worker_.post(&InferenceWorker::summarizeHeads, headsRequest_, modelPath_, text, turns);
    updateBusy();
}

void AttentionTab::runShown(bool always) {
    const QString text = text_->text();
    if (modelPath_.isEmpty() || (text.isEmpty() && !conversation_)) {
        if (always) analyze(text);  // says why there is nothing to show
        return;
    }
    QList<ChatTurn> turns;
    if (text.isEmpty())
        for (const StoredMessage& m : store_.activePath(conversation_)) turns.push_back({m.role, m.content});
    const QString key = inputKey(text, turns);
    switch (view()) {
    case View::Mask: {
        const bool missing = pendingLayer_ >= 0 && !maskView_->data().hasAttention(pendingLayer_);
        if (always || (key != maskKey_ && (!request_ || key != maskRequestKey_)) || (missing && !request_))
            analyze(text);
        else if (pendingLayer_ >= 0 && !request_)
            showHead(pendingLayer_, pendingHead_);
        break;
    }
    case View::Lens:
        if (always || (key != lensKey_ && (!lensRequest_ || key != lensRequestKey_))) runLens(text);
        break;
    case View::Heads:
        if (always || (key != headsKey_ && (!headsRequest_ || key != headsRequestKey_))) summarizeHeads(text);
        break;
    }
}

void AttentionTab::followConversation() {
    if (text_->text().isEmpty() && conversation_) runShown(false);
}

void AttentionTab::stop() {
    if (request_ == 0 && lensRequest_ == 0 && headsRequest_ == 0) return;
    // Each of this tab's own requests; the chat's on the same worker go on.
    for (quint64 id : {request_, lensRequest_, headsRequest_})
        if (id != 0) worker_.cancel(id);
    const bool mask = request_ != 0, lens = lensRequest_ != 0, heads = headsRequest_ != 0;
    request_ = lensRequest_ = headsRequest_ = 0;
    maskRequestKey_.clear();
    lensRequestKey_.clear();
    headsRequestKey_.clear();
    pendingLayer_ = -1;
    status_->setText(tr("Stopped."));
    if (lens && lensGrid_->data().empty()) lensGrid_->showMessage(tr("Stopped."));
    if (heads && headGrid_->data().empty()) headGrid_->showMessage(tr("Stopped."));
    updateBusy();
    if (mask) emit analysisReady();
    if (lens) emit lensReady();
    if (heads) emit headSummaryReady();
}

AttentionTab::View AttentionTab::view() const {
    QWidget* w = views_->currentWidget();
    return w == lensGrid_ ? View::Lens : w == headGrid_ ? View::Heads : View::Mask;
}

void AttentionTab::showView(View v) {
    views_->setCurrentWidget(v == View::Lens ? static_cast<QWidget*>(lensGrid_)
                             : v == View::Heads ? static_cast<QWidget*>(headGrid_)
                                                : static_cast<QWidget*>(maskView_));
}

void AttentionTab::showHead(int layer, int head) {
    maskView_->setMode(MaskView::Mode::Attention);
    const QString key = [&] {
        QList<ChatTurn> turns;
        if (text_->text().isEmpty() && conversation_)
            for (const StoredMessage& m : store_.activePath(conversation_)) turns.push_back({m.role, m.content});
        return inputKey(text_->text(), turns);
    }();
    if (key == maskKey_ && maskView_->data().hasAttention(layer)) {
        pendingLayer_ = pendingHead_ = -1;
        maskView_->setSmallMultiples(false);
        maskView_->setLayer(layer);
        maskView_->setHead(head);
    } else {  // the attention arrives first (runShown asks for it)
        pendingLayer_ = layer;
        pendingHead_ = head;
    }
    if (views_->currentWidget() == maskView_) {
        if (pendingLayer_ >= 0) runShown(false);
    } else {
        views_->setCurrentWidget(maskView_);
    }
}

void AttentionTab::updateBusy() {
    const bool busy = isBusy();
    progress_->setVisible(busy);
    stop_->setVisible(busy);
    if (!busy) return;
    if (!lensRequest_ && !headsRequest_) {
        progress_->setRange(0, 0);  // the mask view's run reports no progress: a busy bar
    } else if (progress_->maximum() == 0) {
        progress_->setRange(0, 1000);
        progress_->setValue(0);
    }
}

}  // namespace wp::ui
