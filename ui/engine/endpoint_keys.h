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

namespace wp::ui {

class EndpointKeys : public QObject {
    Q_OBJECT
public:
    explicit EndpointKeys(QObject* parent = nullptr);

    // The key known now for `endpoint` (empty: none, or not read yet).
    QString key(const QString& endpoint) const { return keys_.value(endpoint); }
    // Whether that key is only in memory (the secret store failed): lost when the app quits.
    bool sessionOnly(const QString& endpoint) const { return sessionOnly_.contains(endpoint); }

    // Reads the stored key of `endpoint`; emits loaded (also when there is none or the store fails).
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
    QHash<QString, QString> keys_;
    QSet<QString> sessionOnly_;
};

}  // namespace wp::ui
