#include "widgets/conversation_list.h"

#include <QDateTime>
#include <QFile>
#include <QFileDialog>
#include <QInputDialog>
#include <QLineEdit>
#include <QListWidget>
#include <QMenu>
#include <QMessageBox>
#include <QPushButton>
#include <QRegularExpression>
#include <QVBoxLayout>

#include "store/conversation_store.h"

namespace wp::ui {

ConversationList::ConversationList(ConversationStore& store, QWidget* parent) : QWidget(parent), store_(store) {
    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(6, 6, 6, 6);
    auto* newChat = new QPushButton(tr("New chat"), this);
    newChat->setObjectName("newChatButton");
    connect(newChat, &QPushButton::clicked, this, &ConversationList::newChatRequested);
    layout->addWidget(newChat);
    search_ = new QLineEdit(this);
    search_->setObjectName("searchBox");
    search_->setPlaceholderText(tr("Search conversations"));
    search_->setClearButtonEnabled(true);
    connect(search_, &QLineEdit::textChanged, this, &ConversationList::refresh);
    layout->addWidget(search_);
    list_ = new QListWidget(this);
    list_->setObjectName("conversationList");
    list_->setContextMenuPolicy(Qt::CustomContextMenu);
    connect(list_, &QListWidget::itemClicked, this, [this](QListWidgetItem* item) {
        if (!locked_) emit conversationChosen(item->data(Qt::UserRole).toLongLong());
    });
    connect(list_, &QListWidget::customContextMenuRequested, this, [this](const QPoint& pos) {
        QListWidgetItem* item = list_->itemAt(pos);
        if (!item || locked_) return;
        emit conversationChosen(item->data(Qt::UserRole).toLongLong());
        QMenu menu;
        menu.addAction(tr("Rename\u2026"), this, &ConversationList::renameCurrent);
        menu.addAction(tr("Export as Markdown\u2026"), this, [this] { exportCurrent(true); });
        menu.addAction(tr("Export as JSON\u2026"), this, [this] { exportCurrent(false); });
        menu.addSeparator();
        menu.addAction(tr("Delete"), this, &ConversationList::deleteCurrent);
        menu.exec(list_->viewport()->mapToGlobal(pos));
    });
    layout->addWidget(list_);
    setMinimumWidth(180);
}

void ConversationList::refresh() {
    const QSignalBlocker block(list_);
    list_->clear();
    for (const StoredConversation& c : store_.listConversations(search_->text())) {
        auto* item = new QListWidgetItem(c.title.isEmpty() ? tr("New chat") : c.title, list_);
        item->setData(Qt::UserRole, c.id);
        item->setToolTip(QDateTime::fromMSecsSinceEpoch(c.updated).toString());
        if (c.id == current_) item->setSelected(true);
    }
}

void ConversationList::setCurrent(qint64 id) {
    current_ = id;
    for (int i = 0; i < list_->count(); ++i)
        list_->item(i)->setSelected(list_->item(i)->data(Qt::UserRole).toLongLong() == id);
}

void ConversationList::renameCurrent() {
    if (!current_) return;
    const auto conv = store_.conversation(current_);
    bool ok = false;
    const QString title = QInputDialog::getText(this, tr("Rename chat"), tr("Title:"), QLineEdit::Normal,
                                                conv ? conv->title : QString(), &ok);
    if (ok && !title.trimmed().isEmpty()) {
        store_.renameConversation(current_, title.trimmed());
        refresh();
    }
}

void ConversationList::exportCurrent(bool markdown) {
    if (!current_) return;
    const auto conv = store_.conversation(current_);
    QString name = conv ? conv->title : QStringLiteral("chat");
    name.replace(QRegularExpression("[^\\w\\- ]+"), "_");
    const QString path = QFileDialog::getSaveFileName(this, tr("Export chat"), name + (markdown ? ".md" : ".json"),
                                                      markdown ? tr("Markdown (*.md)") : tr("JSON (*.json)"));
    if (path.isEmpty()) return;
    QFile f(path);
    if (!f.open(QIODevice::WriteOnly | QIODevice::Truncate) ||
        f.write(markdown ? store_.exportMarkdown(current_).toUtf8() : store_.exportJson(current_)) < 0)
        emit errorOccurred(tr("Cannot write %1: %2").arg(path, f.errorString()));
}

void ConversationList::deleteCurrent() {
    if (!current_ || locked_) return;
    if (QMessageBox::question(this, tr("Delete chat"), tr("Delete this conversation and all its branches?")) !=
        QMessageBox::Yes)
        return;
    store_.removeConversation(current_);
    emit currentDeleted();
}

}  // namespace wp::ui
