// The sidebar: a New chat button, a search box and the saved conversations, most recently
// updated first. It also carries out the commands on the current conversation that the sidebar's
// context menu and the File menu offer: rename, export, delete.
#pragma once

#include <QWidget>

class QLineEdit;
class QListWidget;

namespace wp::ui {

class ConversationStore;

class ConversationList : public QWidget {
    Q_OBJECT
public:
    explicit ConversationList(ConversationStore& store, QWidget* parent = nullptr);

    // Re-reads titles and order from the store, filtered by the search box.
    void refresh();
    // The conversation shown in the chat (0: a new chat not saved yet); it is highlighted, and the
    // commands below act on it.
    void setCurrent(qint64 id);
    // While a reply streams, clicks do not switch conversations and nothing can be deleted.
    void setLocked(bool locked) { locked_ = locked; }

    void renameCurrent();
    void exportCurrent(bool markdown);
    void deleteCurrent();  // asks first

signals:
    void newChatRequested();
    void conversationChosen(qint64 id);
    void currentDeleted();
    void errorOccurred(const QString& message);

private:
    ConversationStore& store_;
    QLineEdit* search_ = nullptr;
    QListWidget* list_ = nullptr;
    qint64 current_ = 0;
    bool locked_ = false;
};

}  // namespace wp::ui
