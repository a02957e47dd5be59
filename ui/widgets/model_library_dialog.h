// The model library: every model in the Hugging Face cache and every folder the user added, with
// family, head, parameters, dtype and size; those Windowpane cannot open are greyed, with the reason.
// Open (or a double-click) loads the selected model; Add Folder adds one to the library; Get Models
// opens the hub's search. The listing comes from the browsing hub worker, off the GUI thread.
#pragma once

#include <QDialog>
#include <QList>

#include "engine/hub_types.h"

class QLabel;
class QPushButton;
class QTableWidget;

namespace wp::ui {

class HubThread;

class ModelLibraryDialog : public QDialog {
    Q_OBJECT
public:
    ModelLibraryDialog(HubThread& hub, QWidget* parent = nullptr);

    void refresh();
    const QList<LibraryEntry>& entries() const { return entries_; }
    QTableWidget* table() const { return table_; }

signals:
    void openRequested(const QString& dir);
    void getModelsRequested();
    void listed(const QList<wp::ui::LibraryEntry>& entries);

private:
    void showEntries(const QList<LibraryEntry>& entries);
    void selectionChanged();
    void openSelected();

    HubThread& hub_;
    quint64 request_ = 0;
    QList<LibraryEntry> entries_;
    QTableWidget* table_ = nullptr;
    QLabel* status_ = nullptr;
    QPushButton* open_ = nullptr;
    QPushButton* remove_ = nullptr;
};

}  // namespace wp::ui
