// The API keys of remote endpoints, kept in the platform's secret store through QtKeychain (the
// Secret Service or KWallet on Linux, the Keychain on macOS, the Credential Store on Windows), one
// entry per endpoint URL under the service "windowpane" (WP_KEYCHAIN_SERVICE overrides it, for
// tests). Never in the settings file: where no secret store answers (no session bus, CI, offscreen
// tests) a key is kept in memory for this session only, and `stored` says so.
// Threads: GUI thread; the store's calls are asynchronous (signals when they end).
#pragma once

#include <QHash>
#include <QObject>
#include <QSet>
#include <QString>
#include <functional>
#include <memory>

namespace wp::ui {

// The secret store's three calls, each answering later through its callback (on the GUI thread).
// The default is QtKeychain's; tests put a stand-in in its place.
class KeyStore {
public:
    // found: an entry exists (key is it). error: the store refused or failed (locked, denied), as
    // opposed to having no entry or no store at all, which are no key.
    using ReadDone = std::function<void(bool found, const QString& key, const QString& error)>;
    using WriteDone = std::function<void(bool ok, const QString& error)>;
    virtual ~KeyStore() = default;
    virtual void read(const QString& service, const QString& entry, ReadDone done) = 0;
    virtual void write(const QString& service, const QString& entry, const QString& key, WriteDone done) = 0;
    virtual void remove(const QString& service, const QString& entry) = 0;
};

class EndpointKeys : public QObject {
    Q_OBJECT
public:
    // `store`: null for the platform's secret store.
    explicit EndpointKeys(std::shared_ptr<KeyStore> store = nullptr, QObject* parent = nullptr);

    // The key known now for `endpoint` (empty: none, or not read yet: see pending).
    QString key(const QString& endpoint) const { return keys_.value(endpoint); }
    // Whether the stored key of `endpoint` is still being read (load called, no answer yet).
    bool pending(const QString& endpoint) const { return reading_.contains(endpoint); }
    // Why the last read of the endpoint's key failed (empty: it did not): the store refused, or did
    // not answer within the read timeout (a keyring waiting to be unlocked).
    QString readError(const QString& endpoint) const { return readErrors_.value(endpoint); }
    // Whether that key is only in memory (the secret store failed): lost when the app quits.
    bool sessionOnly(const QString& endpoint) const { return sessionOnly_.contains(endpoint); }

    // Reads the stored key of `endpoint`; emits loaded (also when there is none or the store fails,
    // and when store() gives a key before the read ends). A read outlived by remove() is ignored.
    void load(const QString& endpoint);
    // Keeps `key` for `endpoint` (an empty key removes it); emits stored with whether it is in the
    // secret store (persistent) and, when not, the store's error.
    void store(const QString& endpoint, const QString& key);
    void remove(const QString& endpoint);

signals:
    void loaded(const QString& endpoint);
    void stored(const QString& endpoint, bool persistent, const QString& message);

private:
    QString service_;
    std::shared_ptr<KeyStore> store_;
    QHash<QString, QString> keys_;
    QSet<QString> sessionOnly_;
    QHash<QString, quint64> reading_;  // the endpoints being read, each with its read's number
    QHash<QString, QString> readErrors_;
    int readTimeoutMs_ = 20000;  // WP_KEY_READ_TIMEOUT_MS overrides it, for tests
    quint64 lastRead_ = 0;
};

}  // namespace wp::ui
