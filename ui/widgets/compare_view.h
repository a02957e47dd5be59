// Two or three models side by side: one prompt goes to all of them, the replies stream in
// parallel panes (each model on its own worker thread), with per-model stats, how each tokenizer
// splits the prompt, and the same layer's attention mask of each model next to each other. The
// panes scroll sideways in a window too narrow for three mask views. A judge (a one-label reward
// model on its own worker thread) can score each pane's prompt and reply when the replies end.
// Greedy replies of models with one vocabulary are marked where they first part (reply_parting.h),
// every pair of panes that share one. The Divergence mode (DivergenceView) compares two loaded
// models' predictions on one text; its models are freed when the user leaves it. A pane may hold a
// remote model (engine/remote_model_ref.h): its reply streams from RemoteModels' worker; its
// prompt tokens and mask are the server's and not shown, and Divergence does not offer it.
#pragma once

#include <QHash>
#include <QVector>
#include <QWidget>
#include <memory>

#include "engine/judge_thread.h"
#include "engine/types.h"
#include "widgets/reply_parting.h"

class QComboBox;
class QLabel;
class QLineEdit;
class QPushButton;
class QSpinBox;
class QStackedWidget;
class QTabBar;
class QTextBrowser;

namespace wp::ui {

class DivergenceView;
class JudgeBar;
class MaskView;
class RemoteModels;

class CompareView : public QWidget {
    Q_OBJECT
public:
    explicit CompareView(QWidget* parent = nullptr);
    ~CompareView() override;

    static constexpr int kMaxModels = 3;

    // Where remote models' replies come from (the main window's); none: remote models are not offered.
    void setRemoteModels(RemoteModels* remote);
    // Loads `path` into pane `slot` (0..2) on that pane's own worker, in `precision` ("f32",
    // "bf16", "q8", "q4"; empty: the model's default). A remote model's path needs no load.
    void setModel(int slot, const QString& path, const QString& precision = {});
    // Offered in each pane's chooser, under the library's name when `names` has one (an Ollama blob's
    // MODEL:TAG), else the folder's or file's.
    void setCandidateModels(const QStringList& paths, const QHash<QString, QString>& names = {});
    QStringList candidateLabels(int slot) const;         // what pane `slot`'s chooser offers
    void setPrompt(const QString& prompt);
    // Sends the prompt to every loaded model.
    void run();
    void stopAll();
    bool isRunning() const;
    bool isLoading() const;
    int loadedCount() const;
    QString replyText(int slot) const;
    QStringList tokenPieces(int slot) const;
    const ModelCard& card(int slot) const;
    void setMaskLayer(int layer);
    void setMaxTokens(int n);

    // Replies: the panes; Divergence: two loaded models' predictions on one text.
    enum class Mode { Replies, Divergence };
    void setMode(Mode mode);
    Mode mode() const;
    DivergenceView* divergenceView() const { return divergence_; }
    // The divergence text for "Use current conversation": the chat's conversation when the main
    // window has given one (setChatConversation), else the prompt and every pane's reply; one
    // message after another, separated by blank lines.
    QString conversationText() const;
    void setChatConversation(const QList<ChatTurn>& turns);

    // Where pane `slot`'s greedy reply first parts from each other pane's with the same
    // vocabulary: its token indices, earliest first (one per such pane that parted from it).
    QVector<int> partingTokens(int slot) const;
    QString partingText(int slot) const;   // the pane's banner, plain
    QVector<int> replyTokenIds(int slot) const;
    QVector<ReplyToken> replyTokens(int slot) const;  // with their places in the pane's text

    // The judge: reward models offered in "Judge with…"; setJudge loads one on the judge's own
    // worker (empty: no judge), and scores the replies already there when no run is going on.
    void setJudgeCandidates(const QStringList& paths);
    QStringList judgeLabels() const;
    void setJudge(const QString& path);
    QString judgePath() const { return judgeCard_.path; }  // the loaded judge; empty when none
    bool isJudgeLoading() const { return judgeLoadId_ != 0; }
    QString judgeStatus() const;  // the judge bar's line: loading, the judge, or an error
    bool isJudging() const;       // a pane's judgement is pending
    struct Judgement {
        enum class State { None, Pending, Scored, Skipped, Failed } state = State::None;
        double reward = 0;  // the reward head's logit
        double score = 0;   // its sigmoid
        int tokens = 0;
        QString message;    // why it was skipped or failed
    };
    Judgement judgement(int slot) const;
    QString judgementText(int slot) const;  // what the pane shows
    int bestSlot() const;                   // the highest reward among the scored panes; -1: none

protected:
    void closeEvent(QCloseEvent* event) override;

signals:
    void allFinished();
    void modelLoaded(int slot);
    void modelFailed(int slot, const QString& message);
    void judgeLoaded(const QString& path);
    void judgeFailed(const QString& message);
    void judgingFinished();  // every pending judgement has its result

private:
    friend struct CompareViewTestAccess;  // tests feed a pane's reply token by token
    struct Pane;
    // Pane `slot`'s reply: a new run's (cleared, running, a new run id; the id), then what its
    // worker sends for run `id`.
    quint64 startReply(int slot);
    void onReplyToken(int slot, quint64 id, const QString& text, const TokenInfo& info);
    void onReplyFinished(int slot, quint64 id, const QString& text, const ReplyStats& s);
    void onReplyError(int slot, quint64 id, const QString& message);
    void onModelLoaded(Pane& p, const ModelCard& card);
    void onRetrying(Pane& p, int seconds, int attempt, int maxAttempts, const QString& why);
    void updatePane(Pane& p);
    void updateMasks();
    void updateButtons();
    void judgeReplies();
    void cancelJudgements();
    void clearJudgement(Pane& p);
    void showJudgement(Pane& p);
    void onJudgementDone();
    void updatePartings(bool force = false);
    void showParting(Pane& p);
    void updateDivergenceCandidates();

    std::vector<std::unique_ptr<Pane>> panes_;
    // Pair i < j of panes: how many first tokens their replies are known to share, and where
    // they part (-1: not yet). A streamed token resumes the comparison where it stopped.
    struct PairParting {
        int agreed = 0;
        int parted = -1;
    };
    PairParting pairs_[kMaxModels][kMaxModels];
    RemoteModels* remote_ = nullptr;
    QLineEdit* prompt_ = nullptr;
    QPushButton* run_ = nullptr;
    QPushButton* stop_ = nullptr;
    QSpinBox* layer_ = nullptr;
    QSpinBox* maxTokens_ = nullptr;
    QList<ChatTurn> chatConversation_;  // the chat tab's open conversation (setChatConversation)
    QString runPrompt_;    // the prompt of the replies in the panes
    bool runGreedy_ = false;  // the replies took the most probable token each time: they part at a token
    QTabBar* mode_ = nullptr;
    QStackedWidget* pages_ = nullptr;
    DivergenceView* divergence_ = nullptr;
    bool runStopped_ = false;  // Stop pressed during the run: its replies are not judged

    JudgeThread judge_{QStringLiteral("compare-judge")};
    JudgeBar* judgeBar_ = nullptr;
    JudgeCard judgeCard_;
    quint64 judgeLoadId_ = 0;
    QString judgeLoadingPath_;
};

}  // namespace wp::ui
