// The Attention tab: a text to look at (empty: the current conversation as its chat template
// renders it) and three views of the model running over it, each its own request to the main
// window's worker: the MaskView (masks, attention weights, KV cache), the LensGrid (each layer's
// prediction, a window of positions at a time) and the HeadSummaryGrid (one number per layer and
// head; a click opens that head in the MaskView). Show runs the view on display; a view shown for
// a text it has not seen yet runs by itself. Progress and Stop while the worker computes.
#pragma once

#include <QList>
#include <QWidget>

#include "engine/types.h"

class QLabel;
class QLineEdit;
class QProgressBar;
class QPushButton;
class QTabWidget;

namespace wp::ui {

class ConversationStore;
class HeadSummaryGrid;
class LensGrid;
class MaskView;
class WorkerThread;

class AttentionTab : public QWidget {
    Q_OBJECT
public:
    enum class View { Mask, Lens, Heads };

    AttentionTab(WorkerThread& worker, ConversationStore& store, QWidget* parent = nullptr);

    void setModelPath(const QString& path);  // the model to run
    void setConversation(qint64 id);         // what an empty text stands for (0: nothing yet)

    // Runs the model over `text`, or over the conversation when `text` is empty; emits
    // analysisReady when the view shows the result (or why there is none).
    void analyze(const QString& text);
    // The logit lens over the lens grid's window of positions; emits lensReady.
    void runLens(const QString& text);
    // Every layer's and head's summary; emits headSummaryReady.
    void summarizeHeads(const QString& text);
    // Runs the shown view again if the text field is empty (the views follow the chat).
    void followConversation();
    // Stops what the tab asked the worker for.
    void stop();

    View view() const;
    void showView(View v);
    // The attention view on one layer and head (what a head-summary click does).
    void showHead(int layer, int head);

    bool isAnalyzing() const { return request_ != 0; }
    bool isBusy() const { return request_ != 0 || lensRequest_ != 0 || headsRequest_ != 0; }
    MaskView* maskView() const { return maskView_; }
    LensGrid* lensGrid() const { return lensGrid_; }
    HeadSummaryGrid* headSummaryGrid() const { return headGrid_; }

signals:
    void analysisReady();
    void lensReady();
    void headSummaryReady();

private:
    // What an empty text stands for: the conversation's turns; false (and a status) when neither.
    bool input(const QString& text, QList<ChatTurn>& turns);
    QString inputKey(const QString& text, const QList<ChatTurn>& turns) const;
    void runShown(bool always);
    void updateBusy();

    WorkerThread& worker_;
    ConversationStore& store_;
    QString modelPath_;
    qint64 conversation_ = 0;
    quint64 request_ = 0;  // the mask view's
    quint64 lensRequest_ = 0;
    quint64 headsRequest_ = 0;
    // What each view shows (inputKey), so a view shown again runs only for a new text.
    QString maskKey_, lensKey_, headsKey_;
    QString maskRequestKey_, lensRequestKey_, headsRequestKey_;
    int pendingLayer_ = -1, pendingHead_ = -1;  // showHead before the attention arrives

    QLineEdit* text_ = nullptr;
    QLabel* status_ = nullptr;
    QProgressBar* progress_ = nullptr;
    QPushButton* stop_ = nullptr;
    QTabWidget* views_ = nullptr;
    MaskView* maskView_ = nullptr;
    LensGrid* lensGrid_ = nullptr;
    HeadSummaryGrid* headGrid_ = nullptr;
};

}  // namespace wp::ui
