// The Chat tab: the active branch of the current conversation as message widgets, the reply that
// is streaming, the reply's status and the context gauge, and the input. Every message is saved
// in the ConversationStore as it is sent or finished; replies come from the main window's worker
// (or, for a remote model, from RemoteModels' worker) with the sampling settings and system prompt
// of the SettingsPanel. A remote reply cut in the middle is kept and marked incomplete; while a busy
// server is waited on, the status counts down to the retry.
#pragma once

#include <QPointer>
#include <QWidget>

#include "engine/types.h"

class QLabel;
class QPlainTextEdit;
class QProgressBar;
class QPushButton;
class QScrollArea;
class QVBoxLayout;

namespace wp::ui {

class ConversationStore;
class MessageWidget;
class RemoteModels;
class SettingsPanel;
class WorkerThread;

class ChatPane : public QWidget {
    Q_OBJECT
public:
    ChatPane(WorkerThread& worker, ConversationStore& store, SettingsPanel& settings, QWidget* parent = nullptr);

    // The model that replies (an empty path: none), and whether another one is being loaded. A
    // task-head model (card.chatUnavailable) cannot: the pane says why and takes no messages.
    void setModel(const ModelCard& card);
    void setModelLoading(bool loading) { modelLoading_ = loading; }
    // Where replies of a remote model (card.isRemote()) come from; none: remote models cannot reply.
    void setRemoteModels(RemoteModels* remote);

    qint64 conversation() const { return conversation_; }  // 0: a new chat, not saved yet
    // Shows the stored conversation `id` with its settings and system prompt.
    void showConversation(qint64 id);
    void newConversation();

    void sendMessage(const QString& text);
    // The reply ends with what is on screen now.
    void stopGeneration();
    bool isGenerating() const { return request_ != 0; }
    // Saves the part of a streaming reply shown so far, marked as stopped (the window is closing).
    void keepUnfinishedReply();

    // An error notice at the end of the chat.
    void showError(const QString& message);
    QString lastError() const { return lastError_; }
    QList<MessageWidget*> messageWidgets() const;
    QString draft() const;
    void setDraft(const QString& text);

signals:
    void conversationChanged(qint64 id);  // another conversation is shown, or the new chat was saved
    void conversationsChanged();          // titles or order in the store changed
    void generatingChanged(bool generating);
    void tokenArrived(const QString& text);
    void replyFinished(const QString& text);
    void errorShown(const QString& message);

protected:
    bool eventFilter(QObject* o, QEvent* e) override;

private:
    static QString statsText(const ReplyStats& s);
    void setConversation(qint64 id);
    void renderPath();
    void discard(MessageWidget* w);
    void scrollToBottom();
    void startReply(qint64 userMessageId);
    void cancelRequest();  // request_ on the worker it went to
    void regenerate(qint64 assistantId);
    void editMessage(qint64 id, const QString& text);
    void switchBranch(qint64 id, int delta);
    void saveConversationSettings();
    void updateContextGauge(qint64 used);
    void updateSendButton();

    // Worker results for this pane's reply.
    void onPromptProgress(quint64 id, int done, int total);
    void onToken(quint64 id, const QString& text, const wp::ui::TokenInfo& info);
    void onStats(quint64 id, const wp::ui::ReplyStats& s);
    void onFinished(quint64 id, const QString& text, const wp::ui::ReplyStats& s);
    void onError(quint64 id, const QString& message);
    void onRetrying(quint64 id, int seconds, int attempt, int maxAttempts, const QString& why);

    WorkerThread& worker_;
    ConversationStore& store_;
    SettingsPanel& settings_;
    ModelCard card_;
    bool modelLoading_ = false;
    qint64 conversation_ = 0;
    bool loadingConversation_ = false;  // settings shown for a conversation are not saved back to it
    quint64 request_ = 0;               // the streaming reply's request, 0 when none
    bool requestRemote_ = false;        // request_ is RemoteModels' worker's (its ids are its own)
    RemoteModels* remote_ = nullptr;
    qint64 replyParent_ = 0;            // the user message the streaming reply answers
    bool stopRequested_ = false;        // Stop pressed: tokens still in flight are dropped
    QPointer<MessageWidget> streaming_;
    QString lastError_;

    QLabel* modelLabel_ = nullptr;
    QLabel* unavailable_ = nullptr;  // why this model cannot chat (a task-head model)
    QScrollArea* scroll_ = nullptr;
    QWidget* messagesHost_ = nullptr;
    QVBoxLayout* messagesLayout_ = nullptr;
    QLabel* statusLabel_ = nullptr;
    QLabel* contextLabel_ = nullptr;
    QProgressBar* contextGauge_ = nullptr;
    QPlainTextEdit* input_ = nullptr;
    QPushButton* send_ = nullptr;
};

}  // namespace wp::ui
