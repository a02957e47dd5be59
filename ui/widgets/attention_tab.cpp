#include "widgets/attention_tab.h"

#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QPushButton>
#include <QVBoxLayout>

#include "engine/worker_thread.h"
#include "store/conversation_store.h"
#include "widgets/mask_view.h"

namespace wp::ui {

AttentionTab::AttentionTab(WorkerThread& worker, ConversationStore& store, QWidget* parent)
    : QWidget(parent), worker_(worker), store_(store) {
    auto* layout = new QVBoxLayout(this);
    auto* top = new QHBoxLayout;
    text_ = new QLineEdit(this);
    text_->setObjectName("analyzeText");
    text_->setPlaceholderText(tr("Text to look at (empty: the current conversation)"));
    connect(text_, &QLineEdit::returnPressed, this, [this] { analyze(text_->text()); });
    top->addWidget(text_, 1);
    auto* show = new QPushButton(tr("Show"), this);
    connect(show, &QPushButton::clicked, this, [this] { analyze(text_->text()); });
    top->addWidget(show);
    status_ = new QLabel(this);
    status_->setObjectName("analyzeStatus");
    status_->setWordWrap(true);  // a worker's error can be long: wrap it rather than widen the window
    top->addWidget(status_);
    layout->addLayout(top);
    maskView_ = new MaskView(this);
    maskView_->setObjectName("maskView");
    layout->addWidget(maskView_, 1);

    InferenceWorker* w = worker_.worker();
    connect(w, &InferenceWorker::analyzed, this, [this](quint64 id, const MaskViewData& data) {
        if (id != request_) return;
        request_ = 0;
        maskView_->setData(data);
        maskView_->fitToView();
        status_->setText(tr("%1 tokens \u00b7 %2 layers \u00b7 %3 cache steps")
                             .arg(data.tokens.size())
                             .arg(data.layers.size())
                             .arg(data.cacheSteps.size()));
        emit analysisReady();
    });
    connect(w, &InferenceWorker::error, this, [this](quint64 id, const QString& message) {
        if (id != request_) return;
        request_ = 0;
        status_->setText(message);
        emit analysisReady();
    });
}

void AttentionTab::setModelPath(const QString& path) { modelPath_ = path; }
void AttentionTab::setConversation(qint64 id) { conversation_ = id; }

void AttentionTab::analyze(const QString& text) {
    if (modelPath_.isEmpty()) {
        status_->setText(tr("No model is loaded."));
        return;
    }
    QList<ChatTurn> turns;
    if (text.isEmpty() && conversation_)
        for (const StoredMessage& m : store_.activePath(conversation_)) turns.push_back({m.role, m.content});
    if (text.isEmpty() && turns.isEmpty()) {
        status_->setText(tr("Type a text, or chat first: the view shows the conversation's tokens."));
        return;
    }
    request_ = worker_.nextRequestId();
    status_->setText(tr("Running the model\u2026"));
    worker_.post(&InferenceWorker::analyze, request_, modelPath_, text, turns, maskView_->layer());
}

void AttentionTab::followConversation() {
    if (text_->text().isEmpty() && conversation_) analyze({});
}

}  // namespace wp::ui
