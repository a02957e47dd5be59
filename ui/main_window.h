// The main window: conversations on the left; the Chat, Attention and Compare tabs in the middle;
// the model card and the settings docked on the right. It assembles those parts, owns the
// conversation store and the worker thread that all model work of the Chat and Attention tabs
// goes through, loads models (File menu, drops, recent models) and remembers its size and dock
// layout. It opens at a size that fits the screen. Remote models (File → Add Endpoint…) come from
// its RemoteModels: "opening" one only makes it the chat's model; nothing loads here.
#pragma once

#include <QMainWindow>
#include <QHash>
#include <QSet>

#include "app_settings.h"
#include "engine/hub_thread.h"
#include "engine/remote_models.h"
#include "engine/types.h"
#include "engine/worker_thread.h"
#include "store/conversation_store.h"

class QMenu;
class QProgressBar;
class QTabWidget;

namespace wp::ui {

class AddEndpointDialog;
class AttentionTab;
class ChatPane;
class ClassifyTab;
class CompareView;
class ConversationList;
class GetModelsDialog;
class ModelLibraryDialog;
class MaskView;
class MessageWidget;
class ModelCardView;
class SettingsPanel;

struct AppOptions {
    QString modelPath;     // --model DIR
    QString dataDir;       // where the conversation database lives
    QString settingsFile;  // QSettings file (tests use a private one); empty = the user's
    std::shared_ptr<KeyStore> keyStore;  // the API keys' store; null = the platform's secret store
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
    bool isGenerating() const;
    bool isLoading() const { return loadRequest_ != 0; }
    const ModelCard& modelCard() const { return card_; }
    qint64 currentConversation() const;
    ConversationStore& store() { return store_; }
    QList<MessageWidget*> messageWidgets() const;
    QString lastError() const;
    SettingsPanel* settingsPanel() const { return settings_; }
    MaskView* maskView() const;
    CompareView* compareView() const { return compare_; }
    // Shown (and selected) instead of chat while a task-head model is loaded.
    ClassifyTab* classifyTab() const { return classify_; }
    // Shows the attention tab and analyses `text` (empty: the current conversation).
    void analyze(const QString& text = {});
    bool isAnalyzing() const;
    // File → Model Library and Get Models (one of each, kept: downloads go on while it is closed).
    ModelLibraryDialog* showLibrary();
    GetModelsDialog* showGetModels();
    // File → Add Endpoint… (one, kept), and the endpoints and their models.
    AddEndpointDialog* showAddEndpoint();
    RemoteModels& remoteModels() { return remote_; }
    // The chat models the library listed last (the compare view offers them).
    const QStringList& libraryModels() const { return libraryModels_; }

signals:
    void modelReady(const wp::ui::ModelCard& card);
    void modelFailed(const QString& message);
    void replyFinished(const QString& text);
    void analysisReady();
    void tokenArrived(const QString& text);

protected:
    void closeEvent(QCloseEvent* e) override;
    void dragEnterEvent(QDragEnterEvent* e) override;
    void dropEvent(QDropEvent* e) override;

private:
    void buildUi();
    void buildMenus();
    void openStore();
    void openFirstModel(const QList<StoredConversation>& conversations);
    void showConversation(qint64 id);
    void showError(const QString& message);
    void rebuildRecentMenu();
    void refreshLibraryModels();
    void setLibraryModels(const QList<wp::ui::LibraryEntry>& entries);
    QStringList compareCandidates() const;

    // Worker results for model loads.
    void onLoadProgress(quint64 id, double fraction);
    void onModelLoaded(quint64 id, const wp::ui::ModelCard& card);
    void useModel(const ModelCard& card);  // the loaded (or remote) model becomes the chat's
    void onLoadError(quint64 id, const QString& message);

    AppOptions options_;
    AppSettings appSettings_;
    RemoteModels remote_{appSettings_, options_.keyStore};  // the remote endpoints, their keys and their worker
    ConversationStore store_;
    WorkerThread worker_{QStringLiteral("inference")};
    HubThread hub_{QStringLiteral("hub")};              // the library and the hub's search
    HubThread downloads_{QStringLiteral("downloads")};  // pulls, one after another
    quint64 libraryRequest_ = 0;
    QStringList libraryModels_;
    QHash<QString, QString> libraryNames_;  // the library's name of each model path (Ollama's MODEL:TAG)
    QStringList libraryJudges_;  // the library's reward models: the compare view's judges
    QSet<QString> taskHeadModels_;  // known not to chat (library, or loaded): kept out of the compare panes
    ModelLibraryDialog* library_ = nullptr;
    GetModelsDialog* getModels_ = nullptr;
    AddEndpointDialog* addEndpoint_ = nullptr;
    quint64 loadRequest_ = 0;
    QString loadingPath_;
    ModelCard card_;

    ConversationList* sidebar_ = nullptr;
    QTabWidget* tabs_ = nullptr;
    ChatPane* chat_ = nullptr;
    AttentionTab* attention_ = nullptr;
    ClassifyTab* classify_ = nullptr;
    CompareView* compare_ = nullptr;
    ModelCardView* cardView_ = nullptr;
    SettingsPanel* settings_ = nullptr;
    QProgressBar* progress_ = nullptr;
    QMenu* recentMenu_ = nullptr;
};

}  // namespace wp::ui
