// The model library: every model in the Hugging Face cache and every folder the user added, with
// family, head, parameters, dtype and size; those Windowpane cannot open are greyed, with the reason.
// Open (or a double-click) loads the selected model; Add Folder adds one to the library; Get Models
// opens the hub's search. The listing comes from the browsing hub worker, off the GUI thread. The
// models of remote endpoints (RemoteModels) follow the local ones; Add Endpoint… asks for another
// server, Remove Endpoint forgets the selected model's server (and deletes its key).
#pragma once

#include <QDialog>
#include <QList>

#include "engine/hub_types.h"

class QLabel;
class QPushButton;
class QTableWidget;

namespace wp::ui {

class HubThread;
class RemoteModels;

class ModelLibraryDialog : public QDialog {
    Q_OBJECT
public:
    ModelLibraryDialog(HubThread& hub, QWidget* parent = nullptr, RemoteModels* remote = nullptr);

    void refresh();
    const QList<LibraryEntry>& entries() const { return entries_; }
    QTableWidget* table() const { return table_; }

signals:
    void openRequested(const QString& dir);
    void getModelsRequested();
    void addEndpointRequested();
    void listed(const QList<wp::ui::LibraryEntry>& entries);

private:
    void showEntries(const QList<LibraryEntry>& entries);
    QList<LibraryEntry> remoteEntries() const;
    void selectionChanged();
    void openSelected();

    HubThread& hub_;
    RemoteModels* remote_ = nullptr;
    quint64 request_ = 0;
    QList<LibraryEntry> localEntries_;  // the hub worker's last listing
    QList<LibraryEntry> entries_;       // the rows: the local ones, then the remote ones
    QTableWidget* table_ = nullptr;
    QLabel* status_ = nullptr;
    QPushButton* open_ = nullptr;
    QPushButton* remove_ = nullptr;
    QPushButton* removeEndpoint_ = nullptr;
};

}  // namespace wp::ui
