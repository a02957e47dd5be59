// Plain values that cross the thread boundary between the GUI and the hub worker: the model
// library, hub search hits, a repo's files, and a download's progress.
#pragma once

#include <QList>
#include <QMetaType>
#include <QString>

namespace wp::ui {

struct LibraryEntry {
    QString name;        // ORG/NAME for the hub cache, Ollama's MODEL:TAG, the folder's or file's name otherwise
    QString dir;         // the model folder or GGUF file to open
    QString family, head, dtype, commit;
    QString why;         // why it does not open, when it does not
    QString source;      // "hub cache", "folder", "LM Studio", "Ollama" (wp::LibraryModel::source)
    QString addedFolder; // source "folder": the folder the user added, which Remove Folder removes
    qint64 parameters = 0;
    qint64 contextLength = 0;
    quint64 bytesOnDisk = 0;
    bool fromHubCache = false;
    bool gguf = false;
    bool supported = false;
};

struct HubHit {
    QString id;
    qint64 downloads = 0, likes = 0;
    bool gated = false;
};

struct HubRepoFiles {
    QString id, commit, modelType;
    bool gated = false;
    QList<QString> paths;      // what a pull downloads
    QList<quint64> sizes;
    quint64 weightBytes = 0;   // of the .safetensors among them
    qint64 parameters = 0;     // as the hub counts them; 0 when it does not say
    QString weightDtype;       // as the hub states it (BF16, F32, ...), may be empty
};

// A pull that stopped before its end (cancelled, or the app closed): downloading again resumes it.
struct PartialDownloadInfo {
    QString repo;
    quint64 bytes = 0;
};

struct DownloadProgress {
    QString file;
    quint64 fileDone = 0, fileTotal = 0;
    quint64 done = 0, total = 0;
    int filesDone = 0, filesTotal = 0;
    double bytesPerSecond = 0;
};

}  // namespace wp::ui

Q_DECLARE_METATYPE(wp::ui::LibraryEntry)
Q_DECLARE_METATYPE(wp::ui::HubHit)
Q_DECLARE_METATYPE(wp::ui::HubRepoFiles)
Q_DECLARE_METATYPE(wp::ui::DownloadProgress)
Q_DECLARE_METATYPE(wp::ui::PartialDownloadInfo)
