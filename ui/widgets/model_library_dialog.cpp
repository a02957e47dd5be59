#include "widgets/model_library_dialog.h"

#include <QDialogButtonBox>
#include <QFileDialog>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QLocale>
#include <QPushButton>
#include <QTableWidget>
#include <QVBoxLayout>

#include "engine/hub_thread.h"
#include "engine/remote_model_ref.h"
#include "engine/remote_models.h"
#include "widgets/units.h"

namespace wp::ui {

namespace {

QString count(qint64 n) {
    if (n >= 1000000000) return QStringLiteral("%1B").arg(n / 1e9, 0, 'f', 2);
    if (n >= 1000000) return QStringLiteral("%1M").arg(n / 1e6, 0, 'f', 1);
    if (n >= 1000) return QStringLiteral("%1K").arg(n / 1e3, 0, 'f', 1);
    return n > 0 ? QString::number(n) : QStringLiteral("?");
}

}  // namespace

namespace {
const QString kRemoteSource = QStringLiteral("Remote");
}

ModelLibraryDialog::ModelLibraryDialog(HubThread& hub, QWidget* parent, RemoteModels* remote)
    : QDialog(parent), hub_(hub), remote_(remote) {
    setWindowTitle(tr("Model Library"));
    auto* layout = new QVBoxLayout(this);
    auto* intro = new QLabel(tr("Models in the Hugging Face cache (shared with transformers), the GGUF files of LM Studio and "
                                "Ollama, and the model folders and GGUF files in folders you added."),
                             this);
    intro->setWordWrap(true);
    layout->addWidget(intro);
    table_ = new QTableWidget(0, 8, this);
    table_->setHorizontalHeaderLabels(
        {tr("Model"), tr("Family"), tr("Head"), tr("Parameters"), tr("Dtype"), tr("Context"), tr("Size"), tr("Location")});
    table_->setSelectionBehavior(QAbstractItemView::SelectRows);
    table_->setSelectionMode(QAbstractItemView::SingleSelection);
    table_->setEditTriggers(QAbstractItemView::NoEditTriggers);
    table_->verticalHeader()->setVisible(false);
    table_->horizontalHeader()->setStretchLastSection(true);
    table_->setWordWrap(false);
    layout->addWidget(table_, 1);
    status_ = new QLabel(this);
    status_->setWordWrap(true);
    status_->setTextInteractionFlags(Qt::TextSelectableByMouse);
    layout->addWidget(status_);

    auto* buttons = new QHBoxLayout;
    auto* add = new QPushButton(tr("Add Folder\u2026"), this);
    remove_ = new QPushButton(tr("Remove Folder"), this);
    auto* get = new QPushButton(tr("Get Models\u2026"), this);
    auto* addEndpoint = new QPushButton(tr("Add Endpoint\u2026"), this);
    addEndpoint->setObjectName("libraryAddEndpoint");
    addEndpoint->setToolTip(tr("Add the models of an OpenAI-compatible server (vLLM, llama-server, windowpane-cli serve, \u2026)"));
    addEndpoint->setVisible(remote_ != nullptr);
    removeEndpoint_ = new QPushButton(tr("Remove Endpoint"), this);
    removeEndpoint_->setObjectName("libraryRemoveEndpoint");
    removeEndpoint_->setVisible(remote_ != nullptr);
    auto* refreshButton = new QPushButton(tr("Refresh"), this);
    open_ = new QPushButton(tr("Open"), this);
    open_->setDefault(true);
    auto* close = new QPushButton(tr("Close"), this);
    for (QPushButton* b : {add, remove_, get, addEndpoint, removeEndpoint_, refreshButton}) buttons->addWidget(b);
    buttons->addStretch(1);
    buttons->addWidget(open_);
    buttons->addWidget(close);
    layout->addLayout(buttons);

    connect(close, &QPushButton::clicked, this, &QDialog::reject);
    connect(refreshButton, &QPushButton::clicked, this, &ModelLibraryDialog::refresh);
    connect(get, &QPushButton::clicked, this, &ModelLibraryDialog::getModelsRequested);
    connect(addEndpoint, &QPushButton::clicked, this, &ModelLibraryDialog::addEndpointRequested);
    connect(removeEndpoint_, &QPushButton::clicked, this, [this] {
        const int row = table_->currentRow();
        if (remote_ == nullptr || row < 0 || row >= entries_.size() || entries_[row].source != kRemoteSource) return;
        if (const auto ref = parseRemoteModelPath(entries_[row].dir)) remote_->removeEndpoint(ref->baseUrl);
    });
    if (remote_ != nullptr)  // an endpoint added or removed: the rows again, without a new local listing
        connect(remote_, &RemoteModels::changed, this, [this] { showEntries(localEntries_); });
    connect(open_, &QPushButton::clicked, this, &ModelLibraryDialog::openSelected);
    connect(table_, &QTableWidget::cellDoubleClicked, this, &ModelLibraryDialog::openSelected);
    connect(table_, &QTableWidget::itemSelectionChanged, this, &ModelLibraryDialog::selectionChanged);
    connect(add, &QPushButton::clicked, this, [this] {
        const QString dir = QFileDialog::getExistingDirectory(this, tr("Add a model folder"));
        if (dir.isEmpty()) return;
        request_ = hub_.nextRequestId();
        status_->setText(tr("Adding %1\u2026").arg(dir));
        hub_.post(&HubWorker::addFolder, request_, dir);
    });
    connect(remove_, &QPushButton::clicked, this, [this] {
        const int row = table_->currentRow();
        if (row < 0 || row >= entries_.size() || entries_[row].addedFolder.isEmpty()) return;
        request_ = hub_.nextRequestId();
        hub_.post(&HubWorker::removeFolder, request_, entries_[row].addedFolder);
    });
    connect(hub_.worker(), &HubWorker::libraryListed, this, [this](quint64 id, const QList<LibraryEntry>& e) {
        if (id == request_) showEntries(e);
    });
    connect(hub_.worker(), &HubWorker::failed, this, [this](quint64 id, const QString& message, bool) {
        if (id == request_) status_->setText(message);
    });
    resize(980, 460);
    selectionChanged();
    refresh();
}

void ModelLibraryDialog::refresh() {
    request_ = hub_.nextRequestId();
    status_->setText(tr("Reading the library\u2026"));
    hub_.post(&HubWorker::listLibrary, request_);
}

QList<LibraryEntry> ModelLibraryDialog::remoteEntries() const {
    QList<LibraryEntry> out;
    if (remote_ == nullptr) return out;
    for (const QString& path : remote_->modelPaths()) {
        const auto ref = parseRemoteModelPath(path);
        LibraryEntry e;
        e.name = ref->model;
        e.dir = path;
        e.family = tr("remote");
        e.head = QStringLiteral("chat");
        e.source = kRemoteSource;
        e.supported = true;
        out.push_back(e);
    }
    return out;
}

void ModelLibraryDialog::showEntries(const QList<LibraryEntry>& local) {
    localEntries_ = local;
    entries_ = local + remoteEntries();
    const QList<LibraryEntry>& entries = entries_;
    table_->setRowCount(static_cast<int>(entries.size()));
    int firstSupported = -1;
    for (int r = 0; r < entries.size(); ++r) {
        const LibraryEntry& e = entries[r];
        // Where it is: the cache's commit, the other app's name, or the path of an added folder's model.
        const QString location = e.fromHubCache ? tr("Hugging Face cache") + QStringLiteral(" \u00b7 ") + e.commit.left(10)
                                 : e.source == QLatin1String("LM Studio") ? tr("LM Studio")
                                 : e.source == QLatin1String("Ollama")    ? tr("Ollama")
                                 : e.source == kRemoteSource ? tr("Remote \u00b7 %1").arg(parseRemoteModelPath(e.dir)->baseUrl)
                                                             : e.dir;
        const bool remote = e.source == kRemoteSource;  // the server knows its size: nothing to say here
        const QStringList cells = {e.name, e.family.isEmpty() ? QStringLiteral("?") : e.family, e.head,
                                   remote ? QString() : count(e.parameters), e.dtype,
                                   e.contextLength > 0 ? QLocale().toString(e.contextLength) : QString(),
                                   remote ? QString() : humanBytes(static_cast<double>(e.bytesOnDisk)), location};
        for (int c = 0; c < cells.size(); ++c) {
            auto* item = new QTableWidgetItem(cells[c]);
            if (c == 3 || c == 5 || c == 6) item->setTextAlignment(Qt::AlignRight | Qt::AlignVCenter);
            item->setToolTip(e.supported ? e.dir : tr("Windowpane cannot open it: %1").arg(e.why));
            if (!e.supported) item->setForeground(palette().color(QPalette::Disabled, QPalette::Text));
            table_->setItem(r, c, item);
        }
        if (e.supported && firstSupported < 0) firstSupported = r;
    }
    table_->resizeColumnsToContents();
    if (firstSupported >= 0) table_->selectRow(firstSupported);
    status_->setText(entries.isEmpty() ? tr("No models yet: Get Models downloads one from the Hugging Face hub, "
                                            "Add Folder adds a model folder you have, or a folder of GGUF files.")
                                       : tr("%n model(s).", nullptr, static_cast<int>(entries.size())));
    selectionChanged();
    emit listed(entries_);
}

void ModelLibraryDialog::selectionChanged() {
    const int row = table_->currentRow();
    const bool valid = row >= 0 && row < entries_.size() && !table_->selectedItems().isEmpty();
    open_->setEnabled(valid && entries_[row].supported);
    remove_->setEnabled(valid && !entries_[row].addedFolder.isEmpty());
    removeEndpoint_->setEnabled(valid && entries_[row].source == kRemoteSource);
    removeEndpoint_->setToolTip(valid && entries_[row].source == kRemoteSource
                                    ? tr("Forget %1, every model of it, and its key").arg(parseRemoteModelPath(entries_[row].dir)->baseUrl)
                                    : QString());
    remove_->setToolTip(valid && !entries_[row].addedFolder.isEmpty()
                            ? tr("Remove the added folder %1 from the library (nothing is deleted)").arg(entries_[row].addedFolder)
                            : QString());
    if (valid && !entries_[row].supported) status_->setText(tr("Windowpane cannot open %1: %2").arg(entries_[row].name, entries_[row].why));
    else if (valid) status_->setText(entries_[row].dir);
}

void ModelLibraryDialog::openSelected() {
    const int row = table_->currentRow();
    if (row < 0 || row >= entries_.size() || !entries_[row].supported) return;
    emit openRequested(entries_[row].dir);
    accept();
}

}  // namespace wp::ui
