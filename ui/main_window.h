// The main window: conversations on the left, the chat in the middle, the model card and the
// settings on the right. All model work goes through an InferenceWorker on its own thread.
#pragma once

#include <QMainWindow>
#include <QPointer>
#include <memory>
#include <optional>

#include "engine/worker_thread.h"
#include "engine/types.h"
#include "store/conversation_store.h"

class QLabel;
class QLineEdit;
class QListWidget;
class QMenu;
class QPlainTextEdit;
class QProgressBar;
class QPushButton;
class QScrollArea;
class QTabWidget;
class QVBoxLayout;

namespace wp::ui {

class CompareView;
class MaskView;
class MessageWidget;
class SettingsPanel;

struct AppOptions {
    QString modelPath;     // --model DIR
    QString dataDir;       // where the conversation database lives
    QString settingsFile;  // QSettings file (tests use a private one); empty = the user's
};

class MainWindow : public QMainWindow {
    Q_OBJECT
public:
    explicit MainWindow(const AppOptions& options, QWidget* parent = nullptr);
    ~MainWindow() override;

    // The embedded default model: next to the executable, in the install prefix's data directory,
    // or in the source tree.
    static QString defaultModelPath();

    // For tests and scripting.
    void openModel(const QString& path);
    void sendMessage(const QString& text);
    void stopGeneration();
    bool isGenerating() const { return activeRequest_ != 0; }
    bool isLoading() const { return loadRequest_ != 0; }
    const ModelCard& modelCard() const { return card_; }
    qint64 currentConversation() const { return conversation_; }
    ConversationStore& store() { return store_; }
    QList<MessageWidget*> messageWidgets() const;
    QString lastError() const { return lastError_; }
    SettingsPanel* settingsPanel() const { return settings_; }
    MaskView* maskView() const { return maskView_; }
    CompareView* compareView() const { return compare_; }
    // Shows the attention tab and analyses `text` (empty: the current conversation).
    void analyze(const QString& text = {});
    bool isAnalyzing() const { return analyzeRequest_ != 0; }

signals:
    void modelReady(const wp::ui::ModelCard& card);
    void modelFailed(const QString& message);
    void replyFinished(const QString& text);
    void analysisReady();
    void tokenArrived(const QString& text);

    // To the worker (queued).
    void loadRequested(quint64 id, const QString& path, const QString& precision);
    void generateRequested(quint64 id, const QString& path, const QList<wp::ui::ChatTurn>& turns,
                           const wp::ui::GenerationSettings& settings);
    void analyzeRequested(quint64 id, const QString& path, const QString& text,
                          const QList<wp::ui::ChatTurn>& turns, int layer);

protected:
    void closeEvent(QCloseEvent* e) override;
    void dragEnterEvent(QDragEnterEvent* e) override;
    void dropEvent(QDropEvent* e) override;
    bool eventFilter(QObject* o, QEvent* e) override;

private:
    void buildUi();
    void buildMenus();
    void applyTheme(const QString& theme);
    void refreshConversations();
    void showConversation(qint64 id);
    void newConversation();
    void renderPath();
    void discard(MessageWidget* w);
    void startReply(qint64 parentUserMessage);
    void regenerate(qint64 assistantId);
    void editMessage(qint64 id, const QString& text);
    void switchBranch(qint64 id, int delta);
    void exportConversation(bool markdown);
    void renameConversation();
    void deleteConversation();
    void showError(const QString& message);
    void updateModelCard();
    void updateContextGauge(qint64 used);
    void updateSendButton();
    void rememberRecent(const QString& path);
    void rebuildRecentMenu();
    void saveConversationSettings();
    QString statsText(const ReplyStats& s) const;

    // Worker results.
    void onLoadProgress(quint64 id, double fraction);
    void onModelLoaded(quint64 id, const wp::ui::ModelCard& card);
    void onPromptProgress(quint64 id, int done, int total);
    void onToken(quint64 id, const QString& text, const wp::ui::TokenInfo& info);
    void onStats(quint64 id, const wp::ui::ReplyStats& s);
    void onFinished(quint64 id, const QString& text, const wp::ui::ReplyStats& s);
    void onWorkerError(quint64 id, const QString& message);

    AppOptions options_;
    ConversationStore store_;
    WorkerThread worker_{QStringLiteral("inference")};
    quint64 loadRequest_ = 0;
    QString loadingPath_;
    quint64 activeRequest_ = 0;
    qint64 replyParent_ = 0;
    bool stopRequested_ = false;         // Stop pressed: tokens still in flight are dropped             // the user message the streaming reply answers
    QPointer<MessageWidget> streaming_;
    ModelCard card_;
    qint64 conversation_ = 0;
    QString lastError_;
    bool loadingConversation_ = false;

    QListWidget* conversations_ = nullptr;
    QLineEdit* search_ = nullptr;
    QScrollArea* scroll_ = nullptr;
    QWidget* messagesHost_ = nullptr;
    QVBoxLayout* messagesLayout_ = nullptr;
    QPlainTextEdit* input_ = nullptr;
    QPushButton* send_ = nullptr;
    QLabel* modelButtonLabel_ = nullptr;
    QLabel* statusLabel_ = nullptr;
    QProgressBar* contextGauge_ = nullptr;
    QLabel* contextLabel_ = nullptr;
    QProgressBar* progress_ = nullptr;
    QLabel* cardLabel_ = nullptr;
    SettingsPanel* settings_ = nullptr;
    QMenu* recentMenu_ = nullptr;
    QTabWidget* tabs_ = nullptr;
    MaskView* maskView_ = nullptr;
    QLineEdit* analyzeText_ = nullptr;
    QLabel* analyzeStatus_ = nullptr;
    CompareView* compare_ = nullptr;
    quint64 analyzeRequest_ = 0;
};

}  // namespace wp::ui
