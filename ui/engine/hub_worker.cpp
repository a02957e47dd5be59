#include "engine/hub_worker.h"

#include <chrono>
#include <filesystem>

#include "wp/hub/hub_client.h"
#include "wp/hub/hub_paths.h"
#include "wp/hub/model_library.h"

namespace wp::ui {

namespace {

QString q(const std::string& s) { return QString::fromStdString(s); }

}  // namespace

HubWorker::HubWorker() {
    qRegisterMetaType<wp::ui::LibraryEntry>();
    qRegisterMetaType<QList<wp::ui::LibraryEntry>>();
    qRegisterMetaType<wp::ui::HubHit>();
    qRegisterMetaType<QList<wp::ui::HubHit>>();
    qRegisterMetaType<wp::ui::HubRepoFiles>();
    qRegisterMetaType<wp::ui::DownloadProgress>();
    qRegisterMetaType<wp::ui::PartialDownloadInfo>();
    qRegisterMetaType<QList<wp::ui::PartialDownloadInfo>>();
}

void HubWorker::cancelDownload(quint64 id) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (id == current_)
        cancelCurrent_ = true;
    else
        cancelled_.insert(id);
}

void HubWorker::listLibrary(quint64 id) {
    try {
        std::filesystem::path cache;
        try {
            cache = hub_paths().cache;
        } catch (const std::exception&) {
        }
        QList<LibraryEntry> out;
        for (const LibraryModel& m : list_library(cache, read_library_folders(library_folders_file()))) {
            LibraryEntry e;
            e.name = q(m.name);
            e.dir = q(m.dir.string());
            e.family = q(m.model_type);
            e.head = q(m.head);
            e.dtype = q(m.dtype);
            e.commit = q(m.commit);
            e.why = q(m.why);
            e.source = q(m.source);
            e.addedFolder = q(m.added_folder.string());
            e.contextLength = m.context_length;
            e.gguf = m.gguf;
            e.parameters = m.parameters;
            e.bytesOnDisk = m.bytes_on_disk;
            e.fromHubCache = m.from_hub_cache;
            e.supported = m.supported;
            out.push_back(e);
        }
        emit libraryListed(id, out);
    } catch (const std::exception& e) {
        emit failed(id, q(e.what()), false);
    }
}

void HubWorker::addFolder(quint64 id, const QString& dir) { editFolders(id, dir, true); }
void HubWorker::removeFolder(quint64 id, const QString& dir) { editFolders(id, dir, false); }

void HubWorker::editFolders(quint64 id, const QString& dir, bool add) {
    try {
        const std::filesystem::path file = library_folders_file();
        auto folders = read_library_folders(file);
        const std::filesystem::path p = std::filesystem::absolute(dir.toStdString()).lexically_normal();
        folders.erase(std::remove(folders.begin(), folders.end(), p), folders.end());
        if (add) folders.push_back(p);
        write_library_folders(file, folders);
        listLibrary(id);
    } catch (const std::exception& e) {
        emit failed(id, q(e.what()), false);
    }
}

void HubWorker::search(quint64 id, const QString& text, const QString& sort) {
    try {
        HubSearch s;
        s.text = text.toStdString();
        s.sort = sort.isEmpty() ? "downloads" : sort.toStdString();
        s.limit = 100;
        QList<HubHit> hits;
        for (const HubSearchHit& h : HubClient::from_environment().search(s)) {
            // The families Windowpane runs: the hub tags each model with its model_type.
            const bool runs = std::any_of(h.tags.begin(), h.tags.end(),
                                          [](const std::string& t) { return t == "gemma" || t == "gemma2" || t == "qwen2"; });
            if (runs) hits.push_back({q(h.repo_id), h.downloads, h.likes, h.gated});
        }
        emit searched(id, hits);
    } catch (const std::exception& e) {
        emit failed(id, q(e.what()), false);
    }
}

void HubWorker::repoFiles(quint64 id, const QString& repo) {
    try {
        const HubModelInfo info = HubClient::from_environment().model_info(repo.toStdString());
        HubRepoFiles f;
        f.id = repo;
        f.commit = q(info.commit);
        f.modelType = q(info.model_type);
        f.gated = info.gated;
        f.parameters = info.parameters;
        f.weightDtype = q(info.weight_dtype);
        for (const HubFile& file : HubClient::selected_files(info, {})) {
            f.paths.push_back(q(file.path));
            f.sizes.push_back(file.size);
            if (file.safetensors()) f.weightBytes += file.size;
        }
        emit repoFilesListed(id, f);
    } catch (const std::exception& e) {
        emit failed(id, q(e.what()), false);
    }
}

void HubWorker::download(quint64 id, const QString& repo) {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        if (cancelled_.remove(id)) {
            emit failed(id, tr("Cancelled before it started."), true);
            return;
        }
        current_ = id;
        cancelCurrent_ = false;
    }
    PullOptions o;
    o.cancel = &cancelCurrent_;
    auto last = std::chrono::steady_clock::now() - std::chrono::seconds(1);
    o.progress = [&](const PullProgress& p) {
        const auto now = std::chrono::steady_clock::now();
        const bool end = p.file.empty() || p.file_done >= p.file_total;
        if (now - last < std::chrono::milliseconds(100) && !end) return;  // a signal per tenth of a second
        last = now;
        emit downloadProgress(id, {q(p.file), p.file_done, p.file_total, p.done, p.total, p.files_done, p.files_total,
                                   p.bytes_per_second});
    };
    try {
        const PullResult r = HubClient::from_environment().pull(repo.toStdString(), o);
        emit downloaded(id, q(r.snapshot.string()));
    } catch (const HubError& e) {
        emit failed(id, q(e.what()), e.kind() == HubError::Kind::Cancelled);
    } catch (const std::exception& e) {
        emit failed(id, q(e.what()), false);
    }
    std::lock_guard<std::mutex> lock(mutex_);
    current_ = 0;
}

void HubWorker::saveToken(quint64 id, const QString& token) {
    try {
        save_hub_token(hub_paths(), token.trimmed().toStdString());
        emit tokenSaved(id);
    } catch (const std::exception& e) {
        emit failed(id, q(e.what()), false);
    }
}

void HubWorker::listPartial(quint64 id) {
    try {
        QList<PartialDownloadInfo> out;
        for (const PartialDownload& p : partial_downloads(hub_paths())) out.push_back({q(p.repo_id), p.bytes});
        emit partialListed(id, out);
    } catch (const std::exception& e) {
        emit failed(id, q(e.what()), false);
    }
}

void HubWorker::discardPartial(quint64 id, const QString& repo) {
    try {
        emit partialDiscarded(id, discard_partial_downloads(hub_paths(), repo.toStdString()));
    } catch (const std::exception& e) {
        emit failed(id, q(e.what()), false);
    }
}

}  // namespace wp::ui
