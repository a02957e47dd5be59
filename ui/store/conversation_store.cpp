#include "store/conversation_store.h"

#include <QDateTime>
#include <QDir>
#include <QFileInfo>
#include <QJsonArray>
#include <QJsonDocument>
#include <QSqlError>
#include <QSqlQuery>
#include <QStringList>
#include <algorithm>
#include <atomic>

namespace wp::ui {

namespace {

std::atomic<quint64> g_connectionCounter{0};

const QString kConversationColumns = QStringLiteral(
    "id, title, created, updated, model_path, settings, system_prompt, current_leaf");
const QString kMessageColumns = QStringLiteral(
    "id, conversation_id, parent_id, role, content, created, stats, stopped");

qint64 nowMs() { return QDateTime::currentMSecsSinceEpoch(); }

// A null QString would be bound as SQL NULL; text columns are NOT NULL, so bind "" instead.
QVariant textValue(const QString& s) { return s.isNull() ? QVariant(QStringLiteral("")) : QVariant(s); }

QVariant nullableId(qint64 id) { return id > 0 ? QVariant(id) : QVariant(QMetaType(QMetaType::LongLong)); }

QString jsonText(const QJsonObject& o) { return QString::fromUtf8(QJsonDocument(o).toJson(QJsonDocument::Compact)); }

QJsonObject jsonObject(const QString& text) {
    const QJsonDocument doc = QJsonDocument::fromJson(text.toUtf8());
    return doc.isObject() ? doc.object() : QJsonObject();
}

// Search keys are stored case-folded so that LIKE (which folds ASCII only) matches any script.
QString folded(const QString& s) { return s.toCaseFolded(); }

// Escapes LIKE wildcards for "... LIKE ? ESCAPE '\'" and wraps the text in '%'.
QString containsPattern(const QString& text) {
    QString escaped;
    escaped.reserve(text.size() + 8);
    for (const QChar c : text) {
        if (c == u'\\' || c == u'%' || c == u'_') escaped += u'\\';
        escaped += c;
    }
    return u'%' + escaped + u'%';
}

StoredConversation readConversation(const QSqlQuery& q) {
    StoredConversation c;
    c.id = q.value(0).toLongLong();
    c.title = q.value(1).toString();
    c.created = q.value(2).toLongLong();
    c.updated = q.value(3).toLongLong();
    c.modelPath = q.value(4).toString();
    c.settings = jsonObject(q.value(5).toString());
    c.systemPrompt = q.value(6).toString();
    c.currentLeaf = q.value(7).toLongLong();
    return c;
}

StoredMessage readMessage(const QSqlQuery& q, int first = 0) {
    StoredMessage m;
    m.id = q.value(first + 0).toLongLong();
    m.conversationId = q.value(first + 1).toLongLong();
    m.parentId = q.value(first + 2).toLongLong();
    m.role = q.value(first + 3).toString();
    m.content = q.value(first + 4).toString();
    m.created = q.value(first + 5).toLongLong();
    m.stats = jsonObject(q.value(first + 6).toString());
    m.stopped = q.value(first + 7).toLongLong() != 0;
    return m;
}

QString roleLabel(const QString& role) {
    if (role == u"user") return QStringLiteral("User");
    if (role == u"assistant") return QStringLiteral("Assistant");
    if (role == u"system") return QStringLiteral("System");
    return role;
}

QString sqlErrorText(const QSqlError& e) {
    // QSqlError::text() joins driver and database text; prefer the database's own message.
    QString t = e.databaseText().trimmed();
    if (t.isEmpty()) t = e.text().trimmed();
    if (t.isEmpty()) t = QStringLiteral("unknown database error");
    return t;
}

// Prepares and runs `sql` with positional bindings; returns false if either step failed.
bool run(QSqlQuery& q, const QString& sql, const QVariantList& binds = {}) {
    if (!q.prepare(sql)) return false;
    for (const QVariant& v : binds) q.addBindValue(v);
    return q.exec();
}

// BEGIN IMMEDIATE ... COMMIT; rolls back when destroyed uncommitted. IMMEDIATE takes the write
// lock up front, so a second process writing the same file waits (busy timeout) instead of
// failing with a stale snapshot half-way through.
class Transaction {
public:
    explicit Transaction(const QSqlDatabase& db) : db_(db) {
        QSqlQuery q(db_);
        active_ = q.exec(QStringLiteral("BEGIN IMMEDIATE"));
        if (!active_) error_ = sqlErrorText(q.lastError());
    }
    ~Transaction() {
        if (active_) {
            QSqlQuery q(db_);
            q.exec(QStringLiteral("ROLLBACK"));
        }
    }
    Transaction(const Transaction&) = delete;
    Transaction& operator=(const Transaction&) = delete;

    bool ok() const { return active_; }
    QString error() const { return error_; }
    bool commit() {
        QSqlQuery q(db_);
        if (!q.exec(QStringLiteral("COMMIT"))) {
            error_ = sqlErrorText(q.lastError());
            return false;
        }
        active_ = false;
        return true;
    }

private:
    QSqlDatabase db_;
    bool active_ = false;
    QString error_;
};

}  // namespace

ConversationStore::ConversationStore() = default;

ConversationStore::~ConversationStore() { close(); }

bool ConversationStore::fail(const QString& message) {
    lastError_ = message;
    return false;
}

bool ConversationStore::failQuery(const QString& what, const QSqlQuery& query) {
    return fail(what + QStringLiteral(": ") + sqlErrorText(query.lastError()));
}

bool ConversationStore::requireOpen() {
    lastError_.clear();
    if (!isOpen()) return fail(QStringLiteral("The conversation database is not open"));
    return true;
}

bool ConversationStore::isValidRole(const QString& role) {
    return role == u"user" || role == u"assistant" || role == u"system";
}

// ---- Database ------------------------------------------------------------------------------------

bool ConversationStore::isOpen() const { return db_.isValid() && db_.isOpen(); }

void ConversationStore::close() {
    if (connectionName_.isEmpty()) return;
    if (db_.isOpen()) db_.close();
    db_ = QSqlDatabase();  // drop our handle before removing the connection
    QSqlDatabase::removeDatabase(connectionName_);
    connectionName_.clear();
    path_.clear();
}

bool ConversationStore::open(const QString& path, QString* error) {
    close();
    lastError_.clear();
    const auto finish = [&](bool ok) {
        if (!ok) {
            const QString message = lastError_;
            close();
            lastError_ = message;
            if (error) *error = message;
        } else if (error) {
            error->clear();
        }
        return ok;
    };
    const QString shown = QDir::toNativeSeparators(path);

    if (path.isEmpty()) return finish(fail(QStringLiteral("No conversation database path was given")));
    if (!QSqlDatabase::isDriverAvailable(QStringLiteral("QSQLITE")))
        return finish(fail(QStringLiteral("The Qt SQLite driver (QSQLITE) is not available; "
                                          "install the Qt SQL SQLite plugin")));
    const bool inMemory = path == u":memory:";
    if (!inMemory) {
        const QFileInfo info(path);
        if (info.isDir())
            return finish(fail(QStringLiteral("Cannot open conversation database '%1': it is a folder").arg(shown)));
        const QFileInfo dir(info.absolutePath());
        if (!dir.exists() || !dir.isDir())
            return finish(fail(QStringLiteral("Cannot open conversation database '%1': '%2' is not an existing folder")
                                   .arg(shown, QDir::toNativeSeparators(info.absolutePath()))));
    }

    connectionName_ = QStringLiteral("wp_conversation_store_%1").arg(g_connectionCounter.fetch_add(1) + 1);
    db_ = QSqlDatabase::addDatabase(QStringLiteral("QSQLITE"), connectionName_);
    db_.setDatabaseName(path);
    db_.setConnectOptions(QStringLiteral("QSQLITE_BUSY_TIMEOUT=5000"));
    if (!db_.open())
        return finish(fail(QStringLiteral("Cannot open conversation database '%1': %2")
                               .arg(shown, sqlErrorText(db_.lastError()))));
    path_ = path;

    const QString unusable = QStringLiteral("'%1' is not a usable conversation database").arg(shown);
    {
        // Reading the header here is also what detects a file that is not an SQLite database.
        QSqlQuery q(db_);
        if (!q.exec(QStringLiteral("PRAGMA journal_mode=WAL"))) return finish(failQuery(unusable, q));
        const QString mode = q.next() ? q.value(0).toString().toLower() : QString();
        if (mode != u"wal" && !inMemory)
            return finish(fail(QStringLiteral("%1: cannot switch to WAL journaling (journal mode is '%2'); "
                                              "is the file or its folder read-only?")
                                   .arg(unusable, mode)));
    }
    {
        QSqlQuery q(db_);
        if (!q.exec(QStringLiteral("PRAGMA foreign_keys=ON"))) return finish(failQuery(unusable, q));
        if (!q.exec(QStringLiteral("PRAGMA foreign_keys")) || !q.next() || q.value(0).toInt() != 1)
            return finish(fail(unusable + QStringLiteral(": SQLite foreign keys are not supported")));
        if (!q.exec(QStringLiteral("PRAGMA synchronous=NORMAL"))) return finish(failQuery(unusable, q));
    }
    if (!migrate()) {
        lastError_ = unusable + QStringLiteral(": ") + lastError_;
        return finish(false);
    }
    {
        // Catch a file whose user_version claims our schema but whose tables differ.
        QSqlQuery q(db_);
        if (!q.exec(QStringLiteral("SELECT %1 FROM conversations LIMIT 0").arg(kConversationColumns)) ||
            !q.exec(QStringLiteral("SELECT %1, content_folded FROM messages LIMIT 0").arg(kMessageColumns)))
            return finish(failQuery(unusable + QStringLiteral(": unexpected tables"), q));
    }
    return finish(true);
}

bool ConversationStore::migrate() {
    int version = 0;
    {
        QSqlQuery q(db_);
        if (!q.exec(QStringLiteral("PRAGMA user_version")) || !q.next())
            return failQuery(QStringLiteral("cannot read the schema version"), q);
        version = q.value(0).toInt();
    }
    if (version > kSchemaVersion)
        return fail(QStringLiteral("it was written by a newer version of Windowpane (schema %1, this build "
                                   "understands up to %2)")
                        .arg(version)
                        .arg(kSchemaVersion));
    if (version == 0) {
        // A fresh file is empty; anything else with version 0 belongs to some other program.
        QSqlQuery q(db_);
        if (!q.exec(QStringLiteral("SELECT count(*) FROM sqlite_master WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\'")) ||
            !q.next())
            return failQuery(QStringLiteral("cannot read the schema"), q);
        if (q.value(0).toInt() != 0)
            return fail(QStringLiteral("it is an SQLite database of another application"));
    }

    while (version < kSchemaVersion) {
        const int target = version + 1;
        QStringList statements;
        switch (target) {
        case 1:
            statements = {
                QStringLiteral("CREATE TABLE conversations ("
                               " id INTEGER PRIMARY KEY AUTOINCREMENT,"
                               " title TEXT NOT NULL DEFAULT '',"
                               " title_folded TEXT NOT NULL DEFAULT '',"
                               " created INTEGER NOT NULL,"
                               " updated INTEGER NOT NULL,"
                               " model_path TEXT NOT NULL DEFAULT '',"
                               " settings TEXT NOT NULL DEFAULT '{}',"
                               " system_prompt TEXT NOT NULL DEFAULT '',"
                               " current_leaf INTEGER)"),
                QStringLiteral("CREATE TABLE messages ("
                               " id INTEGER PRIMARY KEY AUTOINCREMENT,"
                               " conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,"
                               " parent_id INTEGER REFERENCES messages(id) ON DELETE CASCADE,"
                               " role TEXT NOT NULL CHECK (role IN ('user', 'assistant', 'system')),"
                               " content TEXT NOT NULL DEFAULT '',"
                               " content_folded TEXT NOT NULL DEFAULT '',"
                               " created INTEGER NOT NULL,"
                               " stats TEXT NOT NULL DEFAULT '{}',"
                               " stopped INTEGER NOT NULL DEFAULT 0 CHECK (stopped IN (0, 1)))"),
                QStringLiteral("CREATE INDEX messages_by_conversation ON messages(conversation_id, id)"),
                QStringLiteral("CREATE INDEX messages_by_parent ON messages(parent_id, id)"),
                QStringLiteral("CREATE INDEX conversations_by_updated ON conversations(updated DESC, id DESC)"),
            };
            break;
        default:
            return fail(QStringLiteral("no migration to schema %1").arg(target));
        }

        Transaction t(db_);
        if (!t.ok()) return fail(QStringLiteral("cannot start the migration: ") + t.error());
        for (const QString& sql : statements) {
            QSqlQuery q(db_);
            if (!q.exec(sql)) return failQuery(QStringLiteral("migration to schema %1 failed").arg(target), q);
        }
        {
            QSqlQuery q(db_);
            if (!q.exec(QStringLiteral("PRAGMA user_version = %1").arg(target)))
                return failQuery(QStringLiteral("cannot record schema %1").arg(target), q);
        }
        if (!t.commit()) return fail(QStringLiteral("migration to schema %1 failed: ").arg(target) + t.error());
        version = target;
    }
    return true;
}

// ---- Helpers ---------------------------------------------------------------------------------------

// Strictly later than every stored "updated" time, so the conversation just touched sorts first
// even when two changes land in the same millisecond or the clock stepped back. Call inside a
// transaction.
qint64 ConversationStore::nextUpdatedTime() {
    QSqlQuery q(db_);
    qint64 latest = 0;
    if (q.exec(QStringLiteral("SELECT COALESCE(MAX(updated), 0) FROM conversations")) && q.next())
        latest = q.value(0).toLongLong();
    return std::max(nowMs(), latest + 1);
}

bool ConversationStore::touchConversation(qint64 id) {
    const qint64 when = nextUpdatedTime();
    QSqlQuery q(db_);
    if (!run(q, QStringLiteral("UPDATE conversations SET updated = ? WHERE id = ?"), {when, id}))
        return failQuery(QStringLiteral("Cannot update conversation %1").arg(id), q);
    return true;
}

bool ConversationStore::setConversationField(qint64 id, const char* column, const QVariant& value) {
    if (!requireOpen()) return false;
    Transaction t(db_);
    if (!t.ok()) return fail(QStringLiteral("Cannot start a transaction: ") + t.error());
    {
        QSqlQuery q(db_);
        if (!run(q, QStringLiteral("UPDATE conversations SET %1 = ? WHERE id = ?").arg(QLatin1String(column)),
                 {value, id}))
            return failQuery(QStringLiteral("Cannot update conversation %1").arg(id), q);
        if (q.numRowsAffected() != 1) return fail(QStringLiteral("No conversation with id %1").arg(id));
    }
    if (!t.commit()) return fail(QStringLiteral("Cannot save conversation %1: ").arg(id) + t.error());
    return true;
}

// ---- Conversations ---------------------------------------------------------------------------------

qint64 ConversationStore::createConversation(const QString& title, const QString& modelPath,
                                             const QJsonObject& settings, const QString& systemPrompt) {
    if (!requireOpen()) return 0;
    Transaction t(db_);
    if (!t.ok()) return fail(QStringLiteral("Cannot start a transaction: ") + t.error()), 0;
    const qint64 created = nowMs();
    const qint64 updated = nextUpdatedTime();
    qint64 id = 0;
    {
        QSqlQuery q(db_);
        if (!run(q,
                 QStringLiteral("INSERT INTO conversations (title, title_folded, created, updated, model_path, "
                                "settings, system_prompt, current_leaf) VALUES (?, ?, ?, ?, ?, ?, ?, NULL)"),
                 {textValue(title), textValue(folded(title)), created, updated, textValue(modelPath),
                  jsonText(settings), textValue(systemPrompt)}))
            return failQuery(QStringLiteral("Cannot create a conversation"), q), 0;
        id = q.lastInsertId().toLongLong();
    }
    if (id <= 0) return fail(QStringLiteral("Cannot create a conversation: no id was assigned")), 0;
    if (!t.commit()) return fail(QStringLiteral("Cannot save the new conversation: ") + t.error()), 0;
    return id;
}

QList<StoredConversation> ConversationStore::listConversations(const QString& search) {
    QList<StoredConversation> out;
    if (!requireOpen()) return out;
    QSqlQuery q(db_);
    q.setForwardOnly(true);
    bool ok = false;
    if (search.isEmpty()) {
        ok = run(q, QStringLiteral("SELECT %1 FROM conversations ORDER BY updated DESC, id DESC").arg(kConversationColumns));
    } else {
        const QString pattern = containsPattern(folded(search));
        ok = run(q,
                 QStringLiteral("SELECT %1 FROM conversations c WHERE c.title_folded LIKE ? ESCAPE '\\' OR EXISTS "
                                "(SELECT 1 FROM messages m WHERE m.conversation_id = c.id AND "
                                "m.content_folded LIKE ? ESCAPE '\\') ORDER BY c.updated DESC, c.id DESC")
                     .arg(kConversationColumns),
                 {pattern, pattern});
    }
    if (!ok) {
        failQuery(QStringLiteral("Cannot list conversations"), q);
        return out;
    }
    while (q.next()) out.append(readConversation(q));
    return out;
}

std::optional<StoredConversation> ConversationStore::conversation(qint64 id) {
    if (!requireOpen()) return std::nullopt;
    QSqlQuery q(db_);
    if (!run(q, QStringLiteral("SELECT %1 FROM conversations WHERE id = ?").arg(kConversationColumns), {id})) {
        failQuery(QStringLiteral("Cannot read conversation %1").arg(id), q);
        return std::nullopt;
    }
    if (!q.next()) {
        fail(QStringLiteral("No conversation with id %1").arg(id));
        return std::nullopt;
    }
    return readConversation(q);
}

bool ConversationStore::renameConversation(qint64 id, const QString& title) {
    if (!requireOpen()) return false;
    Transaction t(db_);
    if (!t.ok()) return fail(QStringLiteral("Cannot start a transaction: ") + t.error());
    {
        QSqlQuery q(db_);
        if (!run(q, QStringLiteral("UPDATE conversations SET title = ?, title_folded = ? WHERE id = ?"),
                 {textValue(title), textValue(folded(title)), id}))
            return failQuery(QStringLiteral("Cannot rename conversation %1").arg(id), q);
        if (q.numRowsAffected() != 1) return fail(QStringLiteral("No conversation with id %1").arg(id));
    }
    if (!t.commit()) return fail(QStringLiteral("Cannot save conversation %1: ").arg(id) + t.error());
    return true;
}

bool ConversationStore::setModelPath(qint64 id, const QString& modelPath) {
    return setConversationField(id, "model_path", textValue(modelPath));
}

bool ConversationStore::setSettings(qint64 id, const QJsonObject& settings) {
    return setConversationField(id, "settings", jsonText(settings));
}

bool ConversationStore::setSystemPrompt(qint64 id, const QString& systemPrompt) {
    return setConversationField(id, "system_prompt", textValue(systemPrompt));
}

bool ConversationStore::removeConversation(qint64 id) {
    if (!requireOpen()) return false;
    Transaction t(db_);
    if (!t.ok()) return fail(QStringLiteral("Cannot start a transaction: ") + t.error());
    {
        QSqlQuery q(db_);
        if (!run(q, QStringLiteral("DELETE FROM messages WHERE conversation_id = ?"), {id}))
            return failQuery(QStringLiteral("Cannot delete the messages of conversation %1").arg(id), q);
        if (!run(q, QStringLiteral("DELETE FROM conversations WHERE id = ?"), {id}))
            return failQuery(QStringLiteral("Cannot delete conversation %1").arg(id), q);
        if (q.numRowsAffected() != 1) return fail(QStringLiteral("No conversation with id %1").arg(id));
    }
    if (!t.commit()) return fail(QStringLiteral("Cannot delete conversation %1: ").arg(id) + t.error());
    return true;
}

// ---- Messages --------------------------------------------------------------------------------------

qint64 ConversationStore::addMessage(qint64 conversationId, qint64 parentId, const QString& role,
                                     const QString& content, const QJsonObject& stats, bool stopped) {
    if (!requireOpen()) return 0;
    if (!isValidRole(role))
        return fail(QStringLiteral("Invalid message role '%1' (expected user, assistant or system)").arg(role)), 0;
    if (parentId < 0) return fail(QStringLiteral("Invalid parent message id %1").arg(parentId)), 0;
    Transaction t(db_);
    if (!t.ok()) return fail(QStringLiteral("Cannot start a transaction: ") + t.error()), 0;
    {
        QSqlQuery q(db_);
        if (!run(q, QStringLiteral("SELECT 1 FROM conversations WHERE id = ?"), {conversationId}))
            return failQuery(QStringLiteral("Cannot read conversation %1").arg(conversationId), q), 0;
        if (!q.next()) return fail(QStringLiteral("No conversation with id %1").arg(conversationId)), 0;
    }
    if (parentId != 0) {
        QSqlQuery q(db_);
        if (!run(q, QStringLiteral("SELECT conversation_id FROM messages WHERE id = ?"), {parentId}))
            return failQuery(QStringLiteral("Cannot read message %1").arg(parentId), q), 0;
        if (!q.next()) return fail(QStringLiteral("No parent message with id %1").arg(parentId)), 0;
        if (q.value(0).toLongLong() != conversationId)
            return fail(QStringLiteral("Message %1 belongs to another conversation").arg(parentId)), 0;
    }
    qint64 id = 0;
    {
        QSqlQuery q(db_);
        if (!run(q,
                 QStringLiteral("INSERT INTO messages (conversation_id, parent_id, role, content, content_folded, "
                                "created, stats, stopped) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"),
                 {conversationId, nullableId(parentId), role, textValue(content), textValue(folded(content)),
                  nowMs(), jsonText(stats), stopped ? 1 : 0}))
            return failQuery(QStringLiteral("Cannot add a message"), q), 0;
        id = q.lastInsertId().toLongLong();
    }
    if (id <= 0) return fail(QStringLiteral("Cannot add a message: no id was assigned")), 0;
    {
        QSqlQuery q(db_);
        if (!run(q, QStringLiteral("UPDATE conversations SET current_leaf = ?, updated = ? WHERE id = ?"),
                 {id, nextUpdatedTime(), conversationId}))
            return failQuery(QStringLiteral("Cannot update conversation %1").arg(conversationId), q), 0;
    }
    if (!t.commit()) return fail(QStringLiteral("Cannot save the message: ") + t.error()), 0;
    return id;
}

bool ConversationStore::updateMessage(qint64 messageId, const QString& content, const QJsonObject& stats,
                                      std::optional<bool> stopped) {
    if (!requireOpen()) return false;
    Transaction t(db_);
    if (!t.ok()) return fail(QStringLiteral("Cannot start a transaction: ") + t.error());
    qint64 conversationId = 0;
    {
        QSqlQuery q(db_);
        if (!run(q, QStringLiteral("SELECT conversation_id FROM messages WHERE id = ?"), {messageId}))
            return failQuery(QStringLiteral("Cannot read message %1").arg(messageId), q);
        if (!q.next()) return fail(QStringLiteral("No message with id %1").arg(messageId));
        conversationId = q.value(0).toLongLong();
    }
    {
        QSqlQuery q(db_);
        bool ok;
        if (stopped.has_value()) {
            ok = run(q,
                     QStringLiteral("UPDATE messages SET content = ?, content_folded = ?, stats = ?, stopped = ? "
                                    "WHERE id = ?"),
                     {textValue(content), textValue(folded(content)), jsonText(stats), *stopped ? 1 : 0, messageId});
        } else {
            ok = run(q, QStringLiteral("UPDATE messages SET content = ?, content_folded = ?, stats = ? WHERE id = ?"),
                     {textValue(content), textValue(folded(content)), jsonText(stats), messageId});
        }
        if (!ok) return failQuery(QStringLiteral("Cannot update message %1").arg(messageId), q);
    }
    if (!touchConversation(conversationId)) return false;
    if (!t.commit()) return fail(QStringLiteral("Cannot save message %1: ").arg(messageId) + t.error());
    return true;
}

std::optional<StoredMessage> ConversationStore::message(qint64 messageId) {
    if (!requireOpen()) return std::nullopt;
    QSqlQuery q(db_);
    if (!run(q, QStringLiteral("SELECT %1 FROM messages WHERE id = ?").arg(kMessageColumns), {messageId})) {
        failQuery(QStringLiteral("Cannot read message %1").arg(messageId), q);
        return std::nullopt;
    }
    if (!q.next()) {
        fail(QStringLiteral("No message with id %1").arg(messageId));
        return std::nullopt;
    }
    return readMessage(q);
}

QList<StoredMessage> ConversationStore::activePath(qint64 conversationId) {
    QList<StoredMessage> out;
    if (!requireOpen()) return out;
    QSqlQuery q(db_);
    q.setForwardOnly(true);
    // Walk up from the current leaf; the depth guard stops a (corrupted) cycle.
    const QString sql = QStringLiteral(
        "WITH RECURSIVE path(node, depth) AS ("
        " SELECT current_leaf, 0 FROM conversations WHERE id = ? AND current_leaf IS NOT NULL"
        " UNION ALL"
        " SELECT m.parent_id, path.depth + 1 FROM messages m JOIN path ON m.id = path.node"
        " WHERE m.parent_id IS NOT NULL AND path.depth < 1000000)"
        " SELECT %1 FROM path JOIN messages ON messages.id = path.node"
        " WHERE messages.conversation_id = ? ORDER BY path.depth DESC")
                            .arg(kMessageColumns);
    if (!run(q, sql, {conversationId, conversationId})) {
        failQuery(QStringLiteral("Cannot read the messages of conversation %1").arg(conversationId), q);
        return out;
    }
    while (q.next()) out.append(readMessage(q));
    return out;
}

QList<StoredMessage> ConversationStore::allMessages(qint64 conversationId) {
    QList<StoredMessage> out;
    if (!requireOpen()) return out;
    QSqlQuery q(db_);
    q.setForwardOnly(true);
    if (!run(q, QStringLiteral("SELECT %1 FROM messages WHERE conversation_id = ? ORDER BY id").arg(kMessageColumns),
             {conversationId})) {
        failQuery(QStringLiteral("Cannot read the messages of conversation %1").arg(conversationId), q);
        return out;
    }
    while (q.next()) out.append(readMessage(q));
    return out;
}

QList<qint64> ConversationStore::siblings(qint64 messageId) {
    QList<qint64> out;
    if (!requireOpen()) return out;
    QSqlQuery q(db_);
    q.setForwardOnly(true);
    // Ids grow with every insert, so id order is creation order even if the clock jumps.
    const QString sql = QStringLiteral(
        "SELECT s.id FROM messages me JOIN messages s ON s.conversation_id = me.conversation_id"
        " AND s.parent_id IS me.parent_id WHERE me.id = ? ORDER BY s.id");
    if (!run(q, sql, {messageId})) {
        failQuery(QStringLiteral("Cannot read the siblings of message %1").arg(messageId), q);
        return out;
    }
    while (q.next()) out.append(q.value(0).toLongLong());
    if (out.isEmpty()) fail(QStringLiteral("No message with id %1").arg(messageId));
    return out;
}

bool ConversationStore::selectBranch(qint64 messageId) {
    if (!requireOpen()) return false;
    Transaction t(db_);
    if (!t.ok()) return fail(QStringLiteral("Cannot start a transaction: ") + t.error());
    qint64 conversationId = 0;
    {
        QSqlQuery q(db_);
        if (!run(q, QStringLiteral("SELECT conversation_id FROM messages WHERE id = ?"), {messageId}))
            return failQuery(QStringLiteral("Cannot read message %1").arg(messageId), q);
        if (!q.next()) return fail(QStringLiteral("No message with id %1").arg(messageId));
        conversationId = q.value(0).toLongLong();
    }
    qint64 leaf = messageId;
    {
        QSqlQuery q(db_);
        if (!q.prepare(QStringLiteral("SELECT id FROM messages WHERE parent_id = ? ORDER BY id DESC LIMIT 1")))
            return failQuery(QStringLiteral("Cannot follow the branch of message %1").arg(messageId), q);
        for (int depth = 0; depth < 1000000; ++depth) {
            q.bindValue(0, leaf);
            if (!q.exec()) return failQuery(QStringLiteral("Cannot follow the branch of message %1").arg(messageId), q);
            if (!q.next()) break;
            leaf = q.value(0).toLongLong();
            q.finish();
        }
        q.finish();
    }
    {
        QSqlQuery q(db_);
        if (!run(q, QStringLiteral("UPDATE conversations SET current_leaf = ? WHERE id = ?"), {leaf, conversationId}))
            return failQuery(QStringLiteral("Cannot update conversation %1").arg(conversationId), q);
    }
    if (!t.commit()) return fail(QStringLiteral("Cannot save the selected branch: ") + t.error());
    return true;
}

// ---- Export ----------------------------------------------------------------------------------------

QString ConversationStore::exportMarkdown(qint64 conversationId) {
    const std::optional<StoredConversation> c = conversation(conversationId);
    if (!c) return {};
    const QList<StoredMessage> path = activePath(conversationId);
    if (!lastError_.isEmpty()) return {};

    QString title = c->title.simplified();  // a heading is one line
    if (title.isEmpty()) title = QStringLiteral("Untitled conversation");
    QString out = QStringLiteral("# ") + title + u'\n';
    for (const StoredMessage& m : path) {
        out += QStringLiteral("\n**%1**:\n\n").arg(roleLabel(m.role));
        out += m.content;
        if (!m.content.endsWith(u'\n')) out += u'\n';
    }
    return out;
}

QByteArray ConversationStore::exportJson(qint64 conversationId) {
    const std::optional<StoredConversation> c = conversation(conversationId);
    if (!c) return {};
    const QList<StoredMessage> path = activePath(conversationId);
    if (!lastError_.isEmpty()) return {};
    const QList<StoredMessage> all = allMessages(conversationId);
    if (!lastError_.isEmpty()) return {};

    QJsonArray messages;
    for (const StoredMessage& m : path) {
        messages.append(QJsonObject{{QStringLiteral("id"), m.id},
                                    {QStringLiteral("role"), m.role},
                                    {QStringLiteral("content"), m.content},
                                    {QStringLiteral("created"), m.created},
                                    {QStringLiteral("stats"), m.stats},
                                    {QStringLiteral("stopped"), m.stopped}});
    }
    QJsonArray branches;
    for (const StoredMessage& m : all) {
        branches.append(QJsonObject{{QStringLiteral("id"), m.id},
                                    {QStringLiteral("parent_id"), m.parentId > 0 ? QJsonValue(m.parentId)
                                                                                 : QJsonValue(QJsonValue::Null)},
                                    {QStringLiteral("role"), m.role},
                                    {QStringLiteral("content"), m.content},
                                    {QStringLiteral("created"), m.created},
                                    {QStringLiteral("stats"), m.stats},
                                    {QStringLiteral("stopped"), m.stopped}});
    }
    const QJsonObject root{
        {QStringLiteral("title"), c->title},
        {QStringLiteral("model"), c->modelPath},
        {QStringLiteral("settings"), c->settings},
        {QStringLiteral("system_prompt"), c->systemPrompt},
        {QStringLiteral("created"), c->created},
        {QStringLiteral("updated"), c->updated},
        {QStringLiteral("current_leaf"), c->currentLeaf > 0 ? QJsonValue(c->currentLeaf) : QJsonValue(QJsonValue::Null)},
        {QStringLiteral("messages"), messages},
        {QStringLiteral("branches"), branches},
    };
    return QJsonDocument(root).toJson(QJsonDocument::Indented);
}

}  // namespace wp::ui
