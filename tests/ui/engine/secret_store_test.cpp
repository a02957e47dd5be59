// EndpointKeys against a real Secret Service: gnome-keyring-daemon on a private D-Bus session with a
// throwaway keyring (tests/ui/with_secret_service.sh starts both and sets WP_SECRET_SERVICE). A key
// written is persistent, not kept for the session only; the store holds it where another client
// (secret-tool) finds it; a fresh EndpointKeys reads it back, as the app does after a restart; a
// second endpoint's key is its own; remove() takes it out of the store. Without the wrapper the
// test skips.
#include <gtest/gtest.h>

#include <QCoreApplication>
#include <QElapsedTimer>
#include <QProcess>
#include <QStringList>
#include <functional>

#include "engine/endpoint_keys.h"

namespace {

using wp::ui::EndpointKeys;

bool waitFor(const std::function<bool()>& done, int ms = 20000) {
    QElapsedTimer t;
    t.start();
    while (!done() && t.elapsed() < ms) QCoreApplication::processEvents(QEventLoop::AllEvents, 20);
    return done();
}

// What another Secret Service client sees: every item of the service (QtKeychain files an entry
// under the attributes server = service, user = entry), as secret-tool prints them.
QString itemsOfService(const QString& service) {
    QProcess p;
    p.start(QStringLiteral("secret-tool"), {QStringLiteral("search"), QStringLiteral("--all"), QStringLiteral("--unlock"),
                                            QStringLiteral("server"), service});
    if (!p.waitForFinished(10000)) return QStringLiteral("(secret-tool did not finish)");
    return QString::fromUtf8(p.readAllStandardOutput() + p.readAllStandardError());
}

// Stores `key` and waits for the store's answer; returns whether it was persistent.
bool storeKey(EndpointKeys& keys, const QString& endpoint, const QString& key, QString* message) {
    bool answered = false, persistent = false;
    auto c = QObject::connect(&keys, &EndpointKeys::stored, [&](const QString& e, bool p, const QString& m) {
        if (e != endpoint) return;
        answered = true;
        persistent = p;
        *message = m;
    });
    keys.store(endpoint, key);
    const bool ok = waitFor([&] { return answered; });
    QObject::disconnect(c);
    return ok && persistent;
}

// Reads the stored key with a fresh instance and waits for it.
QString readKey(const QString& endpoint, QString* error) {
    EndpointKeys keys;
    bool loaded = false;
    QObject::connect(&keys, &EndpointKeys::loaded, [&](const QString& e) { loaded = loaded || e == endpoint; });
    keys.load(endpoint);
    if (!waitFor([&] { return loaded; })) return QStringLiteral("(no answer)");
    *error = keys.readError(endpoint);
    return keys.key(endpoint);
}

TEST(SecretStore, KeyPersistsInTheRealStoreAndIsRemoved) {
    if (qgetenv("WP_SECRET_SERVICE") != "1") GTEST_SKIP() << "run by tests/ui/with_secret_service.sh";
    const QString service = QStringLiteral("windowpane-test-%1").arg(QCoreApplication::applicationPid());
    qputenv("WP_KEYCHAIN_SERVICE", service.toUtf8());
    const QString a = QStringLiteral("http://gpu-box:8000/v1"), b = QStringLiteral("https://api.example.com/v1");
    const QString keyA = QStringLiteral("sk-real-store-9d2e"), keyB = QStringLiteral("sk-other-endpoint-41aa");
    {
        EndpointKeys keys;
        QString message;
        ASSERT_TRUE(storeKey(keys, a, keyA, &message)) << "not persistent: " << message.toStdString();
        ASSERT_TRUE(storeKey(keys, b, keyB, &message)) << "not persistent: " << message.toStdString();
        EXPECT_FALSE(keys.sessionOnly(a));
    }
    // In the store, as another client sees it.
    const QString items = itemsOfService(service);
    EXPECT_TRUE(items.contains(keyA)) << items.toStdString();
    EXPECT_TRUE(items.contains(keyB)) << items.toStdString();

    // After a "restart": each endpoint's own key.
    QString error;
    EXPECT_EQ(readKey(a, &error), keyA);
    EXPECT_TRUE(error.isEmpty()) << error.toStdString();
    EXPECT_EQ(readKey(b, &error), keyB);

    // Removed from the store: gone for a fresh reader and for secret-tool; the other stays.
    {
        EndpointKeys keys;
        keys.remove(a);
        ASSERT_TRUE(waitFor([&] { return !itemsOfService(service).contains(keyA); }, 10000)) << itemsOfService(service).toStdString();
    }
    EXPECT_EQ(readKey(a, &error), QString());
    EXPECT_TRUE(error.isEmpty()) << error.toStdString();
    EXPECT_EQ(readKey(b, &error), keyB);
    EndpointKeys().remove(b);
    EXPECT_TRUE(waitFor([&] { return !itemsOfService(service).contains(keyB); }, 10000));
}

}  // namespace

int main(int argc, char** argv) {
    QCoreApplication app(argc, argv);
    testing::InitGoogleTest(&argc, argv);
    return RUN_ALL_TESTS();
}
