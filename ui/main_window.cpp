#include "main_window.h"

#include <QAction>
#include <QApplication>
#include <QCloseEvent>
#include <QCoreApplication>
#include <QDateTime>
#include <QDir>
#include <QFile>
#include <QRegularExpression>
#include <QDockWidget>
#include <QDragEnterEvent>
#include <QDropEvent>
#include <QFileDialog>
#include <QFileInfo>
#include <QHBoxLayout>
#include <QInputDialog>
#include <QJsonArray>
#include <QKeyEvent>
#include <QLabel>
#include <QLineEdit>
#include <QListWidget>
#include <QLocale>
#include <QMenu>
#include <QMenuBar>
#include <QMessageBox>
#include <QMimeData>
#include <QPalette>
#include <QPlainTextEdit>
#include <QProgressBar>
#include <QPushButton>
#include <QScrollArea>
#include <QScrollBar>
#include <QSettings>
#include <QShortcut>
#include <QSplitter>
#include <QStandardPaths>
#include <QStatusBar>
#include <QStyleFactory>
#include <QTabWidget>
#include <QTimer>
#include <QVBoxLayout>
#include <cblas.h>

#include "widgets/compare_view.h"
#include "widgets/mask_view.h"
#include "widgets/message_widget.h"
#include "widgets/settings_panel.h"
#include "wp/version.h"

namespace wp::ui {

namespace {

const char* kDefaultModelName = "windowpane-demo-gemma2";

std::unique_ptr<QSettings> openSettings(const QString& file) {
    if (file.isEmpty()) return std::make_unique<QSettings>();
    return std::make_unique<QSettings>(file, QSettings::IniFormat);
}

QString humanBytes(double b) {
    const char* units[] = {"B", "KB", "MB", "GB", "TB"};
    int u = 0;
    while (b >= 1024 && u < 4) {
        b /= 1024;
        ++u;
    }
    return QStringLiteral("%1 %2").arg(b, 0, 'f', u == 0 ? 0 : 1).arg(units[u]);
}

QString titleFrom(const QString& text) {
    QString t = text.simplified();
    if (t.size() > 48) t = t.left(47) + QStringLiteral("\u2026");
    return t.isEmpty() ? QObject::tr("New chat") : t;
}

QJsonArray tokensToJson(const QVector<TokenInfo>& tokens) {
    QJsonArray arr;
    for (const TokenInfo& t : tokens) {
        QJsonArray alts;
        for (const auto& a : t.top) alts.append(QJsonArray{a.text, a.probability});
        arr.append(QJsonArray{t.text, t.probability, t.id, alts});
    }
    return arr;
}

QVector<TokenInfo> tokensFromJson(const QJsonArray& arr) {
    QVector<TokenInfo> out;
    for (const auto& v : arr) {
        const QJsonArray a = v.toArray();
        TokenInfo t;
        t.text = a.at(0).toString();
        t.probability = static_cast<float>(a.at(1).toDouble());
        t.id = a.at(2).toInt();
        for (const auto& alt : a.at(3).toArray())
            t.top.push_back({alt.toArray().at(0).toString(), static_cast<float>(alt.toArray().at(1).toDouble())});
        out.push_back(t);
    }
    return out;
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

MainWindow::MainWindow(const AppOptions& options, QWidget* parent) : QMainWindow(parent), options_(options) {
    setWindowTitle(tr("Windowpane"));
    setAcceptDrops(true);

    InferenceWorker* worker = worker_.worker();
    connect(this, &MainWindow::loadRequested, worker, &InferenceWorker::loadModel);
    connect(this, &MainWindow::generateRequested, worker, &InferenceWorker::generate);
    connect(worker, &InferenceWorker::loadProgress, this, &MainWindow::onLoadProgress);
    connect(worker, &InferenceWorker::modelLoaded, this, &MainWindow::onModelLoaded);
    connect(worker, &InferenceWorker::promptProgress, this, &MainWindow::onPromptProgress);
    connect(worker, &InferenceWorker::tokenText, this, &MainWindow::onToken);
    connect(worker, &InferenceWorker::stats, this, &MainWindow::onStats);
    connect(worker, &InferenceWorker::finished, this, &MainWindow::onFinished);
    connect(worker, &InferenceWorker::error, this, &MainWindow::onWorkerError);
    connect(this, &MainWindow::analyzeRequested, worker, &InferenceWorker::analyze);
    connect(worker, &InferenceWorker::analyzed, this, [this](quint64 id, const MaskViewData& data) {
        if (id != analyzeRequest_) return;
        analyzeRequest_ = 0;
        const int T = static_cast<int>(data.tokens.size());
        maskView_->setData(data);
        maskView_->fitToView();
        analyzeStatus_->setText(tr("%1 tokens \u00b7 %2 layers \u00b7 %3 cache steps").arg(T).arg(data.layers.size()).arg(data.cacheSteps.size()));
        emit analysisReady();
    });
    buildUi();
    buildMenus();

    auto settings = openSettings(options_.settingsFile);
    restoreGeometry(settings->value("window/geometry").toByteArray());
    restoreState(settings->value("window/state").toByteArray());
    applyTheme(settings->value("view/theme", "system").toString());
    rebuildRecentMenu();
    input_->setPlainText(settings->value("chat/draft").toString());  // what was typed but not sent

    QString dataDir = options_.dataDir;
    if (dataDir.isEmpty()) dataDir = QStandardPaths::writableLocation(QStandardPaths::AppDataLocation);
    QDir().mkpath(dataDir);
    QString err;
    if (!store_.open(dataDir + "/conversations.sqlite", &err)) {
        showError(tr("Conversations cannot be saved: %1").arg(err));
        store_.open(":memory:");
    }
    refreshConversations();
    const auto list = store_.listConversations();
    if (!list.isEmpty()) showConversation(list.first().id);

    QString model = options_.modelPath;
    if (model.isEmpty() && !list.isEmpty() && QFileInfo::exists(list.first().modelPath + "/config.json"))
        model = list.first().modelPath;
    if (model.isEmpty()) model = settings->value("models/last").toString();
    if (model.isEmpty() || !QFileInfo::exists(model + "/config.json")) {
        const QString fallback = defaultModelPath();
        if (options_.modelPath.isEmpty()) model = fallback;
    }
    if (!model.isEmpty()) openModel(model);
    else showError(tr("No model found. Open a model folder (File \u2192 Open Model Folder\u2026)."));
}

MainWindow::~MainWindow() = default;

// ---- layout --------------------------------------------------------------------------------

void MainWindow::buildUi() {
    auto* splitter = new QSplitter(this);

    auto* left = new QWidget(splitter);
    auto* leftLayout = new QVBoxLayout(left);
    leftLayout->setContentsMargins(6, 6, 6, 6);
    auto* newChat = new QPushButton(tr("New chat"), left);
    newChat->setObjectName("newChatButton");
    connect(newChat, &QPushButton::clicked, this, &MainWindow::newConversation);
    leftLayout->addWidget(newChat);
    search_ = new QLineEdit(left);
    search_->setObjectName("searchBox");
    search_->setPlaceholderText(tr("Search conversations"));
    search_->setClearButtonEnabled(true);
    connect(search_, &QLineEdit::textChanged, this, [this] { refreshConversations(); });
    leftLayout->addWidget(search_);
    conversations_ = new QListWidget(left);
    conversations_->setObjectName("conversationList");
    conversations_->setContextMenuPolicy(Qt::CustomContextMenu);
    connect(conversations_, &QListWidget::itemClicked, this, [this](QListWidgetItem* item) {
        if (!isGenerating()) showConversation(item->data(Qt::UserRole).toLongLong());
    });
    connect(conversations_, &QListWidget::customContextMenuRequested, this, [this](const QPoint& pos) {
        QListWidgetItem* item = conversations_->itemAt(pos);
        if (!item || isGenerating()) return;
        showConversation(item->data(Qt::UserRole).toLongLong());
        QMenu menu;
        menu.addAction(tr("Rename\u2026"), this, &MainWindow::renameConversation);
        menu.addAction(tr("Export as Markdown\u2026"), this, [this] { exportConversation(true); });
        menu.addAction(tr("Export as JSON\u2026"), this, [this] { exportConversation(false); });
        menu.addSeparator();
        menu.addAction(tr("Delete"), this, &MainWindow::deleteConversation);
        menu.exec(conversations_->viewport()->mapToGlobal(pos));
    });
    leftLayout->addWidget(conversations_);
    left->setMinimumWidth(180);
    splitter->addWidget(left);

    auto* center = new QWidget(splitter);
    auto* centerLayout = new QVBoxLayout(center);
    centerLayout->setContentsMargins(6, 6, 6, 6);
    modelButtonLabel_ = new QLabel(center);
    modelButtonLabel_->setObjectName("modelLabel");
    centerLayout->addWidget(modelButtonLabel_);
    scroll_ = new QScrollArea(center);
    scroll_->setObjectName("chatScroll");
    scroll_->setWidgetResizable(true);
    messagesHost_ = new QWidget(scroll_);
    messagesLayout_ = new QVBoxLayout(messagesHost_);
    messagesLayout_->addStretch();
    scroll_->setWidget(messagesHost_);
    centerLayout->addWidget(scroll_, 1);

    auto* gaugeRow = new QHBoxLayout;
    statusLabel_ = new QLabel(center);
    statusLabel_->setObjectName("replyStatus");
    gaugeRow->addWidget(statusLabel_, 1);
    contextLabel_ = new QLabel(center);
    contextLabel_->setObjectName("contextLabel");
    gaugeRow->addWidget(contextLabel_);
    contextGauge_ = new QProgressBar(center);
    contextGauge_->setObjectName("contextGauge");
    contextGauge_->setMaximumWidth(160);
    contextGauge_->setTextVisible(false);
    gaugeRow->addWidget(contextGauge_);
    centerLayout->addLayout(gaugeRow);

    auto* inputRow = new QHBoxLayout;
    input_ = new QPlainTextEdit(center);
    input_->setObjectName("messageInput");
    input_->setPlaceholderText(tr("Message the model (Enter sends, Shift+Enter for a new line)"));
    input_->setMaximumHeight(110);
    input_->installEventFilter(this);
    inputRow->addWidget(input_, 1);
    send_ = new QPushButton(tr("Send"), center);
    send_->setObjectName("sendButton");
    connect(send_, &QPushButton::clicked, this, [this] {
        if (isGenerating()) stopGeneration();
        else sendMessage(input_->toPlainText());
    });
    inputRow->addWidget(send_);
    centerLayout->addLayout(inputRow);
    tabs_ = new QTabWidget(splitter);
    tabs_->setObjectName("mainTabs");
    tabs_->addTab(center, tr("Chat"));

    auto* attention = new QWidget(tabs_);
    auto* attLayout = new QVBoxLayout(attention);
    auto* attTop = new QHBoxLayout;
    analyzeText_ = new QLineEdit(attention);
    analyzeText_->setObjectName("analyzeText");
    analyzeText_->setPlaceholderText(tr("Text to look at (empty: the current conversation)"));
    connect(analyzeText_, &QLineEdit::returnPressed, this, [this] { analyze(analyzeText_->text()); });
    attTop->addWidget(analyzeText_, 1);
    auto* analyzeButton = new QPushButton(tr("Show"), attention);
    connect(analyzeButton, &QPushButton::clicked, this, [this] { analyze(analyzeText_->text()); });
    attTop->addWidget(analyzeButton);
    analyzeStatus_ = new QLabel(attention);
    attTop->addWidget(analyzeStatus_);
    attLayout->addLayout(attTop);
    maskView_ = new MaskView(attention);
    maskView_->setObjectName("maskView");
    attLayout->addWidget(maskView_, 1);
    tabs_->addTab(attention, tr("Attention"));

    compare_ = new CompareView(tabs_);
    compare_->setObjectName("compareView");
    tabs_->addTab(compare_, tr("Compare"));
    connect(tabs_, &QTabWidget::currentChanged, this, [this](int index) {
        if (tabs_->widget(index) == compare_)
            compare_->setCandidateModels(openSettings(options_.settingsFile)->value("models/recent").toStringList());
        if (index == 1 && analyzeText_->text().isEmpty() && conversation_) analyze();
    });
    splitter->addWidget(tabs_);
    splitter->setStretchFactor(0, 0);
    splitter->setStretchFactor(1, 1);
    splitter->setSizes({220, 700});
    setCentralWidget(splitter);

    auto* cardDock = new QDockWidget(tr("Model"), this);
    cardDock->setObjectName("modelDock");
    cardLabel_ = new QLabel(cardDock);
    cardLabel_->setObjectName("modelCard");
    cardLabel_->setWordWrap(true);
    cardLabel_->setAlignment(Qt::AlignTop | Qt::AlignLeft);
    cardLabel_->setTextInteractionFlags(Qt::TextSelectableByMouse);
    cardLabel_->setMargin(8);
    auto* cardScroll = new QScrollArea(cardDock);
    cardScroll->setWidgetResizable(true);
    cardScroll->setWidget(cardLabel_);
    cardDock->setWidget(cardScroll);
    addDockWidget(Qt::RightDockWidgetArea, cardDock);

    auto* settingsDock = new QDockWidget(tr("Settings"), this);
    settingsDock->setObjectName("settingsDock");
    settings_ = new SettingsPanel(settingsDock);
    settingsDock->setWidget(settings_);
    addDockWidget(Qt::RightDockWidgetArea, settingsDock);
    resizeDocks({cardDock, settingsDock}, {380, 360}, Qt::Vertical);
    resizeDocks({cardDock}, {300}, Qt::Horizontal);
    connect(settings_, &SettingsPanel::changed, this, &MainWindow::saveConversationSettings);

    progress_ = new QProgressBar(this);
    progress_->setObjectName("loadProgress");
    progress_->setMaximumWidth(220);
    progress_->setVisible(false);
    statusBar()->addPermanentWidget(progress_);

    new QShortcut(QKeySequence(Qt::Key_Escape), this, [this] { stopGeneration(); });
    updateModelCard();
    updateContextGauge(0);
    updateSendButton();
}

void MainWindow::buildMenus() {
    QMenu* file = menuBar()->addMenu(tr("&File"));
    file->addAction(tr("&Open Model Folder\u2026"), QKeySequence::Open, this, [this] {
        const QString dir = QFileDialog::getExistingDirectory(this, tr("Open a model folder"), card_.path);
        if (!dir.isEmpty()) openModel(dir);
    });
    recentMenu_ = file->addMenu(tr("Recent Models"));
    file->addAction(tr("Open the &Demo Model"), this, [this] {
        const QString p = defaultModelPath();
        if (p.isEmpty()) showError(tr("The embedded demo model was not found."));
        else openModel(p);
    });
    QMenu* precision = file->addMenu(tr("Compute Precision"));
    for (const auto& [key, label] : {std::pair{"", tr("Automatic (bf16 for bf16 weights, else f32)")},
                                     std::pair{"f32", tr("f32")}, std::pair{"bf16", tr("bf16")},
                                     std::pair{"q8", tr("q8 (8-bit blocks)")}, std::pair{"q4", tr("q4 (4-bit blocks)")}}) {
        const QString k = QString::fromLatin1(key);
        precision->addAction(label, this, [this, k] {
            openSettings(options_.settingsFile)->setValue("models/precision", k);
            if (!card_.path.isEmpty() && !isGenerating()) openModel(card_.path);  // reload in the new precision
        });
    }
    file->addSeparator();
    file->addAction(tr("&New Chat"), QKeySequence::New, this, &MainWindow::newConversation);
    file->addAction(tr("&Rename Chat\u2026"), this, &MainWindow::renameConversation);
    file->addAction(tr("Export Chat as &Markdown\u2026"), this, [this] { exportConversation(true); });
    file->addAction(tr("Export Chat as &JSON\u2026"), this, [this] { exportConversation(false); });
    file->addAction(tr("&Delete Chat"), this, &MainWindow::deleteConversation);
    file->addSeparator();
    file->addAction(tr("&Quit"), QKeySequence::Quit, this, &QWidget::close);

    QMenu* view = menuBar()->addMenu(tr("&View"));
    QMenu* theme = view->addMenu(tr("Theme"));
    for (const auto& [key, label] : {std::pair{"system", tr("Follow the System")}, std::pair{"light", tr("Light")},
                                     std::pair{"dark", tr("Dark")}}) {
        const QString k = QString::fromLatin1(key);
        theme->addAction(label, this, [this, k] {
            applyTheme(k);
            openSettings(options_.settingsFile)->setValue("view/theme", k);
        });
    }

    QMenu* help = menuBar()->addMenu(tr("&Help"));
    help->addAction(tr("&About Windowpane"), this, [this] {
        QMessageBox::about(this, tr("About Windowpane"),
                           tr("<h3>Windowpane %1</h3><p>Chat with Gemma, Gemma2 and Qwen2 models on your CPU, and see "
                              "what every layer attends to.</p><p>Qt %2 (built with %3)<br>OpenBLAS: %4<br>"
                              "Compiler: %5</p>")
                               .arg(QStringLiteral(WP_VERSION), QString::fromLatin1(qVersion()), QStringLiteral(QT_VERSION_STR),
                                    QString::fromLatin1(openblas_get_config()), QStringLiteral(__VERSION__)));
    });
}

void MainWindow::applyTheme(const QString& theme) {
    QApplication::setStyle(QStyleFactory::create("Fusion"));
    if (theme == "dark") {
        QPalette p;
        p.setColor(QPalette::Window, QColor(37, 37, 40));
        p.setColor(QPalette::WindowText, QColor(230, 230, 230));
        p.setColor(QPalette::Base, QColor(28, 28, 30));
        p.setColor(QPalette::AlternateBase, QColor(45, 45, 48));
        p.setColor(QPalette::Text, QColor(230, 230, 230));
        p.setColor(QPalette::Button, QColor(50, 50, 54));
        p.setColor(QPalette::ButtonText, QColor(230, 230, 230));
        p.setColor(QPalette::Highlight, QColor(70, 120, 200));
        p.setColor(QPalette::HighlightedText, Qt::white);
        p.setColor(QPalette::PlaceholderText, QColor(150, 150, 150));
        p.setColor(QPalette::ToolTipBase, QColor(50, 50, 54));
        p.setColor(QPalette::ToolTipText, QColor(230, 230, 230));
        QApplication::setPalette(p);
    } else if (theme == "light") {
        QApplication::setPalette(QApplication::style()->standardPalette());
    } else {
        // The platform theme's palette (light or dark as the desktop is set).
        QApplication::setPalette(QPalette());
    }
    const bool dark = QApplication::palette().color(QPalette::Window).lightness() < 128;
    setStyleSheet(dark ? "#userMessage { background: #2c3440; border-radius: 6px; }"
                         "#assistantMessage { background: #26292e; border-radius: 6px; }"
                         "#errorMessage { background: #4a2626; border-radius: 6px; }"
                       : "#userMessage { background: #e8f0fb; border-radius: 6px; }"
                         "#assistantMessage { background: #f6f6f6; border-radius: 6px; }"
                         "#errorMessage { background: #fbe4e4; border-radius: 6px; }");
}

// ---- models --------------------------------------------------------------------------------

void MainWindow::openModel(const QString& path) {
    if (path.isEmpty()) return;
    loadRequest_ = worker_.nextRequestId();
    loadingPath_ = QDir::cleanPath(path);
    progress_->setRange(0, 100);
    progress_->setValue(0);
    progress_->setFormat(tr("Loading %p%"));
    progress_->setVisible(true);
    statusBar()->showMessage(tr("Loading %1\u2026").arg(loadingPath_));
    updateSendButton();
    emit loadRequested(loadRequest_, loadingPath_, openSettings(options_.settingsFile)->value("models/precision").toString());
}

void MainWindow::onLoadProgress(quint64 id, double fraction) {
    if (id == loadRequest_) progress_->setValue(static_cast<int>(fraction * 100));
}

void MainWindow::onModelLoaded(quint64 id, const ModelCard& card) {
    if (id != loadRequest_) return;
    loadRequest_ = 0;
    progress_->setVisible(false);
    card_ = card;
    statusBar()->showMessage(tr("Loaded %1").arg(card.name), 5000);
    settings_->setSystemPromptSupported(card.systemRoleSupported, card.systemRoleReason);
    rememberRecent(card.path);
    openSettings(options_.settingsFile)->setValue("models/last", card.path);
    if (conversation_ && !loadingConversation_) store_.setModelPath(conversation_, card.path);
    updateModelCard();
    updateSendButton();
    emit modelReady(card);
}

void MainWindow::updateModelCard() {
    if (card_.path.isEmpty()) {
        modelButtonLabel_->setText(tr("<i>No model loaded</i>"));
        cardLabel_->setText(tr("Open a model folder (File \u2192 Open Model Folder\u2026) or drop one on the window."));
        return;
    }
    modelButtonLabel_->setText(tr("<b>%1</b> &nbsp; %2 \u00b7 %3 parameters")
                                   .arg(card_.name.toHtmlEscaped(), card_.family)
                                   .arg(QLocale().toString(card_.parameters)));
    int sliding = 0;
    QString layers;
    for (int l = 0; l < card_.layers.size(); ++l) {
        const LayerInfo& li = card_.layers[l];
        sliding += li.sliding;
        layers += QStringLiteral("<tr><td>%1</td><td>%2</td></tr>")
                      .arg(l)
                      .arg(li.sliding ? tr("sliding, window %1").arg(li.window) : tr("global"));
    }
    cardLabel_->setText(
        tr("<h3>%1</h3><table cellspacing=3>"
           "<tr><td>Family</td><td><b>%2</b></td></tr>"
           "<tr><td>Parameters</td><td>%3</td></tr>"
           "<tr><td>Weights</td><td>%4</td></tr>"
           "<tr><td>Context</td><td>%5 tokens</td></tr>"
           "<tr><td>Vocabulary</td><td>%6</td></tr>"
           "<tr><td>Attention</td><td>%7 heads, %8 KV heads, head dim %9</td></tr>"
           "<tr><td>KV cache</td><td>%10 per token (%11 cache)</td></tr>"
           "<tr><td>Tokenizer</td><td>%12</td></tr>"
           "<tr><td>Chat template</td><td>%13</td></tr></table>"
           "<p><b>Layers</b> (%14 global, %15 sliding)</p><table cellspacing=2>%16</table><p><small>%17</small></p>")
            .arg(card_.name.toHtmlEscaped(), card_.family, QLocale().toString(card_.parameters),
                 tr("%1, computed in %2").arg(card_.dtype, card_.precision))
            .arg(card_.contextLength)
            .arg(card_.vocabSize)
            .arg(card_.heads)
            .arg(card_.kvHeads)
            .arg(card_.headDim)
            .arg(humanBytes(static_cast<double>(card_.kvBytesPerToken)), card_.defaultCache, card_.tokenizer.toHtmlEscaped(),
                 card_.builtinTemplate ? tr("built-in (the folder has none)") : tr("from the model folder"))
            .arg(card_.layers.size() - sliding)
            .arg(sliding)
            .arg(layers, card_.path.toHtmlEscaped()));
}

void MainWindow::rememberRecent(const QString& path) {
    auto s = openSettings(options_.settingsFile);
    QStringList recent = s->value("models/recent").toStringList();
    recent.removeAll(path);
    recent.prepend(path);
    while (recent.size() > 10) recent.removeLast();
    s->setValue("models/recent", recent);
    rebuildRecentMenu();
}

void MainWindow::rebuildRecentMenu() {
    recentMenu_->clear();
    const QStringList recent = openSettings(options_.settingsFile)->value("models/recent").toStringList();
    for (const QString& p : recent) recentMenu_->addAction(p, this, [this, p] { openModel(p); });
    recentMenu_->setEnabled(!recent.isEmpty());
}

// ---- conversations -------------------------------------------------------------------------

void MainWindow::refreshConversations() {
    const QSignalBlocker block(conversations_);
    conversations_->clear();
    for (const StoredConversation& c : store_.listConversations(search_->text())) {
        auto* item = new QListWidgetItem(c.title.isEmpty() ? tr("New chat") : c.title, conversations_);
        item->setData(Qt::UserRole, c.id);
        item->setToolTip(QDateTime::fromMSecsSinceEpoch(c.updated).toString());
        if (c.id == conversation_) item->setSelected(true);
    }
}

void MainWindow::newConversation() {
    if (isGenerating()) return;
    conversation_ = 0;
    renderPath();
    refreshConversations();
    updateContextGauge(0);
    input_->setFocus();
}

void MainWindow::showConversation(qint64 id) {
    const auto conv = store_.conversation(id);
    if (!conv) return;
    conversation_ = id;
    loadingConversation_ = true;
    settings_->setSettings(GenerationSettings::fromJson(conv->settings));
    settings_->setSystemPrompt(conv->systemPrompt);
    loadingConversation_ = false;
    if (!conv->modelPath.isEmpty() && conv->modelPath != card_.path && conv->modelPath != loadingPath_ &&
        QFileInfo::exists(conv->modelPath + "/config.json"))
        openModel(conv->modelPath);
    renderPath();
    for (int i = 0; i < conversations_->count(); ++i)
        conversations_->item(i)->setSelected(conversations_->item(i)->data(Qt::UserRole).toLongLong() == id);
}

void MainWindow::saveConversationSettings() {
    if (!conversation_ || loadingConversation_) return;
    store_.setSettings(conversation_, settings_->settings().toJson());
    store_.setSystemPrompt(conversation_, settings_->systemPrompt());
}

void MainWindow::renameConversation() {
    if (!conversation_) return;
    const auto conv = store_.conversation(conversation_);
    bool ok = false;
    const QString title = QInputDialog::getText(this, tr("Rename chat"), tr("Title:"), QLineEdit::Normal,
                                                conv ? conv->title : QString(), &ok);
    if (ok && !title.trimmed().isEmpty()) {
        store_.renameConversation(conversation_, title.trimmed());
        refreshConversations();
    }
}

void MainWindow::deleteConversation() {
    if (!conversation_ || isGenerating()) return;
    if (QMessageBox::question(this, tr("Delete chat"), tr("Delete this conversation and all its branches?")) !=
        QMessageBox::Yes)
        return;
    store_.removeConversation(conversation_);
    newConversation();
}

void MainWindow::exportConversation(bool markdown) {
    if (!conversation_) return;
    const auto conv = store_.conversation(conversation_);
    QString name = conv ? conv->title : QStringLiteral("chat");
    name.replace(QRegularExpression("[^\\w\\- ]+"), "_");
    const QString path = QFileDialog::getSaveFileName(this, tr("Export chat"), name + (markdown ? ".md" : ".json"),
                                                      markdown ? tr("Markdown (*.md)") : tr("JSON (*.json)"));
    if (path.isEmpty()) return;
    QFile f(path);
    if (!f.open(QIODevice::WriteOnly | QIODevice::Truncate) ||
        f.write(markdown ? store_.exportMarkdown(conversation_).toUtf8() : store_.exportJson(conversation_)) < 0)
        showError(tr("Cannot write %1: %2").arg(path, f.errorString()));
}

QList<MessageWidget*> MainWindow::messageWidgets() const { return messagesHost_->findChildren<MessageWidget*>(); }

QString MainWindow::statsText(const ReplyStats& s) const {
    QString t = tr("%1 prompt tokens").arg(s.promptTokens);
    if (s.reusedPromptTokens > 0) t += tr(" (%1 cached)").arg(s.reusedPromptTokens);
    t += tr(" \u00b7 first token %1 ms \u00b7 %2 tokens \u00b7 %3 tokens/s")
             .arg(s.timeToFirstTokenMs, 0, 'f', 0)
             .arg(s.generatedTokens)
             .arg(s.tokensPerSecond, 0, 'f', 1);
    if (s.kvBytes > 0) t += tr(" \u00b7 KV cache %1").arg(humanBytes(static_cast<double>(s.kvBytes)));
    if (s.stopReason == "cancelled") t += tr(" \u00b7 stopped");
    else if (s.stopReason == "max_tokens") t += tr(" \u00b7 token limit reached");
    else if (s.stopReason == "context_full") t += tr(" \u00b7 context full");
    return t;
}

// Detaches a message widget at once (messageWidgets() no longer lists it) and deletes it later:
// it may be emitting the signal that led here.
void MainWindow::discard(MessageWidget* w) {
    w->hide();
    w->setParent(nullptr);
    w->deleteLater();
}

void MainWindow::renderPath() {
    for (MessageWidget* w : messageWidgets()) discard(w);
    streaming_ = nullptr;
    if (!conversation_) {
        updateContextGauge(0);
        return;
    }
    qint64 used = 0;
    for (const StoredMessage& m : store_.activePath(conversation_)) {
        DisplayMessage d;
        d.id = m.id;
        d.role = m.role;
        d.content = m.content;
        d.stopped = m.stopped;
        const QList<qint64> sibs = store_.siblings(m.id);
        d.siblingCount = std::max<int>(1, static_cast<int>(sibs.size()));
        d.siblingIndex = std::max<int>(0, static_cast<int>(sibs.indexOf(m.id)));
        if (m.role == "assistant" && !m.stats.isEmpty()) {
            ReplyStats s;
            s.promptTokens = m.stats.value("prompt_tokens").toInt();
            s.reusedPromptTokens = m.stats.value("reused_prompt_tokens").toInt();
            s.generatedTokens = m.stats.value("generated_tokens").toInt();
            s.timeToFirstTokenMs = m.stats.value("time_to_first_token_ms").toDouble();
            s.tokensPerSecond = m.stats.value("tokens_per_second").toDouble();
            s.kvBytes = static_cast<qint64>(m.stats.value("kv_bytes").toDouble());
            s.stopReason = m.stats.value("stop_reason").toString();
            d.statsText = statsText(s);
            d.tokens = tokensFromJson(m.stats.value("tokens").toArray());
            used = static_cast<qint64>(m.stats.value("context_used").toDouble());
        }
        auto* w = new MessageWidget(d, messagesHost_);
        connect(w, &MessageWidget::editRequested, this, &MainWindow::editMessage);
        connect(w, &MessageWidget::regenerateRequested, this, &MainWindow::regenerate);
        connect(w, &MessageWidget::branchRequested, this, &MainWindow::switchBranch);
        messagesLayout_->insertWidget(messagesLayout_->count() - 1, w);
    }
    updateContextGauge(used);
    QTimer::singleShot(0, this, [this] { scroll_->verticalScrollBar()->setValue(scroll_->verticalScrollBar()->maximum()); });
}

// ---- chatting ------------------------------------------------------------------------------

void MainWindow::sendMessage(const QString& rawText) {
    const QString text = rawText.trimmed();
    if (text.isEmpty() || isGenerating()) return;
    if (card_.path.isEmpty()) {
        showError(isLoading() ? tr("The model is still loading.") : tr("No model is loaded. Open a model folder first."));
        return;
    }
    if (!conversation_) {
        conversation_ = store_.createConversation(titleFrom(text), card_.path, settings_->settings().toJson(),
                                                  settings_->systemPrompt());
        if (!conversation_) {
            showError(tr("Cannot save the conversation: %1").arg(store_.lastError()));
            return;
        }
    }
    const auto path = store_.activePath(conversation_);
    const qint64 parent = path.isEmpty() ? 0 : path.last().id;
    const qint64 userId = store_.addMessage(conversation_, parent, "user", text);
    if (!userId) {
        showError(tr("Cannot save the message: %1").arg(store_.lastError()));
        return;
    }
    store_.setModelPath(conversation_, card_.path);
    input_->clear();
    refreshConversations();
    renderPath();
    startReply(userId);
}

void MainWindow::startReply(qint64 userMessageId) {
    // The turns from the root to the user message (not the whole active path: regenerating or
    // editing answers an earlier message).
    QList<ChatTurn> turns;
    for (qint64 id = userMessageId; id;) {
        const auto m = store_.message(id);
        if (!m) break;
        turns.prepend({m->role, m->content});
        id = m->parentId;
    }
    const QString system = settings_->systemPrompt().trimmed();
    if (!system.isEmpty() && card_.systemRoleSupported) turns.prepend({"system", system});

    DisplayMessage d;
    d.role = "assistant";
    d.streaming = true;
    streaming_ = new MessageWidget(d, messagesHost_);
    messagesLayout_->insertWidget(messagesLayout_->count() - 1, streaming_);
    replyParent_ = userMessageId;
    stopRequested_ = false;
    activeRequest_ = worker_.nextRequestId();
    statusLabel_->setText(tr("Reading the prompt\u2026"));
    updateSendButton();
    emit generateRequested(activeRequest_, card_.path, turns, settings_->settings());
}

void MainWindow::stopGeneration() {
    if (!activeRequest_) return;
    // The reply ends with what is on screen now; the worker, which may be a few tokens ahead,
    // stops before its next token and the tokens still queued are dropped.
    stopRequested_ = true;
    worker_.cancel(activeRequest_);  // thread-safe: the worker is busy generating
}

void MainWindow::regenerate(qint64 assistantId) {
    if (isGenerating()) return;
    const auto m = store_.message(assistantId);
    if (!m || !m->parentId) return;
    // Show the path up to the user message being answered again; the new reply becomes a sibling
    // of the old one.
    renderPath();
    bool after = false;
    for (MessageWidget* w : messageWidgets()) {
        if (after) discard(w);
        if (w->message().id == m->parentId) after = true;
    }
    startReply(m->parentId);
}

void MainWindow::editMessage(qint64 id, const QString& text) {
    if (isGenerating()) return;
    const auto m = store_.message(id);
    if (!m) return;
    const qint64 newId = store_.addMessage(conversation_, m->parentId, m->role, text.trimmed());
    if (!newId) {
        showError(tr("Cannot save the edit: %1").arg(store_.lastError()));
        return;
    }
    renderPath();
    if (m->role == "user") startReply(newId);
}

void MainWindow::switchBranch(qint64 id, int delta) {
    if (isGenerating()) return;
    const QList<qint64> sibs = store_.siblings(id);
    const int i = static_cast<int>(sibs.indexOf(id)) + delta;
    if (i < 0 || i >= sibs.size()) return;
    store_.selectBranch(sibs[i]);
    renderPath();
}

void MainWindow::analyze(const QString& text) {
    tabs_->setCurrentIndex(1);
    if (card_.path.isEmpty()) {
        analyzeStatus_->setText(tr("No model is loaded."));
        return;
    }
    QList<ChatTurn> turns;
    if (text.isEmpty() && conversation_)
        for (const StoredMessage& m : store_.activePath(conversation_)) turns.push_back({m.role, m.content});
    if (text.isEmpty() && turns.isEmpty()) {
        analyzeStatus_->setText(tr("Type a text, or chat first: the view shows the conversation's tokens."));
        return;
    }
    analyzeRequest_ = worker_.nextRequestId();
    analyzeStatus_->setText(tr("Running the model\u2026"));
    emit analyzeRequested(analyzeRequest_, card_.path, text, turns, maskView_->layer());
}

void MainWindow::onPromptProgress(quint64 id, int done, int total) {
    if (id != activeRequest_) return;
    statusLabel_->setText(done < total ? tr("Reading the prompt: %1 of %2 tokens").arg(done).arg(total)
                                       : tr("Generating\u2026"));
}

void MainWindow::onToken(quint64 id, const QString& text, const TokenInfo& info) {
    if (id != activeRequest_ || !streaming_ || stopRequested_) return;  // a late token of a stopped request
    QScrollBar* bar = scroll_->verticalScrollBar();
    const bool atBottom = bar->value() >= bar->maximum() - 40;
    streaming_->appendToken(info);
    if (atBottom) QTimer::singleShot(0, this, [bar] { bar->setValue(bar->maximum()); });
    emit tokenArrived(text);
}

void MainWindow::onStats(quint64 id, const ReplyStats& s) {
    if (id != activeRequest_) return;
    statusLabel_->setText(tr("Generating \u00b7 %1 tokens \u00b7 %2 tokens/s").arg(s.generatedTokens).arg(s.tokensPerSecond, 0, 'f', 1));
    updateContextGauge(s.contextUsed);
}

void MainWindow::onFinished(quint64 id, const QString& text, const ReplyStats& s) {
    if (id != activeRequest_) return;
    activeRequest_ = 0;
    const bool stopped = stopRequested_ || s.stopReason == "cancelled";
    ReplyStats final = s;
    QString reply = text;
    if (stopped && streaming_) {
        // Keep exactly what was shown when Stop was pressed.
        reply = streaming_->message().content;
        final.generatedTokens = static_cast<int>(streaming_->message().tokens.size());
        final.stopReason = "cancelled";
    }
    if (!reply.isEmpty() || !stopped) {
        QJsonObject stats = final.toJson();
        if (streaming_) stats.insert("tokens", tokensToJson(streaming_->message().tokens));
        if (!store_.addMessage(conversation_, replyParent_, "assistant", reply, stats, stopped))
            showError(tr("Cannot save the reply: %1").arg(store_.lastError()));
    }
    stopRequested_ = false;
    statusLabel_->setText(statsText(final));
    renderPath();
    updateContextGauge(s.contextUsed);
    refreshConversations();
    updateSendButton();
    emit replyFinished(reply);
    if (tabs_->currentIndex() == 1 && analyzeText_->text().isEmpty()) analyze();
}

void MainWindow::onWorkerError(quint64 id, const QString& message) {
    if (id == loadRequest_) {
        loadRequest_ = 0;
        progress_->setVisible(false);
        loadingPath_.clear();
        const QString msg = tr("Could not load %1: %2").arg(QDir::cleanPath(loadingPath_), message);
        showError(card_.path.isEmpty() ? msg : msg + tr(" \u2014 still using %1.").arg(card_.name));
        updateSendButton();
        emit modelFailed(message);
        return;
    }
    if (id == analyzeRequest_) {
        analyzeRequest_ = 0;
        analyzeStatus_->setText(message);
        emit analysisReady();
        return;
    }
    if (id == activeRequest_) {
        activeRequest_ = 0;
        if (streaming_) discard(streaming_);
        streaming_ = nullptr;
        statusLabel_->clear();
        showError(message);
        updateSendButton();
    }
}

void MainWindow::showError(const QString& message) {
    lastError_ = message;
    DisplayMessage d;
    d.error = true;
    d.content = message;
    auto* w = new MessageWidget(d, messagesHost_);
    messagesLayout_->insertWidget(messagesLayout_->count() - 1, w);
    statusBar()->showMessage(message, 10000);
    QTimer::singleShot(0, this, [this] { scroll_->verticalScrollBar()->setValue(scroll_->verticalScrollBar()->maximum()); });
}

void MainWindow::updateContextGauge(qint64 used) {
    const int ctx = card_.contextLength;
    contextGauge_->setRange(0, std::max(ctx, 1));
    contextGauge_->setValue(static_cast<int>(std::min<qint64>(used, ctx)));
    const double frac = ctx > 0 ? static_cast<double>(used) / ctx : 0;
    contextLabel_->setText(ctx > 0 ? tr("context %1 / %2").arg(used).arg(ctx) : QString());
    if (frac >= 0.9) {
        contextLabel_->setText(contextLabel_->text() + tr(" \u2014 nearly full: start a new chat"));
        contextLabel_->setStyleSheet("color: #c0392b; font-weight: bold;");
    } else {
        contextLabel_->setStyleSheet({});
    }
}

void MainWindow::updateSendButton() {
    send_->setText(isGenerating() ? tr("Stop") : tr("Send"));
    send_->setToolTip(isGenerating() ? tr("Stop the reply (Esc)") : tr("Send (Enter)"));
    send_->setEnabled(isGenerating() || !card_.path.isEmpty());
}

// ---- events --------------------------------------------------------------------------------

bool MainWindow::eventFilter(QObject* o, QEvent* e) {
    if (o == input_ && e->type() == QEvent::KeyPress) {
        auto* k = static_cast<QKeyEvent*>(e);
        if ((k->key() == Qt::Key_Return || k->key() == Qt::Key_Enter) && !(k->modifiers() & Qt::ShiftModifier)) {
            sendMessage(input_->toPlainText());
            return true;
        }
    }
    return QMainWindow::eventFilter(o, e);
}

void MainWindow::dragEnterEvent(QDragEnterEvent* e) {
    for (const QUrl& u : e->mimeData()->urls())
        if (u.isLocalFile() && QFileInfo(u.toLocalFile()).isDir()) {
            e->acceptProposedAction();
            return;
        }
}

void MainWindow::dropEvent(QDropEvent* e) {
    for (const QUrl& u : e->mimeData()->urls())
        if (u.isLocalFile() && QFileInfo(u.toLocalFile()).isDir()) {
            openModel(u.toLocalFile());
            return;
        }
}

void MainWindow::closeEvent(QCloseEvent* e) {
    if (isGenerating() && streaming_) {
        // Keep what was generated so far, marked as stopped.
        worker_.cancel(activeRequest_);
        QJsonObject stats;
        stats.insert("tokens", tokensToJson(streaming_->message().tokens));
        stats.insert("stop_reason", "cancelled");
        if (!streaming_->message().content.isEmpty())
            store_.addMessage(conversation_, replyParent_, "assistant", streaming_->message().content, stats, true);
        activeRequest_ = 0;
    }
    auto s = openSettings(options_.settingsFile);
    s->setValue("chat/draft", input_->toPlainText());
    s->setValue("window/geometry", saveGeometry());
    s->setValue("window/state", saveState());
    QMainWindow::closeEvent(e);
}

}  // namespace wp::ui
