// Tests for wp::ui::ConversationStore (Qt SQL / SQLite persistence with branching messages).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <QCoreApplication>
#include <QDateTime>
#include <QDir>
#include <QFile>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QSqlDatabase>
#include <QSqlError>
#include <QSqlQuery>
#include <QTemporaryDir>

#include <csignal>
#include <memory>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "store/conversation_store.h"

// Readable QString values in failure messages.
inline void PrintTo(const QString& s, std::ostream* os) { *os << '"' << s.toStdString() << '"'; }

namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using wp::ui::ConversationStore;
using wp::ui::StoredConversation;
using wp::ui::StoredMessage;

std::string str(const QString& s) { return s.toStdString(); }

// Runs one statement on a separate raw connection to `path` and returns the first column of the
// first row (invalid QVariant if there is none or the query failed).
QVariant rawScalar(const QString& path, const QString& sql) {
    static int counter = 0;
    const QString name = QStringLiteral("store_test_raw_%1").arg(++counter);
    QVariant result;
    {
        QSqlDatabase db = QSqlDatabase::addDatabase(QStringLiteral("QSQLITE"), name);
        db.setDatabaseName(path);
        if (db.open()) {
            QSqlQuery q(db);
            if (q.exec(sql) && q.next()) result = q.value(0);
        }
        db.close();
    }
    QSqlDatabase::removeDatabase(name);
    return result;
}

// Runs statements on a raw connection (to prepare odd database files); true if all succeeded.
bool rawExec(const QString& path, const QStringList& statements) {
    static int counter = 0;
    const QString name = QStringLiteral("store_test_rawexec_%1").arg(++counter);
    bool ok = true;
    {
        QSqlDatabase db = QSqlDatabase::addDatabase(QStringLiteral("QSQLITE"), name);
        db.setDatabaseName(path);
        ok = db.open();
        for (const QString& sql : statements) {
            if (!ok) break;
            QSqlQuery q(db);
            ok = q.exec(sql);
        }
        db.close();
    }
    QSqlDatabase::removeDatabase(name);
    return ok;
}

QList<qint64> ids(const QList<StoredMessage>& messages) {
    QList<qint64> out;
    for (const StoredMessage& m : messages) out.append(m.id);
    return out;
}

QStringList titles(const QList<StoredConversation>& conversations) {
    QStringList out;
    for (const StoredConversation& c : conversations) out.append(c.title);
    return out;
}

class StoreTest : public ::testing::Test {
protected:
    void SetUp() override {
        ASSERT_TRUE(dir_.isValid());
        path_ = dir_.filePath(QStringLiteral("conversations.db"));
        QString error = QStringLiteral("untouched");
        ASSERT_TRUE(store_.open(path_, &error)) << str(error);
        EXPECT_TRUE(error.isEmpty());
        EXPECT_TRUE(store_.isOpen());
        EXPECT_TRUE(store_.lastError().isEmpty());
    }

    QTemporaryDir dir_;
    QString path_;
    ConversationStore store_;
};

// ---- Conversations ---------------------------------------------------------------------------------

TEST_F(StoreTest, CreateGetAndListMostRecentlyUpdatedFirst) {
    const qint64 before = QDateTime::currentMSecsSinceEpoch();
    const QJsonObject settings{{"temperature", 0.7}, {"top_k", 40}};
    const qint64 a = store_.createConversation("Alpha", "/models/gemma", settings, "Be brief.");
    const qint64 b = store_.createConversation("Beta");
    const qint64 c = store_.createConversation("Gamma");
    ASSERT_GT(a, 0);
    ASSERT_GT(b, 0);
    ASSERT_GT(c, 0);
    EXPECT_NE(a, b);
    EXPECT_NE(b, c);

    const auto got = store_.conversation(a);
    ASSERT_TRUE(got.has_value()) << str(store_.lastError());
    EXPECT_EQ(got->id, a);
    EXPECT_EQ(got->title, "Alpha");
    EXPECT_EQ(got->modelPath, "/models/gemma");
    EXPECT_EQ(got->settings, settings);
    EXPECT_EQ(got->systemPrompt, "Be brief.");
    EXPECT_EQ(got->currentLeaf, 0);
    EXPECT_GE(got->created, before);
    EXPECT_LE(got->created, QDateTime::currentMSecsSinceEpoch());
    EXPECT_GE(got->updated, got->created);

    EXPECT_EQ(titles(store_.listConversations()), QStringList({"Gamma", "Beta", "Alpha"}));

    // A new message moves its conversation to the top and bumps "updated".
    const qint64 oldUpdated = got->updated;
    ASSERT_GT(store_.addMessage(a, 0, "user", "hi"), 0) << str(store_.lastError());
    EXPECT_EQ(titles(store_.listConversations()), QStringList({"Alpha", "Gamma", "Beta"}));
    EXPECT_GT(store_.conversation(a)->updated, oldUpdated);

    // Updating a message of Beta moves Beta to the top.
    const qint64 m = store_.addMessage(b, 0, "user", "x");
    ASSERT_GT(m, 0);
    ASSERT_GT(store_.addMessage(a, 0, "user", "again"), 0);
    EXPECT_EQ(titles(store_.listConversations()), QStringList({"Alpha", "Beta", "Gamma"}));
    ASSERT_TRUE(store_.updateMessage(m, "y", {}));
    EXPECT_EQ(titles(store_.listConversations()), QStringList({"Beta", "Alpha", "Gamma"}));

    // Unknown id.
    EXPECT_FALSE(store_.conversation(987654).has_value());
    EXPECT_THAT(str(store_.lastError()), HasSubstr("987654"));
}

TEST_F(StoreTest, RenameKeepsOrderAndChangesTitle) {
    const qint64 a = store_.createConversation("First");
    const qint64 b = store_.createConversation("Second");
    ASSERT_GT(b, 0);
    ASSERT_TRUE(store_.renameConversation(a, "Renamed first")) << str(store_.lastError());
    EXPECT_TRUE(store_.lastError().isEmpty());
    EXPECT_EQ(store_.conversation(a)->title, "Renamed first");
    EXPECT_EQ(titles(store_.listConversations()), QStringList({"Second", "Renamed first"}));

    // Empty titles are stored as "" (not NULL, which the schema rejects).
    ASSERT_TRUE(store_.renameConversation(b, QString())) << str(store_.lastError());
    EXPECT_EQ(store_.conversation(b)->title, "");
    const qint64 untitled = store_.createConversation(QString());
    EXPECT_GT(untitled, 0) << str(store_.lastError());

    EXPECT_FALSE(store_.renameConversation(424242, "nope"));
    EXPECT_THAT(str(store_.lastError()), HasSubstr("424242"));
}

TEST_F(StoreTest, SearchMatchesTitleOrContentCaseInsensitivelyAndLiterally) {
    const qint64 pasta = store_.createConversation("Pasta Recipes");
    const qint64 physics = store_.createConversation("Homework");
    const qint64 discount = store_.createConversation("100% discount");
    const qint64 tickets = store_.createConversation("1000 tickets");
    const qint64 under = store_.createConversation("snake_case names");
    const qint64 underX = store_.createConversation("snakeXcase names");
    const qint64 slash = store_.createConversation("C:\\temp\\files");
    const qint64 umlaut = store_.createConversation("Ärger im Büro");
    ASSERT_GT(store_.addMessage(physics, 0, "user", "Tell me about QUANTUM physics"), 0);
    const qint64 reply = store_.addMessage(physics, 0, "user", "something else");
    ASSERT_GT(reply, 0);
    (void)pasta;
    (void)tickets;
    (void)underX;

    auto found = [&](const QString& s) { return titles(store_.listConversations(s)); };

    EXPECT_EQ(found("pasta"), QStringList({"Pasta Recipes"}));
    EXPECT_EQ(found("RECIPES"), QStringList({"Pasta Recipes"}));
    // Message content, in any branch (the QUANTUM message is no longer on the active path).
    EXPECT_EQ(found("quantum"), QStringList({"Homework"}));
    EXPECT_EQ(found("Quantum Phys"), QStringList({"Homework"}));
    // '%' and '_' are literal, not wildcards.
    EXPECT_EQ(found("100%"), QStringList({"100% discount"}));
    EXPECT_EQ(found("0% d"), QStringList({"100% discount"}));
    EXPECT_EQ(found("%"), QStringList({"100% discount"}));
    EXPECT_EQ(found("snake_case"), QStringList({"snake_case names"}));
    EXPECT_EQ(found("_"), QStringList({"snake_case names"}));
    EXPECT_EQ(found("\\temp"), QStringList({"C:\\temp\\files"}));
    // Beyond ASCII.
    EXPECT_EQ(found("ärger"), QStringList({"Ärger im Büro"}));
    EXPECT_EQ(found("BÜRO"), QStringList({"Ärger im Büro"}));
    // No match is an empty list without an error.
    EXPECT_TRUE(found("zebra").isEmpty());
    EXPECT_TRUE(store_.lastError().isEmpty());
    // Empty search lists everything.
    EXPECT_EQ(store_.listConversations(QString()).size(), 8);

    // Renaming updates what the title search sees; editing content updates the content search.
    ASSERT_TRUE(store_.renameConversation(discount, "Half price"));
    EXPECT_TRUE(found("100%").isEmpty());
    EXPECT_EQ(found("HALF"), QStringList({"Half price"}));
    ASSERT_TRUE(store_.updateMessage(reply, "Zebra crossings", {}));
    EXPECT_EQ(found("zebra"), QStringList({"Homework"}));
    (void)under;
    (void)slash;
    (void)umlaut;
}

TEST_F(StoreTest, RemoveDeletesConversationAndItsMessages) {
    const qint64 keep = store_.createConversation("Keep");
    const qint64 drop = store_.createConversation("Drop");
    const qint64 k1 = store_.addMessage(keep, 0, "user", "keep me");
    const qint64 d1 = store_.addMessage(drop, 0, "user", "drop me");
    const qint64 d2 = store_.addMessage(drop, d1, "assistant", "dropped");
    ASSERT_GT(k1, 0);
    ASSERT_GT(d2, 0);

    ASSERT_TRUE(store_.removeConversation(drop)) << str(store_.lastError());
    EXPECT_FALSE(store_.conversation(drop).has_value());
    EXPECT_FALSE(store_.message(d1).has_value());
    EXPECT_FALSE(store_.message(d2).has_value());
    EXPECT_TRUE(store_.activePath(drop).isEmpty());
    EXPECT_EQ(titles(store_.listConversations()), QStringList({"Keep"}));
    EXPECT_EQ(rawScalar(path_, QStringLiteral("SELECT count(*) FROM messages WHERE conversation_id = %1").arg(drop))
                  .toInt(),
              0);
    EXPECT_EQ(rawScalar(path_, QStringLiteral("SELECT count(*) FROM messages")).toInt(), 1);
    EXPECT_TRUE(store_.message(k1).has_value());

    // deleteConversation is the same operation; removing twice fails.
    ASSERT_TRUE(store_.deleteConversation(keep));
    EXPECT_TRUE(store_.listConversations().isEmpty());
    EXPECT_FALSE(store_.removeConversation(keep));
    EXPECT_FALSE(store_.lastError().isEmpty());
}

// ---- Messages ----------------------------------------------------------------------------------------

TEST_F(StoreTest, AddMessageStoresFieldsAndMovesLeaf) {
    const qint64 c = store_.createConversation("Chat");
    const qint64 before = QDateTime::currentMSecsSinceEpoch();
    const QJsonObject stats{{"prompt_tokens", 12}, {"tokens_per_second", 33.5}};
    const qint64 u = store_.addMessage(c, 0, "user", "Hello?");
    const qint64 a = store_.addMessage(c, u, "assistant", "Hi!", stats, true);
    ASSERT_GT(u, 0);
    ASSERT_GT(a, 0);

    const auto mu = store_.message(u);
    ASSERT_TRUE(mu.has_value());
    EXPECT_EQ(mu->conversationId, c);
    EXPECT_EQ(mu->parentId, 0);
    EXPECT_EQ(mu->role, "user");
    EXPECT_EQ(mu->content, "Hello?");
    EXPECT_TRUE(mu->stats.isEmpty());
    EXPECT_FALSE(mu->stopped);
    EXPECT_GE(mu->created, before);
    EXPECT_LE(mu->created, QDateTime::currentMSecsSinceEpoch());
    // The first message's parent is NULL in the database.
    EXPECT_TRUE(rawScalar(path_, QStringLiteral("SELECT parent_id FROM messages WHERE id = %1").arg(u)).isNull());

    const auto ma = store_.message(a);
    ASSERT_TRUE(ma.has_value());
    EXPECT_EQ(ma->parentId, u);
    EXPECT_EQ(ma->role, "assistant");
    EXPECT_EQ(ma->content, "Hi!");
    EXPECT_EQ(ma->stats, stats);
    EXPECT_TRUE(ma->stopped);

    EXPECT_EQ(store_.conversation(c)->currentLeaf, a);
    EXPECT_THAT(ids(store_.activePath(c)), ElementsAre(u, a));
    EXPECT_TRUE(store_.lastError().isEmpty()) << str(store_.lastError());
}

TEST_F(StoreTest, AddMessageRejectsBadInput) {
    const qint64 c1 = store_.createConversation("One");
    const qint64 c2 = store_.createConversation("Two");
    const qint64 m1 = store_.addMessage(c1, 0, "user", "in one");
    ASSERT_GT(m1, 0);

    EXPECT_EQ(store_.addMessage(c2, m1, "assistant", "wrong tree"), 0);
    EXPECT_THAT(str(store_.lastError()), HasSubstr("another conversation"));
    EXPECT_EQ(store_.addMessage(c1, m1, "robot", "bad role"), 0);
    EXPECT_THAT(str(store_.lastError()), HasSubstr("robot"));
    EXPECT_EQ(store_.addMessage(c1, 999999, "user", "no parent"), 0);
    EXPECT_THAT(str(store_.lastError()), HasSubstr("999999"));
    EXPECT_EQ(store_.addMessage(777777, 0, "user", "no conversation"), 0);
    EXPECT_THAT(str(store_.lastError()), HasSubstr("777777"));

    // Nothing was inserted and the leaves are unchanged.
    EXPECT_EQ(rawScalar(path_, QStringLiteral("SELECT count(*) FROM messages")).toInt(), 1);
    EXPECT_EQ(store_.conversation(c1)->currentLeaf, m1);
    EXPECT_EQ(store_.conversation(c2)->currentLeaf, 0);

    // A successful call clears the error.
    EXPECT_GT(store_.addMessage(c1, m1, "system", "ok"), 0);
    EXPECT_TRUE(store_.lastError().isEmpty());
}

TEST_F(StoreTest, BranchingActivePathSiblingsAndSelectBranch) {
    const qint64 c = store_.createConversation("Tree");
    const qint64 u1 = store_.addMessage(c, 0, "user", "u1");
    const qint64 a1 = store_.addMessage(c, u1, "assistant", "a1");
    const qint64 u2 = store_.addMessage(c, a1, "user", "u2");
    const qint64 a2 = store_.addMessage(c, u2, "assistant", "a2");
    ASSERT_GT(a2, 0);
    EXPECT_THAT(ids(store_.activePath(c)), ElementsAre(u1, a1, u2, a2));

    // Edit u2: a sibling under the same parent becomes the active branch.
    const qint64 u2b = store_.addMessage(c, a1, "user", "u2 edited");
    ASSERT_GT(u2b, 0);
    EXPECT_THAT(ids(store_.activePath(c)), ElementsAre(u1, a1, u2b));
    EXPECT_THAT(store_.siblings(u2), ElementsAre(u2, u2b));
    EXPECT_THAT(store_.siblings(u2b), ElementsAre(u2, u2b));
    EXPECT_THAT(store_.siblings(a1), ElementsAre(a1));
    EXPECT_THAT(store_.siblings(u1), ElementsAre(u1));
    const qint64 a2b = store_.addMessage(c, u2b, "assistant", "a2 for edit");
    EXPECT_THAT(ids(store_.activePath(c)), ElementsAre(u1, a1, u2b, a2b));

    // Switch back to the old branch: its deepest descendant becomes the leaf.
    ASSERT_TRUE(store_.selectBranch(u2)) << str(store_.lastError());
    EXPECT_EQ(store_.conversation(c)->currentLeaf, a2);
    EXPECT_THAT(ids(store_.activePath(c)), ElementsAre(u1, a1, u2, a2));

    // Regenerate a2: a second reply under u2, then selecting u2 follows the latest reply.
    const qint64 a2c = store_.addMessage(c, u2, "assistant", "a2 regenerated");
    const qint64 u3 = store_.addMessage(c, a2c, "user", "u3");
    EXPECT_THAT(store_.siblings(a2), ElementsAre(a2, a2c));
    ASSERT_TRUE(store_.selectBranch(a2));
    EXPECT_THAT(ids(store_.activePath(c)), ElementsAre(u1, a1, u2, a2));
    ASSERT_TRUE(store_.selectBranch(u2));
    EXPECT_THAT(ids(store_.activePath(c)), ElementsAre(u1, a1, u2, a2c, u3));

    // From a1 the latest child is u2b (created after u2), whose latest child is a2b.
    ASSERT_TRUE(store_.selectBranch(a1));
    EXPECT_THAT(ids(store_.activePath(c)), ElementsAre(u1, a1, u2b, a2b));

    // Editing the very first message adds a second root.
    const qint64 u1b = store_.addMessage(c, 0, "user", "u1 edited");
    EXPECT_THAT(ids(store_.activePath(c)), ElementsAre(u1b));
    EXPECT_THAT(store_.siblings(u1), ElementsAre(u1, u1b));
    EXPECT_THAT(store_.siblings(u1b), ElementsAre(u1, u1b));
    ASSERT_TRUE(store_.selectBranch(u1));
    EXPECT_THAT(ids(store_.activePath(c)), ElementsAre(u1, a1, u2b, a2b));
    // Selecting a leaf selects exactly that leaf.
    ASSERT_TRUE(store_.selectBranch(u3));
    EXPECT_THAT(ids(store_.activePath(c)), ElementsAre(u1, a1, u2, a2c, u3));

    // Roots of another conversation are not siblings.
    const qint64 other = store_.createConversation("Other");
    const qint64 otherRoot = store_.addMessage(other, 0, "user", "other root");
    EXPECT_THAT(store_.siblings(otherRoot), ElementsAre(otherRoot));
    EXPECT_THAT(store_.siblings(u1), ElementsAre(u1, u1b));

    // Full tree in creation order.
    EXPECT_THAT(ids(store_.allMessages(c)), ElementsAre(u1, a1, u2, a2, u2b, a2b, a2c, u3, u1b));

    // Unknown ids.
    EXPECT_TRUE(store_.siblings(555555).isEmpty());
    EXPECT_FALSE(store_.lastError().isEmpty());
    EXPECT_FALSE(store_.selectBranch(555555));
    EXPECT_FALSE(store_.lastError().isEmpty());
    EXPECT_THAT(ids(store_.activePath(c)), ElementsAre(u1, a1, u2, a2c, u3));
}

TEST_F(StoreTest, SelectBranchDoesNotReorderList) {
    const qint64 a = store_.createConversation("A");
    const qint64 m = store_.addMessage(a, 0, "user", "x");
    store_.createConversation("B");
    ASSERT_TRUE(store_.selectBranch(m));
    EXPECT_EQ(titles(store_.listConversations()), QStringList({"B", "A"}));
}

TEST_F(StoreTest, UpdateMessageReplacesContentStatsAndStoppedFlag) {
    const qint64 c = store_.createConversation("Stream");
    const qint64 u = store_.addMessage(c, 0, "user", "count to three");
    const qint64 a = store_.addMessage(c, u, "assistant", "");
    ASSERT_GT(a, 0);
    EXPECT_EQ(store_.message(a)->content, "");

    // Large stats: per-token top-5 probabilities for a long reply.
    QJsonArray tokens;
    for (int i = 0; i < 3000; ++i) {
        QJsonArray top;
        for (int k = 0; k < 5; ++k)
            top.append(QJsonObject{{"token", QStringLiteral("tok%1_%2").arg(i).arg(k)}, {"p", 1.0 / (k + 2)}});
        tokens.append(QJsonObject{{"id", i}, {"top", top}});
    }
    const QJsonObject stats{{"completion_tokens", 3000}, {"tokens_per_second", 41.25}, {"tokens", tokens}};
    ASSERT_TRUE(store_.updateMessage(a, "one, two", stats, true)) << str(store_.lastError());
    auto got = store_.message(a);
    ASSERT_TRUE(got.has_value());
    EXPECT_EQ(got->content, "one, two");
    EXPECT_EQ(got->stats, stats);
    EXPECT_TRUE(got->stopped);
    EXPECT_EQ(got->parentId, u);

    // Without a stopped value the flag is kept.
    ASSERT_TRUE(store_.updateMessage(a, "one, two, three", QJsonObject{{"completion_tokens", 3}}));
    got = store_.message(a);
    EXPECT_EQ(got->content, "one, two, three");
    EXPECT_EQ(got->stats, (QJsonObject{{"completion_tokens", 3}}));
    EXPECT_TRUE(got->stopped);
    ASSERT_TRUE(store_.updateMessage(a, "done", {}, false));
    EXPECT_FALSE(store_.message(a)->stopped);
    EXPECT_TRUE(store_.message(a)->stats.isEmpty());

    // The tree and the leaf are unchanged.
    EXPECT_THAT(ids(store_.activePath(c)), ElementsAre(u, a));
    EXPECT_FALSE(store_.updateMessage(313131, "x", {}));
    EXPECT_THAT(str(store_.lastError()), HasSubstr("313131"));
}

TEST_F(StoreTest, ModelSettingsAndSystemPromptRoundTrip) {
    const qint64 c = store_.createConversation("Settings");
    const QJsonObject settings{{"temperature", 0.2}, {"top_p", 0.95}, {"seed", 1234}, {"stop", QJsonArray{"###"}}};
    ASSERT_TRUE(store_.setModelPath(c, "/home/me/models/qwen2-0.5b"));
    ASSERT_TRUE(store_.setSettings(c, settings));
    ASSERT_TRUE(store_.setSystemPrompt(c, "You are a pirate.\nAnswer in rhymes."));
    auto got = store_.conversation(c);
    ASSERT_TRUE(got.has_value());
    EXPECT_EQ(got->modelPath, "/home/me/models/qwen2-0.5b");
    EXPECT_EQ(got->settings, settings);
    EXPECT_EQ(got->systemPrompt, "You are a pirate.\nAnswer in rhymes.");
    EXPECT_EQ(got->title, "Settings");

    // Survives reopening.
    store_.close();
    EXPECT_FALSE(store_.isOpen());
    ASSERT_TRUE(store_.open(path_));
    got = store_.conversation(c);
    ASSERT_TRUE(got.has_value());
    EXPECT_EQ(got->modelPath, "/home/me/models/qwen2-0.5b");
    EXPECT_EQ(got->settings, settings);
    EXPECT_EQ(got->systemPrompt, "You are a pirate.\nAnswer in rhymes.");

    // Clearing works; unknown ids fail.
    ASSERT_TRUE(store_.setSystemPrompt(c, QString()));
    ASSERT_TRUE(store_.setSettings(c, {}));
    ASSERT_TRUE(store_.setModelPath(c, ""));
    got = store_.conversation(c);
    EXPECT_EQ(got->systemPrompt, "");
    EXPECT_TRUE(got->settings.isEmpty());
    EXPECT_EQ(got->modelPath, "");
    EXPECT_FALSE(store_.setModelPath(8888, "x"));
    EXPECT_FALSE(store_.setSettings(8888, {}));
    EXPECT_FALSE(store_.setSystemPrompt(8888, "x"));
    EXPECT_THAT(str(store_.lastError()), HasSubstr("8888"));
}

// ---- Export ------------------------------------------------------------------------------------------

TEST_F(StoreTest, ExportMarkdownUsesActivePathVerbatim) {
    const qint64 c = store_.createConversation("Sorting in C++");
    const qint64 s = store_.addMessage(c, 0, "system", "Answer briefly.");
    const qint64 u = store_.addMessage(c, s, "user", "How do I sort a vector?");
    const qint64 old = store_.addMessage(c, u, "assistant", "OLD REPLY");
    const QString reply = QStringLiteral("Use **std::sort**:\n\n```cpp\nstd::sort(v.begin(), v.end());\n```\n");
    const qint64 a = store_.addMessage(c, u, "assistant", reply);
    ASSERT_GT(old, 0);
    ASSERT_GT(a, 0);

    const QString expected = QStringLiteral(
        "# Sorting in C++\n"
        "\n**System**:\n\nAnswer briefly.\n"
        "\n**User**:\n\nHow do I sort a vector?\n"
        "\n**Assistant**:\n\nUse **std::sort**:\n\n```cpp\nstd::sort(v.begin(), v.end());\n```\n");
    EXPECT_EQ(store_.exportMarkdown(c), expected);

    // Another branch exports the other reply.
    ASSERT_TRUE(store_.selectBranch(old));
    const QString md = store_.exportMarkdown(c);
    EXPECT_THAT(str(md), HasSubstr("\n**Assistant**:\n\nOLD REPLY\n"));
    EXPECT_THAT(str(md), ::testing::Not(HasSubstr("std::sort")));

    EXPECT_TRUE(store_.exportMarkdown(4040).isEmpty());
    EXPECT_FALSE(store_.lastError().isEmpty());
}

TEST_F(StoreTest, ExportJsonHasAllFieldsActivePathAndBranches) {
    const QJsonObject settings{{"temperature", 0.5}, {"max_tokens", 256}};
    const qint64 c = store_.createConversation("Json export", "/models/gemma-2b", settings, "Be nice.");
    const qint64 u = store_.addMessage(c, 0, "user", "Hi \"there\"\nsecond line");
    const qint64 a1 = store_.addMessage(c, u, "assistant", "first", QJsonObject{{"tokens", 1}});
    const QJsonObject stats2{{"tokens", 2}, {"tokens_per_second", 12.5}};
    const qint64 a2 = store_.addMessage(c, u, "assistant", "second", stats2, true);
    ASSERT_GT(a2, 0);
    const StoredConversation conv = *store_.conversation(c);
    const StoredMessage mu = *store_.message(u);
    const StoredMessage ma2 = *store_.message(a2);

    const QByteArray bytes = store_.exportJson(c);
    QJsonParseError parseError;
    const QJsonDocument doc = QJsonDocument::fromJson(bytes, &parseError);
    ASSERT_EQ(parseError.error, QJsonParseError::NoError) << str(parseError.errorString());
    ASSERT_TRUE(doc.isObject());
    const QJsonObject root = doc.object();
    EXPECT_EQ(root["title"].toString(), "Json export");
    EXPECT_EQ(root["model"].toString(), "/models/gemma-2b");
    EXPECT_EQ(root["settings"].toObject(), settings);
    EXPECT_EQ(root["system_prompt"].toString(), "Be nice.");
    EXPECT_EQ(root["created"].toInteger(), conv.created);
    EXPECT_EQ(root["current_leaf"].toInteger(), a2);

    const QJsonArray messages = root["messages"].toArray();
    ASSERT_EQ(messages.size(), 2);
    const QJsonObject m0 = messages[0].toObject();
    EXPECT_EQ(m0["role"].toString(), "user");
    EXPECT_EQ(m0["content"].toString(), "Hi \"there\"\nsecond line");
    EXPECT_EQ(m0["created"].toInteger(), mu.created);
    EXPECT_TRUE(m0["stats"].isObject());
    EXPECT_TRUE(m0["stats"].toObject().isEmpty());
    EXPECT_FALSE(m0["stopped"].toBool(true));
    const QJsonObject m1 = messages[1].toObject();
    EXPECT_EQ(m1["role"].toString(), "assistant");
    EXPECT_EQ(m1["content"].toString(), "second");
    EXPECT_EQ(m1["created"].toInteger(), ma2.created);
    EXPECT_EQ(m1["stats"].toObject(), stats2);
    EXPECT_TRUE(m1["stopped"].toBool(false));

    const QJsonArray branches = root["branches"].toArray();
    ASSERT_EQ(branches.size(), 3);
    const QJsonObject b0 = branches[0].toObject(), b1 = branches[1].toObject(), b2 = branches[2].toObject();
    EXPECT_EQ(b0["id"].toInteger(), u);
    EXPECT_TRUE(b0["parent_id"].isNull());
    EXPECT_EQ(b1["id"].toInteger(), a1);
    EXPECT_EQ(b1["parent_id"].toInteger(), u);
    EXPECT_EQ(b1["content"].toString(), "first");
    EXPECT_EQ(b1["role"].toString(), "assistant");
    EXPECT_EQ(b1["stats"].toObject(), (QJsonObject{{"tokens", 1}}));
    EXPECT_EQ(b2["id"].toInteger(), a2);
    EXPECT_EQ(b2["parent_id"].toInteger(), u);
    EXPECT_EQ(b2["content"].toString(), "second");

    EXPECT_TRUE(store_.exportJson(5050).isEmpty());
    EXPECT_FALSE(store_.lastError().isEmpty());
}

// ---- Database ----------------------------------------------------------------------------------------

TEST_F(StoreTest, UsesWalAndRecordsSchemaVersion) {
    ASSERT_GT(store_.createConversation("x"), 0);
    // journal_mode=WAL is persistent in the file: a fresh connection sees it.
    EXPECT_EQ(rawScalar(path_, "PRAGMA journal_mode").toString().toLower(), "wal");
    EXPECT_EQ(rawScalar(path_, "PRAGMA user_version").toInt(), ConversationStore::kSchemaVersion);
    EXPECT_EQ(ConversationStore::kSchemaVersion, 1);
    EXPECT_TRUE(QFile::exists(path_ + "-wal"));
}

TEST_F(StoreTest, ReopenGivesSameData) {
    const qint64 c = store_.createConversation("Persistent", "/m", QJsonObject{{"k", 1}}, "sys");
    const qint64 u = store_.addMessage(c, 0, "user", "question");
    const qint64 a = store_.addMessage(c, u, "assistant", "answer", QJsonObject{{"tokens", 7}}, true);
    const qint64 a2 = store_.addMessage(c, u, "assistant", "other answer");
    ASSERT_TRUE(store_.selectBranch(a));
    const StoredConversation before = *store_.conversation(c);
    store_.close();
    EXPECT_FALSE(store_.isOpen());
    EXPECT_FALSE(store_.conversation(c).has_value());
    EXPECT_THAT(str(store_.lastError()), HasSubstr("not open"));

    ConversationStore reopened;
    ASSERT_TRUE(reopened.open(path_)) << str(reopened.lastError());
    const auto after = reopened.conversation(c);
    ASSERT_TRUE(after.has_value());
    EXPECT_EQ(after->title, before.title);
    EXPECT_EQ(after->created, before.created);
    EXPECT_EQ(after->updated, before.updated);
    EXPECT_EQ(after->modelPath, before.modelPath);
    EXPECT_EQ(after->settings, before.settings);
    EXPECT_EQ(after->systemPrompt, before.systemPrompt);
    EXPECT_EQ(after->currentLeaf, a);
    const QList<StoredMessage> path = reopened.activePath(c);
    ASSERT_EQ(path.size(), 2);
    EXPECT_EQ(path[0].content, "question");
    EXPECT_EQ(path[1].content, "answer");
    EXPECT_EQ(path[1].stats, (QJsonObject{{"tokens", 7}}));
    EXPECT_TRUE(path[1].stopped);
    EXPECT_THAT(reopened.siblings(a), ElementsAre(a, a2));

    // New ids continue after the old ones.
    const qint64 next = reopened.addMessage(c, a, "user", "more");
    EXPECT_GT(next, a2);

    // Reopening the same object on the same file also works.
    ASSERT_TRUE(reopened.open(path_));
    EXPECT_EQ(reopened.activePath(c).size(), 3);
}

// A child process commits data and dies without closing the database; the parent must find it.
TEST(StoreCrashTest, CommittedDataSurvivesAbruptExit) {
    QTemporaryDir dir;
    ASSERT_TRUE(dir.isValid());
    const QString path = dir.filePath("crash.db");

    for (const bool sigkill : {false, true}) {
        SCOPED_TRACE(sigkill ? "SIGKILL" : "_exit(0)");
        const QString title = sigkill ? QStringLiteral("killed") : QStringLiteral("exited");
        fflush(nullptr);
        const pid_t pid = fork();
        ASSERT_GE(pid, 0);
        if (pid == 0) {
            // Child: never return into the test framework.
            auto* store = new ConversationStore;  // deliberately never destroyed or closed
            if (!store->open(path)) _exit(10);
            const qint64 c = store->createConversation(title);
            if (c <= 0) _exit(11);
            const qint64 u = store->addMessage(c, 0, "user", "committed question");
            if (u <= 0) _exit(12);
            if (sigkill) {
                const qint64 a = store->addMessage(c, u, "assistant", "partial");
                if (a <= 0) _exit(13);
                if (!store->updateMessage(a, "partial reply, stopped", QJsonObject{{"tokens", 3}}, true)) _exit(14);
                raise(SIGKILL);
            }
            _exit(0);
        }
        int status = 0;
        ASSERT_EQ(waitpid(pid, &status, 0), pid);
        if (sigkill) {
            ASSERT_TRUE(WIFSIGNALED(status)) << "child exit code " << WEXITSTATUS(status);
            EXPECT_EQ(WTERMSIG(status), SIGKILL);
        } else {
            ASSERT_TRUE(WIFEXITED(status));
            ASSERT_EQ(WEXITSTATUS(status), 0);
        }

        ConversationStore store;
        ASSERT_TRUE(store.open(path)) << str(store.lastError());
        const QList<StoredConversation> found = store.listConversations(title);
        ASSERT_EQ(found.size(), 1);
        EXPECT_EQ(found[0].title, title);
        const QList<StoredMessage> messages = store.activePath(found[0].id);
        ASSERT_EQ(messages.size(), sigkill ? 2 : 1);
        EXPECT_EQ(messages[0].content, "committed question");
        EXPECT_EQ(messages[0].role, "user");
        if (sigkill) {
            EXPECT_EQ(messages[1].content, "partial reply, stopped");
            EXPECT_TRUE(messages[1].stopped);
            EXPECT_EQ(messages[1].stats, (QJsonObject{{"tokens", 3}}));
        }
    }
}

TEST(StoreOpenTest, BadPathsGiveErrorsNotCrashes) {
    QTemporaryDir dir;
    ASSERT_TRUE(dir.isValid());
    ConversationStore store;
    QString error;

    // Missing folder.
    const QString missing = dir.filePath("no/such/folder/c.db");
    EXPECT_FALSE(store.open(missing, &error));
    EXPECT_FALSE(store.isOpen());
    EXPECT_THAT(str(error), HasSubstr("c.db"));
    EXPECT_EQ(error, store.lastError());
    EXPECT_FALSE(QFile::exists(missing));

    // A "folder" that is a regular file.
    const QString plain = dir.filePath("plain.txt");
    {
        QFile f(plain);
        ASSERT_TRUE(f.open(QIODevice::WriteOnly));
        f.write("hello");
    }
    error.clear();
    EXPECT_FALSE(store.open(plain + "/c.db", &error));
    EXPECT_FALSE(error.isEmpty());

    // The path is a folder.
    error.clear();
    EXPECT_FALSE(store.open(dir.path(), &error));
    EXPECT_THAT(str(error), HasSubstr("folder"));

    // A folder nobody may create files in (even root cannot create files in /proc).
    error.clear();
    EXPECT_FALSE(store.open("/proc/windowpane-store-test.db", &error));
    EXPECT_FALSE(error.isEmpty());
    EXPECT_FALSE(store.isOpen());

    // A read-only folder (only meaningful when not running as root).
    if (geteuid() != 0) {
        const QString ro = dir.filePath("readonly");
        ASSERT_TRUE(QDir().mkdir(ro));
        ASSERT_EQ(chmod(QFile::encodeName(ro).constData(), 0500), 0);
        error.clear();
        EXPECT_FALSE(store.open(ro + "/c.db", &error));
        EXPECT_FALSE(error.isEmpty());
        chmod(QFile::encodeName(ro).constData(), 0700);
    }

    // Garbage content: an error, and the file is left untouched.
    const QString garbage = dir.filePath("garbage.db");
    QByteArray junk;
    for (int i = 0; i < 8192; ++i) junk.append(char((i * 131 + 7) % 251));
    {
        QFile f(garbage);
        ASSERT_TRUE(f.open(QIODevice::WriteOnly));
        f.write(junk);
    }
    error.clear();
    EXPECT_FALSE(store.open(garbage, &error));
    EXPECT_FALSE(store.isOpen());
    EXPECT_THAT(str(error), HasSubstr("garbage.db"));
    EXPECT_THAT(str(error), HasSubstr("not a"));
    {
        QFile f(garbage);
        ASSERT_TRUE(f.open(QIODevice::ReadOnly));
        EXPECT_EQ(f.readAll(), junk);
    }

    // Calls on a store that failed to open fail cleanly.
    EXPECT_EQ(store.createConversation("x"), 0);
    EXPECT_THAT(str(store.lastError()), HasSubstr("not open"));
    EXPECT_TRUE(store.listConversations().isEmpty());
    EXPECT_EQ(store.addMessage(1, 0, "user", "x"), 0);
    EXPECT_TRUE(store.exportMarkdown(1).isEmpty());

    // The same object can still open a good file afterwards.
    ASSERT_TRUE(store.open(dir.filePath("good.db"), &error)) << str(error);
    EXPECT_TRUE(error.isEmpty());
    EXPECT_GT(store.createConversation("works"), 0);
}

TEST(StoreOpenTest, ForeignOrNewerDatabasesAreRefused) {
    QTemporaryDir dir;
    ASSERT_TRUE(dir.isValid());

    const QString foreign = dir.filePath("foreign.db");
    ASSERT_TRUE(rawExec(foreign, {"CREATE TABLE invoices (id INTEGER PRIMARY KEY, amount REAL)",
                                  "INSERT INTO invoices (amount) VALUES (9.5)"}));
    ConversationStore store;
    QString error;
    EXPECT_FALSE(store.open(foreign, &error));
    EXPECT_THAT(str(error), HasSubstr("another application"));
    // Not modified: no tables of ours were added.
    EXPECT_EQ(rawScalar(foreign, "SELECT count(*) FROM sqlite_master WHERE name = 'conversations'").toInt(), 0);
    EXPECT_EQ(rawScalar(foreign, "PRAGMA user_version").toInt(), 0);

    const QString newer = dir.filePath("newer.db");
    {
        ConversationStore s;
        ASSERT_TRUE(s.open(newer));
    }
    ASSERT_TRUE(rawExec(newer, {"PRAGMA user_version = 99"}));
    error.clear();
    EXPECT_FALSE(store.open(newer, &error));
    EXPECT_THAT(str(error), HasSubstr("newer"));
    EXPECT_THAT(str(error), HasSubstr("99"));
}

TEST(StoreOpenTest, TwoStoresOnTwoFilesAtOnce) {
    QTemporaryDir dir;
    ASSERT_TRUE(dir.isValid());
    auto one = std::make_unique<ConversationStore>();
    ConversationStore two;
    ASSERT_TRUE(one->open(dir.filePath("one.db"))) << str(one->lastError());
    ASSERT_TRUE(two.open(dir.filePath("two.db"))) << str(two.lastError());

    const qint64 c1 = one->createConversation("only in one");
    const qint64 c2 = two.createConversation("only in two");
    ASSERT_GT(c1, 0);
    ASSERT_GT(c2, 0);
    ASSERT_GT(one->addMessage(c1, 0, "user", "message one"), 0);
    ASSERT_GT(two.addMessage(c2, 0, "user", "message two"), 0);
    EXPECT_EQ(titles(one->listConversations()), QStringList({"only in one"}));
    EXPECT_EQ(titles(two.listConversations()), QStringList({"only in two"}));
    EXPECT_TRUE(one->listConversations("message two").isEmpty());

    // Destroying one store leaves the other working.
    one.reset();
    EXPECT_GT(two.createConversation("still fine"), 0);
    EXPECT_EQ(two.listConversations().size(), 2);

    // Two stores on the same file see each other's commits.
    ConversationStore twin;
    ASSERT_TRUE(twin.open(dir.filePath("two.db")));
    const qint64 fromTwin = twin.createConversation("from twin");
    ASSERT_GT(fromTwin, 0);
    EXPECT_EQ(titles(two.listConversations()), QStringList({"from twin", "still fine", "only in two"}));
}

TEST(StoreOpenTest, InMemoryDatabaseWorks) {
    ConversationStore store;
    ASSERT_TRUE(store.open(":memory:")) << str(store.lastError());
    const qint64 c = store.createConversation("mem");
    ASSERT_GT(store.addMessage(c, 0, "user", "hi"), 0);
    EXPECT_EQ(store.activePath(c).size(), 1);
}

}  // namespace

int main(int argc, char** argv) {
    ::testing::InitGoogleMock(&argc, argv);
    QCoreApplication app(argc, argv);
    return RUN_ALL_TESTS();
}
