// The Attention tab: a text to look at (empty: the current conversation as its chat template
// renders it) and the MaskView with the model's masks, attention weights and KV cache for it.
// The model runs on the main window's worker.
#pragma once

#include <QWidget>

class QLabel;
class QLineEdit;

namespace wp::ui {

class ConversationStore;
class MaskView;
class WorkerThread;

class AttentionTab : public QWidget {
    Q_OBJECT
public:
    AttentionTab(WorkerThread& worker, ConversationStore& store, QWidget* parent = nullptr);

    void setModelPath(const QString& path);  // the model to run
    void setConversation(qint64 id);         // what an empty text stands for (0: nothing yet)

    // Runs the model over `text`, or over the conversation when `text` is empty; emits
    // analysisReady when the view shows the result (or why there is none).
    void analyze(const QString& text);
    // Analyses the conversation again if the text field is empty (the view follows the chat).
    void followConversation();
    bool isAnalyzing() const { return request_ != 0; }
    MaskView* maskView() const { return maskView_; }

signals:
    void analysisReady();

private:
    WorkerThread& worker_;
    ConversationStore& store_;
    QString modelPath_;
    qint64 conversation_ = 0;
    quint64 request_ = 0;
    QLineEdit* text_ = nullptr;
    QLabel* status_ = nullptr;
    MaskView* maskView_ = nullptr;
};

}  // namespace wp::ui
