// Persisted conversations with branching message trees, stored in one SQLite file through Qt SQL.
//
// Layout: every conversation owns a tree of messages. The first message has no parent; editing a
// message (or regenerating a reply) never overwrites it but adds a sibling under the same parent,
// so older versions stay reachable. The conversation remembers its "current leaf"; the path from
// the root to that leaf is what the chat view shows and what is sent to the model.
//
// Durability: the database runs in WAL mode with foreign keys on, and every mutating call is one
// transaction committed before the call returns. A process that is killed afterwards (even with
// SIGKILL, mid-reply) loses nothing that was already committed.
//
// Errors: methods report failure through their return value (false, 0, std::nullopt or an empty
// result) and describe it in lastError(). Every public call clears lastError() first, so an empty
// list together with an empty lastError() means "nothing there", not "failed".
//
// Threading: a Qt SQL connection may only be used by the thread that opened it; use one store per
// thread. Several stores (on the same or different files) may exist at the same time, each with its
// own uniquely named connection.
#pragma once

#include <QByteArray>
#include <QJsonObject>
#include <QList>
#include <QSqlDatabase>
#include <QString>
#include <QVariant>
#include <QtGlobal>
#include <optional>

class QSqlQuery;

namespace wp::ui {

// One conversation as stored (without its messages).
struct StoredConversation {
    qint64 id = 0;
    QString title;
    qint64 created = 0;      // ms since the Unix epoch
    qint64 updated = 0;      // ms since the Unix epoch; bumped by addMessage/updateMessage
    QString modelPath;       // model folder used for this conversation ("" = none chosen)
    QJsonObject settings;    // sampling settings (temperature, top_p, ...), free-form JSON
    QString systemPrompt;
    qint64 currentLeaf = 0;  // id of the last message of the active branch, 0 = no messages
};

// One message (a node of the conversation's tree).
struct StoredMessage {
    qint64 id = 0;
    qint64 conversationId = 0;
    qint64 parentId = 0;   // 0 = first message of a branch (stored as NULL)
    QString role;          // "user", "assistant" or "system"
    QString content;
    qint64 created = 0;    // ms since the Unix epoch
    QJsonObject stats;     // token counts, tokens/s, per-token top-k probabilities, ...
    bool stopped = false;  // the reply was stopped by the user before it ended on its own
};

class ConversationStore {
public:
    // Current schema version, kept in PRAGMA user_version.
    static constexpr int kSchemaVersion = 1;

    ConversationStore();
    ~ConversationStore();  // closes the database
    ConversationStore(const ConversationStore&) = delete;
    ConversationStore& operator=(const ConversationStore&) = delete;

    // ---- Database ------------------------------------------------------------------------------

    // Opens (creating if needed) the database file at `path` and migrates it to kSchemaVersion.
    // The parent directory must exist. ":memory:" gives a private in-memory database (not WAL).
    // Fails with a readable message (also in *error if given, and in lastError()) when the file
    // cannot be created or opened, is not an SQLite database, belongs to another application, or
    // was written by a newer schema version. Opening again first closes the previous database.
    bool open(const QString& path, QString* error = nullptr);
    // Closes the database; safe to call when not open. Everything committed stays on disk.
    void close();
    bool isOpen() const;
    QString path() const { return path_; }
    // Description of the most recent failure of the last call, "" if it succeeded.
    QString lastError() const { return lastError_; }

    // Role names accepted by addMessage.
    static bool isValidRole(const QString& role);

    // ---- Conversations -------------------------------------------------------------------------

    // Creates an empty conversation; returns its id (> 0), or 0 on failure.
    qint64 createConversation(const QString& title, const QString& modelPath = {},
                              const QJsonObject& settings = {}, const QString& systemPrompt = {});
    // Conversations, most recently updated first. With a non-empty `search`, only those whose
    // title or any message (of any branch) contains `search`, case-insensitively (Unicode simple
    // case folding); '%', '_' and '\' in `search` match themselves literally.
    QList<StoredConversation> listConversations(const QString& search = {});
    std::optional<StoredConversation> conversation(qint64 id);
    // The setters below return false (with lastError()) if the conversation does not exist. They do
    // not change the "updated" time, so renaming does not reorder the list.
    bool renameConversation(qint64 id, const QString& title);
    bool setModelPath(qint64 id, const QString& modelPath);
    bool setSettings(qint64 id, const QJsonObject& settings);
    bool setSystemPrompt(qint64 id, const QString& systemPrompt);
    // Deletes the conversation and all of its messages.
    bool removeConversation(qint64 id);
    bool deleteConversation(qint64 id) { return removeConversation(id); }  // same as remove

    // ---- Messages ------------------------------------------------------------------------------

    // Adds a message under `parentId` (0 = a first message), makes it the conversation's current
    // leaf and bumps the conversation's updated time. The parent must belong to the same
    // conversation. Adding a second child under the same parent creates a branch (an edited
    // prompt or a regenerated reply). Returns the new id, or 0 on failure.
    qint64 addMessage(qint64 conversationId, qint64 parentId, const QString& role, const QString& content,
                      const QJsonObject& stats = {}, bool stopped = false);
    // Replaces a message's content and stats (and its stopped flag when given), e.g. when a
    // streamed reply ends; bumps the conversation's updated time. The tree is unchanged.
    bool updateMessage(qint64 messageId, const QString& content, const QJsonObject& stats,
                       std::optional<bool> stopped = std::nullopt);
    std::optional<StoredMessage> message(qint64 messageId);
    // Messages from the root to the current leaf, in order (empty if there are none).
    QList<StoredMessage> activePath(qint64 conversationId);
    // Every message of the conversation (all branches), in creation order.
    QList<StoredMessage> allMessages(qint64 conversationId);
    // Ids of the messages with the same parent in the same conversation as `messageId` (the
    // message itself included), in creation order, for a "‹ 2/3 ›" switcher. Empty if unknown.
    QList<qint64> siblings(qint64 messageId);
    // Makes the deepest descendant of `messageId` the current leaf, following at each level the
    // most recently created child (the message itself if it has no children). Does not change the
    // updated time.
    bool selectBranch(qint64 messageId);

    // ---- Export --------------------------------------------------------------------------------

    // "# <title>" then, for each message of the active path, a "**User**:" / "**Assistant**:" /
    // "**System**:" line followed by the content verbatim. Empty string (and lastError()) if the
    // conversation does not exist.
    QString exportMarkdown(qint64 conversationId);
    // Indented JSON: {"title","model","settings","system_prompt","created","updated","current_leaf",
    // "messages":[{"id","role","content","created","stats","stopped"}...] (active path),
    // "branches":[{"id","parent_id" (null for a root),"role","content","created","stats","stopped"}...]
    // (every message, creation order)}. Empty (and lastError()) if the conversation does not exist.
    QByteArray exportJson(qint64 conversationId);

private:
    bool fail(const QString& message);
    bool failQuery(const QString& what, const QSqlQuery& query);
    bool requireOpen();
    bool migrate();
    bool touchConversation(qint64 id);
    bool setConversationField(qint64 id, const char* column, const QVariant& value);
    qint64 nextUpdatedTime();

    QString connectionName_;
    QSqlDatabase db_;
    QString path_;
    QString lastError_;
};

}  // namespace wp::ui
