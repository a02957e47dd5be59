// The app's way to the model library and the Hugging Face hub (core's wp/hub): listing what this
// machine has, adding folders, searching the hub, a repo's files, downloads and the token. It lives
// on its own thread (HubThread); the app runs two, one for browsing and one for downloads, so a
// long download never holds up a search. Requests to one worker run in the order posted, so
// downloads queue. Results come back as signals carrying the request's id.
#pragma once

#include <QObject>
#include <QSet>
#include <QString>
#include <atomic>
#include <mutex>

#include "engine/hub_types.h"

namespace wp::ui {

class HubWorker : public QObject {
    Q_OBJECT
public:
    HubWorker();

    // Thread-safe: ends download `id` (the partial file stays; downloading it again resumes), or
    // drops it from the queue if it has not started.
    void cancelDownload(quint64 id);

public slots:
    void listLibrary(quint64 id);
    void addFolder(quint64 id, const QString& dir);
    void removeFolder(quint64 id, const QString& dir);
    void search(quint64 id, const QString& text, const QString& sort);
    void repoFiles(quint64 id, const QString& repo);
    void download(quint64 id, const QString& repo);
    void saveToken(quint64 id, const QString& token);
    // The downloads that stopped before their end, found in the cache (after a restart, say).
    void listPartial(quint64 id);
    // Deletes what a cancelled download of `repo` left (its .incomplete files).
    void discardPartial(quint64 id, const QString& repo);

signals:
    void libraryListed(quint64 id, const QList<wp::ui::LibraryEntry>& models);
    void searched(quint64 id, const QList<wp::ui::HubHit>& hits);
    void repoFilesListed(quint64 id, const wp::ui::HubRepoFiles& files);
    void downloadProgress(quint64 id, const wp::ui::DownloadProgress& progress);
    void downloaded(quint64 id, const QString& snapshotDir);
    void tokenSaved(quint64 id);
    void partialDiscarded(quint64 id, int files);
    void partialListed(quint64 id, const QList<wp::ui::PartialDownloadInfo>& partial);
    // `cancelled`: the request ended by cancelDownload, not by a failure.
    void failed(quint64 id, const QString& message, bool cancelled);

private:
    void editFolders(quint64 id, const QString& dir, bool add);

    std::mutex mutex_;
    QSet<quint64> cancelled_;  // ids cancelled before they started
    quint64 current_ = 0;      // the download running, 0: none
    std::atomic<bool> cancelCurrent_{false};
};

}  // namespace wp::ui
