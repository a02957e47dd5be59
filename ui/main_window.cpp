#include "main_window.h"

#include <QAction>
#include <QActionGroup>
#include <QCloseEvent>
#include <QCoreApplication>
#include <QDir>
#include <QDockWidget>
#include <QDragEnterEvent>
#include <QDropEvent>
#include <QFileDialog>
#include <QFileInfo>
#include <QMenu>
#include <QMenuBar>
#include <QMessageBox>
#include <QMimeData>
#include <QProgressBar>
#include <QShortcut>
#include <QSplitter>
#include <QStandardPaths>
#include <QStatusBar>
#include <QTabWidget>

#include "engine/model_paths.h"
#include "engine/remote_model_ref.h"
#include "widgets/add_endpoint_dialog.h"
#include "theme.h"
#include "widgets/attention_tab.h"
#include "widgets/chat_pane.h"
#include "widgets/classify_tab.h"
#include "widgets/compare_view.h"
#include "widgets/conversation_list.h"
#include "widgets/get_models_dialog.h"
#include "widgets/model_library_dialog.h"
#include "widgets/model_card_view.h"
#include "widgets/settings_panel.h"
#include "window_placement.h"
#include "wp/model/threads.h"
#include "wp/version.h"

namespace wp::ui {

namespace {

const char* kDefaultModelName = "windowpane-demo-gemma2";

// The size the window opens at when the screen has room for it.
constexpr QSize kPreferredSize(1600, 1000);

// What a drop opens: a folder (the load says why when it holds no model) or a GGUF file.
QString droppedModel(const QMimeData* data) {
    for (const QUrl& u : data->urls())
        if (u.isLocalFile() && (QFileInfo(u.toLocalFile()).isDir() || isGgufFile(u.toLocalFile()))) return u.toLocalFile();
    return {};
}

}  // namespace

QString MainWindow::defaultModelPath() {
    const QString env = qEnvironmentVariable("WP_DEFAULT_MODEL");
    if (!env.isEmpty()) return env;
    const QString exeDir = QCoreApplication::applicationDirPath();
    const QStringList candidates = {
        exeDir + "/resources/models/" + kDefaultModelName,
        exeDir + "/../share/windowpane/models/" + kDefaultModelName,
        QStringLiteral(WP_INSTALL_DATA_DIR) + "/models/" + kDefaultModelName,
        QStringLiteral(WP_SOURCE_RESOURCES_DIR) + "/models/" + kDefaultModelName,
    };
    for (const QString& c : candidates)
        if (QFileInfo::exists(c + "/config.json")) return QDir::cleanPath(c);
    return {};
}

MainWindow::MainWindow(const AppOptions& options, QWidget* parent)
    : QMainWindow(parent), options_(options), appSettings_(options.settingsFile) {
    setWindowTitle(tr("Windowpane"));
    setAcceptDrops(true);

    InferenceWorker* w = worker_.worker();
    connect(w, &InferenceWorker::loadProgress, this, &MainWindow::onLoadProgress);
    connect(w, &InferenceWorker::modelLoaded, this, &MainWindow::onModelLoaded);
    connect(w, &InferenceWorker::error, this, &MainWindow::onLoadError);
    connect(hub_.worker(), &HubWorker::libraryListed, this, [this](quint64 id, const QList<LibraryEntry>& entries) {
        if (id == libraryRequest_) setLibraryModels(entries);
    });

    buildUi();
    buildMenus();

    applyTheme(appSettings_.theme(), this);  // first: the style decides the minimum size
    placeWindow(this, appSettings_.windowGeometry(), kPreferredSize);
    restoreState(appSettings_.windowState());
    rebuildRecentMenu();
    chat_->setDraft(appSettings_.draft());  // what was typed but not sent

    openStore();
    sidebar_->refresh();
    const auto conversations = store_.listConversations();
    if (!conversations.isEmpty()) showConversation(conversations.first().id);
    openFirstModel(conversations);
    refreshLibraryModels();
}

MainWindow::~MainWindow() {
    // The panes hold references to worker_, store_ and the settings panel: they go first, the
    // docks after them, and the members last.
    delete library_;  // they hold references to the hub threads, members destroyed before children
    delete getModels_;
    delete addEndpoint_;
    delete takeCentralWidget();
    qDeleteAll(findChildren<QDockWidget*>(QString(), Qt::FindDirectChildrenOnly));
}

// ---- assembly ------------------------------------------------------------------------------

void MainWindow::buildUi() {
    auto* splitter = new QSplitter(this);
    sidebar_ = new ConversationList(store_, splitter);
    splitter->addWidget(sidebar_);

    tabs_ = new QTabWidget(splitter);
    tabs_->setObjectName("mainTabs");
    auto* settingsDock = new QDockWidget(tr("Settings"), this);
    settingsDock->setObjectName("settingsDock");
    settings_ = new SettingsPanel(settingsDock);
    settingsDock->setWidget(settings_);
    chat_ = new ChatPane(worker_, store_, *settings_, tabs_);
    chat_->setRemoteModels(&remote_);
    tabs_->addTab(chat_, tr("Chat"));
    classify_ = new ClassifyTab(worker_, tabs_);
    classify_->setObjectName("classifyTab");
    tabs_->addTab(classify_, tr("Classify"));
    tabs_->setTabVisible(tabs_->indexOf(classify_), false);  // until a task-head model is loaded
    attention_ = new AttentionTab(worker_, store_, tabs_);
    tabs_->addTab(attention_, tr("Attention"));
    compare_ = new CompareView(tabs_);
    compare_->setObjectName("compareView");
    compare_->setRemoteModels(&remote_);
    tabs_->addTab(compare_, tr("Compare"));
    splitter->addWidget(tabs_);
    splitter->setStretchFactor(0, 0);
    splitter->setStretchFactor(1, 1);
    splitter->setSizes({220, 700});
    setCentralWidget(splitter);

    auto* cardDock = new QDockWidget(tr("Model"), this);
    cardDock->setObjectName("modelDock");
    cardView_ = new ModelCardView(cardDock);
    cardDock->setWidget(cardView_);
    addDockWidget(Qt::RightDockWidgetArea, cardDock);
    addDockWidget(Qt::RightDockWidgetArea, settingsDock);
    resizeDocks({cardDock, settingsDock}, {380, 360}, Qt::Vertical);
    resizeDocks({cardDock}, {300}, Qt::Horizontal);

    progress_ = new QProgressBar(this);
    progress_->setObjectName("loadProgress");
    progress_->setMaximumWidth(220);
    progress_->setVisible(false);
    statusBar()->addPermanentWidget(progress_);

    // The parts talk through the window.
    connect(sidebar_, &ConversationList::newChatRequested, chat_, &ChatPane::newConversation);
    connect(sidebar_, &ConversationList::conversationChosen, this, &MainWindow::showConversation);
    connect(sidebar_, &ConversationList::currentDeleted, chat_, &ChatPane::newConversation);
    connect(sidebar_, &ConversationList::errorOccurred, this, &MainWindow::showError);
    connect(chat_, &ChatPane::conversationChanged, this, [this](qint64 id) {
        sidebar_->setCurrent(id);
        attention_->setConversation(id);
    });
    connect(chat_, &ChatPane::conversationsChanged, sidebar_, &ConversationList::refresh);
    connect(chat_, &ChatPane::generatingChanged, sidebar_, &ConversationList::setLocked);
    connect(chat_, &ChatPane::errorShown, this,
            [this](const QString& message) { statusBar()->showMessage(message, 10000); });
    connect(chat_, &ChatPane::tokenArrived, this, &MainWindow::tokenArrived);
    connect(chat_, &ChatPane::replyFinished, this, &MainWindow::replyFinished);
    connect(chat_, &ChatPane::replyFinished, this, [this] {
        if (tabs_->currentWidget() == attention_) attention_->followConversation();
    });
    connect(attention_, &AttentionTab::analysisReady, this, &MainWindow::analysisReady);
    connect(tabs_, &QTabWidget::currentChanged, this, [this](int index) {
        if (tabs_->widget(index) == compare_) {
            compare_->setCandidateModels(compareCandidates(), libraryNames_);
            compare_->setJudgeCandidates(libraryJudges_);
            QList<ChatTurn> turns;
            if (const qint64 id = currentConversation(); id != 0)
                for (const StoredMessage& m : store_.activePath(id)) turns.push_back({m.role, m.content});
            compare_->setChatConversation(turns);
        }
        if (tabs_->widget(index) == attention_) attention_->followConversation();
    });
    new QShortcut(QKeySequence(Qt::Key_Escape), this, [this] { chat_->stopGeneration(); });
}

void MainWindow::buildMenus() {
    QMenu* file = menuBar()->addMenu(tr("&File"));
    file->addAction(tr("Model &Library\u2026"), QKeySequence::Open, this, [this] { showLibrary(); });
    file->addAction(tr("&Get Models\u2026"), QKeySequence(Qt::CTRL | Qt::SHIFT | Qt::Key_G), this, [this] { showGetModels(); });
    file->addAction(tr("&Open Model Folder\u2026"), QKeySequence(Qt::CTRL | Qt::SHIFT | Qt::Key_O), this, [this] {
        const QString dir = QFileDialog::getExistingDirectory(this, tr("Open a model folder"), card_.path);
        if (!dir.isEmpty()) openModel(dir);
    });
    file->addAction(tr("Open &GGUF File\u2026"), this, [this] {
        const QString path = QFileDialog::getOpenFileName(this, tr("Open a GGUF file"), QFileInfo(card_.path).path(),
                                                          ggufFileFilter());
        if (!path.isEmpty()) openModel(path);
    });
    file->addAction(tr("Add &Endpoint\u2026"), this, [this] { showAddEndpoint(); });
    recentMenu_ = file->addMenu(tr("Recent Models"));
    file->addAction(tr("Open the &Demo Model"), this, [this] {
        const QString p = defaultModelPath();
        if (p.isEmpty()) showError(tr("The embedded demo model was not found."));
        else openModel(p);
    });
    QMenu* precision = file->addMenu(tr("Compute Precision"));
    auto* precisionGroup = new QActionGroup(precision);  // exclusive: one choice marked
    for (const auto& [key, label] : {std::pair{"", tr("Automatic (bf16 for bf16 weights, else f32)")},
                                     std::pair{"f32", tr("f32")}, std::pair{"bf16", tr("bf16")},
                                     std::pair{"q8", tr("q8 (8-bit blocks)")}, std::pair{"q4", tr("q4 (4-bit blocks)")}}) {
        const QString k = QString::fromLatin1(key);
        QAction* choice = precision->addAction(label, this, [this, k] {
            appSettings_.setPrecision(k);
            if (!card_.path.isEmpty() && !isGenerating()) openModel(card_.path);  // reload in the new precision
        });
        choice->setCheckable(true);  // the one in the settings shows its mark
        choice->setChecked(k == appSettings_.precision());
        precisionGroup->addAction(choice);
    }
    QMenu* kv = file->addMenu(tr("KV Cache"));
    auto* kvGroup = new QActionGroup(kv);
    for (const auto& [key, label] : {std::pair{"", tr("Automatic (f16 for q8 and q4, else f32)")}, std::pair{"f32", tr("f32")},
                                     std::pair{"f16", tr("f16 (half the bytes)")},
                                     std::pair{"q8", tr("q8 (8-bit blocks: 56-75% of f16's bytes)")}}) {
        const QString k = QString::fromLatin1(key);
        QAction* choice = kv->addAction(label, this, [this, k] {
            appSettings_.setKvCache(k);
            if (!card_.path.isEmpty() && !isGenerating()) openModel(card_.path);  // reload with the new cache
        });
        choice->setCheckable(true);
        choice->setChecked(k == appSettings_.kvCache());
        kvGroup->addAction(choice);
    }
    file->addSeparator();
    file->addAction(tr("&New Chat"), QKeySequence::New, chat_, &ChatPane::newConversation);
    file->addAction(tr("&Rename Chat\u2026"), sidebar_, &ConversationList::renameCurrent);
    file->addAction(tr("Export Chat as &Markdown\u2026"), this, [this] { sidebar_->exportCurrent(true); });
    file->addAction(tr("Export Chat as &JSON\u2026"), this, [this] { sidebar_->exportCurrent(false); });
    file->addAction(tr("&Delete Chat"), sidebar_, &ConversationList::deleteCurrent);
    file->addSeparator();
    file->addAction(tr("&Quit"), QKeySequence::Quit, this, &QWidget::close);

    QMenu* view = menuBar()->addMenu(tr("&View"));
    QMenu* theme = view->addMenu(tr("Theme"));
    for (const auto& [key, label] : {std::pair{"system", tr("Follow the System")}, std::pair{"light", tr("Light")},
                                     std::pair{"dark", tr("Dark")}}) {
        const QString k = QString::fromLatin1(key);
        theme->addAction(label, this, [this, k] {
            applyTheme(k, this);
            appSettings_.setTheme(k);
        });
    }
    view->addSeparator();
    for (QDockWidget* dock : findChildren<QDockWidget*>()) view->addAction(dock->toggleViewAction());

    QMenu* help = menuBar()->addMenu(tr("&Help"));
    help->addAction(tr("&About Windowpane"), this, [this] {
        QMessageBox::about(this, tr("About Windowpane"),
                           tr("<h3>Windowpane %1</h3><p>Chat with Gemma, Gemma2 and Qwen2 models on your CPU, and see "
                              "what every layer attends to.</p><p>Qt %2 (built with %3)<br>OpenBLAS: %4<br>"
                              "Compiler: %5</p>")
                               .arg(QStringLiteral(WP_VERSION), QString::fromLatin1(qVersion()), QStringLiteral(QT_VERSION_STR),
                                    QString::fromLatin1(wp::blas_build_info()), QStringLiteral(__VERSION__)));
    });
}

void MainWindow::openStore() {
    QString dataDir = options_.dataDir;
    if (dataDir.isEmpty()) dataDir = QStandardPaths::writableLocation(QStandardPaths::AppDataLocation);
    QDir().mkpath(dataDir);
    QString err;
    if (!store_.open(dataDir + "/conversations.sqlite", &err)) {
        showError(tr("Conversations cannot be saved: %1").arg(err));
        store_.open(":memory:");
    }
}

// The model named on the command line, else the latest conversation's, else the last one used,
// else the embedded demo model.
void MainWindow::openFirstModel(const QList<StoredConversation>& conversations) {
    QString model = options_.modelPath;
    if (model.isEmpty() && !conversations.isEmpty() &&
        (isModelPath(conversations.first().modelPath) || remote_.contains(conversations.first().modelPath)))
        model = conversations.first().modelPath;
    if (model.isEmpty()) model = appSettings_.lastModel();
    if (!isModelPath(model) && !remote_.contains(model) && options_.modelPath.isEmpty())
        model = defaultModelPath();
    if (!model.isEmpty()) openModel(model);
    else showError(tr("No model found. Open one from the library (File \u2192 Model Library\u2026), or get one from the Hugging Face hub (File \u2192 Get Models\u2026)."));
}

// ---- the parts, for tests and scripting ----------------------------------------------------

void MainWindow::sendMessage(const QString& text) { chat_->sendMessage(text); }
void MainWindow::stopGeneration() { chat_->stopGeneration(); }
bool MainWindow::isGenerating() const { return chat_->isGenerating(); }
qint64 MainWindow::currentConversation() const { return chat_->conversation(); }
QList<MessageWidget*> MainWindow::messageWidgets() const { return chat_->messageWidgets(); }
QString MainWindow::lastError() const { return chat_->lastError(); }
MaskView* MainWindow::maskView() const { return attention_->maskView(); }
bool MainWindow::isAnalyzing() const { return attention_->isAnalyzing(); }

void MainWindow::analyze(const QString& text) {
    tabs_->setCurrentWidget(attention_);
    attention_->analyze(text);
}

void MainWindow::showConversation(qint64 id) {
    chat_->showConversation(id);
    // A conversation goes on with the model it was held with, if that folder or file is still there.
    const auto conv = store_.conversation(id);
    if (conv && !conv->modelPath.isEmpty() && conv->modelPath != card_.path && conv->modelPath != loadingPath_ &&
        (isModelPath(conv->modelPath) || remote_.contains(conv->modelPath)))
        openModel(conv->modelPath);
}

void MainWindow::showError(const QString& message) { chat_->showError(message); }

// ---- models --------------------------------------------------------------------------------

void MainWindow::refreshLibraryModels() {
    libraryRequest_ = hub_.nextRequestId();
    hub_.post(&HubWorker::listLibrary, libraryRequest_);
}

void MainWindow::setLibraryModels(const QList<LibraryEntry>& entries) {
    libraryModels_.clear();
    libraryJudges_.clear();
    libraryNames_.clear();
    for (const LibraryEntry& e : entries) {
        libraryNames_.insert(e.dir, e.name);
        if (e.supported && e.head == "chat") libraryModels_ << e.dir;  // compare panes chat
        if (e.head != "chat") taskHeadModels_.insert(e.dir);
        if (e.supported && e.head == "reward") libraryJudges_ << e.dir;  // a one-label sequence classifier
    }
}

QStringList MainWindow::compareCandidates() const {
    QStringList out;
    for (const QString& m : remote_.modelPaths()) out << m;  // the servers' models first: few, and chosen on purpose
    for (const QString& m : appSettings_.recentModels())
        if (!taskHeadModels_.contains(m)) out << m;  // recent classifiers cannot reply
    for (const QString& m : libraryModels_)
        if (!out.contains(m)) out << m;
    return out;
}

ModelLibraryDialog* MainWindow::showLibrary() {
    if (library_ == nullptr) {
        library_ = new ModelLibraryDialog(hub_, this, &remote_);
        connect(library_, &ModelLibraryDialog::openRequested, this, &MainWindow::openModel);
        connect(library_, &ModelLibraryDialog::addEndpointRequested, this, [this] { showAddEndpoint(); });
        connect(library_, &ModelLibraryDialog::getModelsRequested, this, [this] { showGetModels(); });
        connect(library_, &ModelLibraryDialog::listed, this, &MainWindow::setLibraryModels);
    } else {
        library_->refresh();
    }
    library_->show();
    library_->raise();
    library_->activateWindow();
    return library_;
}

GetModelsDialog* MainWindow::showGetModels() {
    if (getModels_ == nullptr) {
        getModels_ = new GetModelsDialog(hub_, downloads_, this);
        connect(getModels_, &GetModelsDialog::openRequested, this, &MainWindow::openModel);
        connect(getModels_, &GetModelsDialog::downloadFinished, this, [this] {
            refreshLibraryModels();
            if (library_ != nullptr && library_->isVisible()) library_->refresh();
        });
    }
    getModels_->show();
    getModels_->raise();
    getModels_->activateWindow();
    return getModels_;
}

AddEndpointDialog* MainWindow::showAddEndpoint() {
    if (addEndpoint_ == nullptr) addEndpoint_ = new AddEndpointDialog(remote_, this);
    addEndpoint_->show();
    addEndpoint_->raise();
    addEndpoint_->activateWindow();
    return addEndpoint_;
}

void MainWindow::openModel(const QString& path) {
    if (path.isEmpty()) return;
    if (const auto remote = parseRemoteModelPath(path)) {
        // Nothing to load: the server runs it. A load still running is overtaken.
        if (isGenerating()) return;
        loadRequest_ = 0;
        loadingPath_.clear();
        progress_->setVisible(false);
        chat_->setModelLoading(false);
        useModel(remoteModelCard(*remote));
        return;
    }
    loadRequest_ = worker_.nextRequestId();
    loadingPath_ = QDir::cleanPath(path);
    progress_->setRange(0, 100);
    progress_->setValue(0);
    progress_->setFormat(tr("Loading %p%"));
    progress_->setVisible(true);
    statusBar()->showMessage(tr("Loading %1\u2026").arg(loadingPath_));
    chat_->setModelLoading(true);
    worker_.post(&InferenceWorker::loadModel, loadRequest_, loadingPath_, appSettings_.precision(), appSettings_.kvCache());
}

void MainWindow::onLoadProgress(quint64 id, double fraction) {
    if (id == loadRequest_) progress_->setValue(static_cast<int>(fraction * 100));
}

void MainWindow::onModelLoaded(quint64 id, const ModelCard& card) {
    if (id != loadRequest_) return;
    loadRequest_ = 0;
    progress_->setVisible(false);
    appSettings_.addRecentModel(card.path);
    if (card.isTaskHead()) taskHeadModels_.insert(card.path);
    rebuildRecentMenu();
    appSettings_.setLastModel(card.path);
    useModel(card);
}

void MainWindow::useModel(const ModelCard& card) {
    card_ = card;
    statusBar()->showMessage(card.isRemote() ? tr("Using %1").arg(card.name) : tr("Loaded %1").arg(card.name), 5000);
    settings_->setSystemPromptSupported(card.systemRoleSupported, card.systemRoleReason);
    settings_->setEnabled(!card.isTaskHead());  // sampling and the system prompt do nothing for a task head
    // A task-head model cannot continue a conversation: the conversation keeps its chat model.
    if (chat_->conversation() && !card.isTaskHead()) store_.setModelPath(chat_->conversation(), card.path);
    chat_->setModelLoading(false);
    chat_->setModel(card);
    attention_->setModelPath(card.path);
    classify_->setModel(card);
    // A task-head model classifies instead of chatting: its tab replaces chat's as the one shown.
    const int classifyIndex = tabs_->indexOf(classify_);
    tabs_->setTabVisible(classifyIndex, card.isTaskHead());
    tabs_->setTabToolTip(tabs_->indexOf(chat_), card.chatUnavailable);
    if (card.isTaskHead()) tabs_->setCurrentWidget(classify_);
    else if (tabs_->currentWidget() == classify_) tabs_->setCurrentWidget(chat_);
    cardView_->setCard(card);
    emit modelReady(card);
}

void MainWindow::onLoadError(quint64 id, const QString& message) {
    if (id != loadRequest_) return;
    loadRequest_ = 0;
    progress_->setVisible(false);
    const QString msg = tr("Could not load %1: %2").arg(loadingPath_, message);
    loadingPath_.clear();
    chat_->setModelLoading(false);
    showError(card_.path.isEmpty() ? msg : msg + tr(" \u2014 still using %1.").arg(card_.name));
    emit modelFailed(message);
}

void MainWindow::rebuildRecentMenu() {
    recentMenu_->clear();
    const QStringList recent = appSettings_.recentModels();
    for (const QString& p : recent) recentMenu_->addAction(p, this, [this, p] { openModel(p); });
    recentMenu_->setEnabled(!recent.isEmpty());
}

// ---- events --------------------------------------------------------------------------------

void MainWindow::dragEnterEvent(QDragEnterEvent* e) {
    if (!droppedModel(e->mimeData()).isEmpty()) e->acceptProposedAction();
}

void MainWindow::dropEvent(QDropEvent* e) {
    const QString path = droppedModel(e->mimeData());
    if (!path.isEmpty()) openModel(path);
}

void MainWindow::closeEvent(QCloseEvent* e) {
    chat_->keepUnfinishedReply();
    appSettings_.setDraft(chat_->draft());
    appSettings_.setWindowLayout(saveGeometry(), saveState());
    QMainWindow::closeEvent(e);
}

}  // namespace wp::ui
