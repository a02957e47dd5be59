#include "widgets/get_models_dialog.h"

#include <QComboBox>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QInputDialog>
#include <QLabel>
#include <QLineEdit>
#include <QProgressBar>
#include <QPushButton>
#include <QSplitter>
#include <QTableWidget>
#include <QVBoxLayout>
#include <unistd.h>

#include "engine/hub_thread.h"
#include "widgets/units.h"

namespace wp::ui {

namespace {

enum DownloadColumn { kRepo, kProgress, kState, kAction, kCancel };

double physicalMemory() {
    const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
    return pages > 0 && page > 0 ? static_cast<double>(pages) * page : 0;
}

QString duration(double s) {
    if (s >= 3600) return QStringLiteral("%1 h %2 min").arg(static_cast<int>(s / 3600)).arg(static_cast<int>(s / 60) % 60);
    if (s >= 60) return QStringLiteral("%1 min %2 s").arg(static_cast<int>(s / 60)).arg(static_cast<int>(s) % 60);
    return QStringLiteral("%1 s").arg(static_cast<int>(s));
}

}  // namespace

GetModelsDialog::GetModelsDialog(HubThread& browse, HubThread& downloads, QWidget* parent)
    : QDialog(parent), browse_(browse), downloadThread_(downloads) {
    setWindowTitle(tr("Get Models from the Hugging Face Hub"));
    auto* layout = new QVBoxLayout(this);
    auto* bar = new QHBoxLayout;
    query_ = new QLineEdit(this);
    query_->setPlaceholderText(tr("Search models (for example qwen2 instruct, gemma-2)"));
    sort_ = new QComboBox(this);
    sort_->addItem(tr("Most downloaded"), QStringLiteral("downloads"));
    sort_->addItem(tr("Most liked"), QStringLiteral("likes"));
    auto* go = new QPushButton(tr("Search"), this);
    auto* login = new QPushButton(tr("Log In\u2026"), this);
    bar->addWidget(query_, 1);
    bar->addWidget(sort_);
    bar->addWidget(go);
    bar->addWidget(login);
    layout->addLayout(bar);

    auto* split = new QSplitter(Qt::Horizontal, this);
    results_ = new QTableWidget(0, 3, split);
    results_->setHorizontalHeaderLabels({tr("Model"), tr("Downloads"), tr("Likes")});
    results_->setSelectionBehavior(QAbstractItemView::SelectRows);
    results_->setSelectionMode(QAbstractItemView::SingleSelection);
    results_->setEditTriggers(QAbstractItemView::NoEditTriggers);
    results_->verticalHeader()->setVisible(false);
    results_->horizontalHeader()->setSectionResizeMode(0, QHeaderView::Stretch);
    auto* right = new QWidget(split);
    auto* rightLayout = new QVBoxLayout(right);
    rightLayout->setContentsMargins(0, 0, 0, 0);
    details_ = new QLabel(tr("Choose a model to see its files."), right);
    details_->setWordWrap(true);
    details_->setAlignment(Qt::AlignTop | Qt::AlignLeft);
    details_->setTextInteractionFlags(Qt::TextSelectableByMouse);
    download_ = new QPushButton(tr("Download"), right);
    download_->setEnabled(false);
    rightLayout->addWidget(details_, 1);
    rightLayout->addWidget(download_, 0, Qt::AlignRight);
    split->setStretchFactor(0, 3);
    split->setStretchFactor(1, 2);
    layout->addWidget(split, 3);

    layout->addWidget(new QLabel(tr("Downloads"), this));
    downloads_ = new QTableWidget(0, 5, this);
    downloads_->setHorizontalHeaderLabels({tr("Model"), tr("Progress"), tr("State"), QString(), QString()});
    downloads_->verticalHeader()->setVisible(false);
    downloads_->setEditTriggers(QAbstractItemView::NoEditTriggers);
    downloads_->setSelectionMode(QAbstractItemView::NoSelection);
    downloads_->horizontalHeader()->setSectionResizeMode(kState, QHeaderView::Stretch);
    downloads_->setColumnWidth(kRepo, 260);
    downloads_->setColumnWidth(kProgress, 180);
    layout->addWidget(downloads_, 2);
    status_ = new QLabel(this);
    status_->setWordWrap(true);
    layout->addWidget(status_);

    connect(go, &QPushButton::clicked, this, [this] { searchFor(query_->text()); });
    connect(query_, &QLineEdit::returnPressed, this, [this] { searchFor(query_->text()); });
    connect(sort_, &QComboBox::currentIndexChanged, this, [this] { searchFor(query_->text()); });
    connect(results_, &QTableWidget::itemSelectionChanged, this, [this] {
        const auto items = results_->selectedItems();
        if (!items.isEmpty()) selectRepo(results_->item(items.first()->row(), 0)->text());
    });
    connect(download_, &QPushButton::clicked, this, &GetModelsDialog::downloadSelected);
    connect(login, &QPushButton::clicked, this, [this] {
        bool ok = false;
        const QString token = QInputDialog::getText(
            this, tr("Hugging Face token"),
            tr("A read token from huggingface.co/settings/tokens. Gated models (Gemma) also need their\n"
               "license accepted on the model's page. The token is kept where huggingface-cli keeps it."),
            QLineEdit::Password, {}, &ok);
        if (!ok || token.trimmed().isEmpty()) return;
        tokenRequest_ = browse_.nextRequestId();
        browse_.post(&HubWorker::saveToken, tokenRequest_, token);
    });

    HubWorker* b = browse_.worker();
    connect(b, &HubWorker::searched, this, [this](quint64 id, const QList<HubHit>& hits) {
        if (id == searchRequest_) showHits(hits);
    });
    connect(b, &HubWorker::repoFilesListed, this, [this](quint64 id, const HubRepoFiles& f) {
        if (id == filesRequest_) showFiles(f);
    });
    connect(b, &HubWorker::tokenSaved, this, [this](quint64 id) {
        if (id == tokenRequest_) status_->setText(tr("Token saved."));
    });
    connect(b, &HubWorker::failed, this, [this](quint64 id, const QString& message, bool) {
        if (id == searchRequest_ || id == tokenRequest_) status_->setText(message);
        if (id == filesRequest_) {
            details_->setText(message);
            download_->setEnabled(false);
        }
    });
    HubWorker* d = downloadThread_.worker();
    connect(d, &HubWorker::downloadProgress, this, &GetModelsDialog::onProgress);
    connect(d, &HubWorker::downloaded, this, [this](quint64 id, const QString& dir) {
        if (!active_.contains(id)) return;
        Download& dl = active_[id];
        dl.running = false;
        auto* bar = qobject_cast<QProgressBar*>(downloads_->cellWidget(dl.row, kProgress));
        if (bar != nullptr) bar->setValue(bar->maximum());
        downloads_->item(dl.row, kState)->setText(tr("Done: in the Hugging Face cache"));
        setRowAction(dl.row, tr("Open"), [this, dir] {
            emit openRequested(dir);
            accept();
        });
        downloads_->removeCellWidget(dl.row, kCancel);
        emit downloadFinished(dl.repo, dir);
    });
    connect(d, &HubWorker::failed, this, [this](quint64 id, const QString& message, bool cancelled) {
        if (!active_.contains(id)) return;
        Download& dl = active_[id];
        dl.running = false;
        if (dl.discard) return discard(id);
        downloads_->item(dl.row, kState)->setText(cancelled ? tr("Paused: Resume continues where it stopped") : message);
        downloads_->item(dl.row, kState)->setToolTip(message);
        const QString repo = dl.repo;
        setRowAction(dl.row, cancelled ? tr("Resume") : tr("Retry"), [this, repo] {
            selected_ = repo;
            downloadSelected();
        });
        setCancel(dl.row, id);
        if (!cancelled) emit downloadFailed(repo, message);
    });
    connect(b, &HubWorker::partialListed, this, [this](quint64 id, const QList<PartialDownloadInfo>& partial) {
        if (id == partialRequest_) showPartial(partial);
    });
    resize(1000, 620);
    searchFor({});
    partialRequest_ = browse_.nextRequestId();
    browse_.post(&HubWorker::listPartial, partialRequest_);
}

// Rows for the downloads an earlier session left unfinished: Resume continues them.
void GetModelsDialog::showPartial(const QList<PartialDownloadInfo>& partial) {
    for (const PartialDownloadInfo& p : partial) {
        bool shown = false;
        for (const Download& d : active_) shown = shown || d.repo == p.repo;
        if (shown) continue;
        const int row = addRow(p.repo);
        const quint64 id = downloadThread_.nextRequestId();  // the row's id until Resume posts a new one
        active_.insert(id, {p.repo, row, false});
        downloads_->item(row, kState)->setText(tr("Paused (%1 downloaded): Resume continues where it stopped").arg(humanBytes(static_cast<double>(p.bytes))));
        const QString repo = p.repo;
        setRowAction(row, tr("Resume"), [this, repo] {
            selected_ = repo;
            downloadSelected();
        });
        setCancel(row, id);
    }
}

int GetModelsDialog::addRow(const QString& repo) {
    const int row = downloads_->rowCount();
    downloads_->insertRow(row);
    downloads_->setItem(row, kRepo, new QTableWidgetItem(repo));
    auto* bar = new QProgressBar(downloads_);
    bar->setRange(0, 1000);
    bar->setValue(0);
    downloads_->setCellWidget(row, kProgress, bar);
    downloads_->setItem(row, kState, new QTableWidgetItem);
    return row;
}

void GetModelsDialog::searchFor(const QString& text) {
    query_->setText(text);
    searchRequest_ = browse_.nextRequestId();
    status_->setText(tr("Searching\u2026"));
    browse_.post(&HubWorker::search, searchRequest_, text, sort_->currentData().toString());
}

void GetModelsDialog::showHits(const QList<HubHit>& hits) {
    results_->setRowCount(static_cast<int>(hits.size()));
    for (int r = 0; r < hits.size(); ++r) {
        auto* name = new QTableWidgetItem(hits[r].id);
        if (hits[r].gated) name->setToolTip(tr("Gated: accept its license on the hub, then Log In."));
        results_->setItem(r, 0, name);
        for (int c : {1, 2}) {
            auto* item = new QTableWidgetItem(QString::number(c == 1 ? hits[r].downloads : hits[r].likes));
            item->setTextAlignment(Qt::AlignRight | Qt::AlignVCenter);
            results_->setItem(r, c, item);
        }
    }
    status_->setText(hits.isEmpty() ? tr("No models of the families Windowpane runs (Gemma, Gemma2, Qwen2) match.")
                                    : tr("%n model(s) of the families Windowpane runs.", nullptr, static_cast<int>(hits.size())));
}

void GetModelsDialog::selectRepo(const QString& id) {
    selected_ = id;
    download_->setEnabled(false);
    details_->setText(tr("Reading %1's files\u2026").arg(id));
    filesRequest_ = browse_.nextRequestId();
    browse_.post(&HubWorker::repoFiles, filesRequest_, id);
}

void GetModelsDialog::showFiles(const HubRepoFiles& f) {
    quint64 total = 0;
    QString lines;
    for (int i = 0; i < f.paths.size(); ++i) {
        total += f.sizes[i];
        lines += QStringLiteral("%1 \u2014 %2<br>").arg(f.paths[i].toHtmlEscaped(), humanBytes(static_cast<double>(f.sizes[i])));
    }
    // What the weights take in memory at each precision (parameters from the hub, else from the bytes).
    const double params = f.parameters > 0 ? static_cast<double>(f.parameters) : f.weightBytes / 2.0;
    const double ram = physicalMemory();
    QString fits;
    for (const auto& [name, bytesPerWeight] : {std::pair{"f32", 4.0}, {"bf16", 2.0}, {"q8", 34.0 / 32}, {"q4", 18.0 / 32}}) {
        const double need = params * bytesPerWeight;
        const bool ok = ram <= 0 || need < 0.8 * ram;  // room left for the KV cache, the app and the system
        fits += QStringLiteral("<br>&nbsp;&nbsp;%1: %2 %3").arg(QString::fromLatin1(name), humanBytes(need), ok ? tr("\u2713 fits") : tr("\u2717 too large"));
    }
    details_->setText(tr("<b>%1</b>%2<br>%3 files, %4 to download (commit %5)<br><br>%6<br>Weights in memory (this machine has %7):%8")
                          .arg(f.id.toHtmlEscaped(), f.gated ? tr(" \u2014 gated: accept its license on the hub, then Log In") : QString())
                          .arg(f.paths.size())
                          .arg(humanBytes(static_cast<double>(total)), f.commit.left(10), lines, humanBytes(ram), fits));
    download_->setEnabled(!f.paths.isEmpty());
}

QString GetModelsDialog::details() const { return details_->text(); }

void GetModelsDialog::downloadSelected() {
    if (selected_.isEmpty()) return;
    const quint64 id = downloadThread_.nextRequestId();
    int row = -1;
    for (auto it = active_.begin(); it != active_.end(); ++it)  // again: the same row, resumed
        if (it.value().repo == selected_) {
            if (it.value().running) return;
            row = it.value().row;
            active_.erase(it);
            break;
        }
    if (row < 0) row = addRow(selected_);
    downloads_->item(row, kState)->setText(tr("Queued"));
    active_.insert(id, {selected_, row, true});
    setRowAction(row, tr("Pause"), [this, id] { downloadThread_.worker()->cancelDownload(id); });
    setCancel(row, id);
    downloadThread_.post(&HubWorker::download, id, selected_);
}

void GetModelsDialog::onProgress(quint64 id, const DownloadProgress& p) {
    if (!active_.contains(id)) return;
    const Download& dl = active_[id];
    auto* bar = qobject_cast<QProgressBar*>(downloads_->cellWidget(dl.row, kProgress));
    if (bar != nullptr) bar->setValue(p.total > 0 ? static_cast<int>(1000.0 * p.done / p.total) : 0);
    const double left = p.bytesPerSecond > 0 ? (p.total - std::min(p.done, p.total)) / p.bytesPerSecond : 0;
    downloads_->item(dl.row, kState)->setText(
        p.file.isEmpty() ? tr("Linking the snapshot\u2026")
                         : tr("%1 of %2 \u00b7 %3/s \u00b7 %4 left \u00b7 file %5 of %6: %7 (%8 of %9)")
                               .arg(humanBytes(static_cast<double>(p.done)), humanBytes(static_cast<double>(p.total)),
                                    humanBytes(p.bytesPerSecond), duration(left))
                               .arg(std::min(p.filesDone + 1, p.filesTotal))
                               .arg(p.filesTotal)
                               .arg(p.file, humanBytes(static_cast<double>(p.fileDone)),
                                    humanBytes(static_cast<double>(p.fileTotal))));
}

void GetModelsDialog::setRowAction(int row, const QString& label, const std::function<void()>& action) {
    auto* button = new QPushButton(label, downloads_);
    connect(button, &QPushButton::clicked, this, action);
    downloads_->setCellWidget(row, kAction, button);
}

// Cancel: stops the download if it runs, then deletes its partial files; the row stays, marked.
void GetModelsDialog::setCancel(int row, quint64 id) {
    auto* button = new QPushButton(tr("Cancel"), downloads_);
    connect(button, &QPushButton::clicked, this, [this, id] {
        if (!active_.contains(id)) return;
        Download& dl = active_[id];
        dl.discard = true;
        if (dl.running)
            downloadThread_.worker()->cancelDownload(id);  // discard() follows its end
        else
            discard(id);
    });
    downloads_->setCellWidget(row, kCancel, button);
}

void GetModelsDialog::discard(quint64 id) {
    const Download dl = active_.take(id);
    downloads_->removeCellWidget(dl.row, kAction);
    downloads_->removeCellWidget(dl.row, kCancel);
    downloads_->item(dl.row, kState)->setText(tr("Cancelled: the partial download was deleted"));
    if (auto* bar = qobject_cast<QProgressBar*>(downloads_->cellWidget(dl.row, kProgress))) bar->setValue(0);
    // After the download thread's own work, so that the files are no longer open.
    downloadThread_.post(&HubWorker::discardPartial, downloadThread_.nextRequestId(), dl.repo);
}

}  // namespace wp::ui
