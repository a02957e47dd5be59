// Get Models: searches the Hugging Face hub for models of the families Windowpane runs, shows a
// chosen repo's files, their size and whether they fit this machine's memory at each precision,
// and downloads them into the hub cache with progress, speed and time left. Downloads queue on
// their own worker; Cancel keeps the partial file, so Download again resumes it. Log In stores a
// token (for gated models such as Gemma) where huggingface-cli keeps it.
#pragma once

#include <QDialog>
#include <QHash>
#include <QList>
#include <functional>

#include "engine/hub_types.h"

class QComboBox;
class QLabel;
class QLineEdit;
class QPushButton;
class QTableWidget;

namespace wp::ui {

class HubThread;

class GetModelsDialog : public QDialog {
    Q_OBJECT
public:
    GetModelsDialog(HubThread& browse, HubThread& downloads, QWidget* parent = nullptr);

    // For tests and scripting.
    void searchFor(const QString& text);
    void selectRepo(const QString& id);
    void downloadSelected();
    QTableWidget* results() const { return results_; }
    QTableWidget* downloads() const { return downloads_; }
    QString details() const;

signals:
    void openRequested(const QString& dir);
    void downloadFinished(const QString& repo, const QString& dir);
    void downloadFailed(const QString& repo, const QString& message);

private:
    struct Download {
        QString repo;
        int row = -1;
        bool running = false;
        bool discard = false;  // Cancel: the partial file goes when the download has stopped
    };
    void showHits(const QList<HubHit>& hits);
    void showPartial(const QList<PartialDownloadInfo>& partial);
    int addRow(const QString& repo);
    void showFiles(const HubRepoFiles& files);
    void onProgress(quint64 id, const DownloadProgress& p);
    void setRowAction(int row, const QString& label, const std::function<void()>& action);
    void setCancel(int row, quint64 id);
    void discard(quint64 id);

    HubThread& browse_;
    HubThread& downloadThread_;
    quint64 searchRequest_ = 0, filesRequest_ = 0, tokenRequest_ = 0, partialRequest_ = 0;
    QLineEdit* query_ = nullptr;
    QComboBox* sort_ = nullptr;
    QTableWidget* results_ = nullptr;
    QLabel* details_ = nullptr;
    QPushButton* download_ = nullptr;
    QTableWidget* downloads_ = nullptr;
    QLabel* status_ = nullptr;
    QString selected_;
    QHash<quint64, Download> active_;
};

}  // namespace wp::ui
