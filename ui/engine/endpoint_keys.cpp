#include "engine/endpoint_keys.h"

#include <QPointer>
#include <QTimer>
#include <qt6keychain/keychain.h>

namespace wp::ui {

namespace {

QString entryName(const QString& endpoint) { return QStringLiteral("remote-endpoint ") + endpoint; }

class QtKeychainStore : public KeyStore {
public:
    void read(const QString& service, const QString& entry, ReadDone done) override {
        auto* job = new QKeychain::ReadPasswordJob(service);  // deletes itself when it ends
        job->setKey(entry);
        job->setInsecureFallback(false);  // never a plain file
        QObject::connect(job, &QKeychain::Job::finished, [done](QKeychain::Job* j) {
            const QKeychain::Error e = j->error();
            const bool denied = e == QKeychain::AccessDenied || e == QKeychain::AccessDeniedByUser;
            done(e == QKeychain::NoError, e == QKeychain::NoError ? static_cast<QKeychain::ReadPasswordJob*>(j)->textData() : QString(),
                 denied ? j->errorString() : QString());
        });
        job->start();
    }
    void write(const QString& service, const QString& entry, const QString& key, WriteDone done) override {
        auto* job = new QKeychain::WritePasswordJob(service);
        job->setKey(entry);
        job->setTextData(key);
        job->setInsecureFallback(false);
        QObject::connect(job, &QKeychain::Job::finished, [done](QKeychain::Job* j) {
            const bool ok = j->error() == QKeychain::NoError;
            done(ok, ok ? QString() : j->errorString());
        });
        job->start();
    }
    void remove(const QString& service, const QString& entry) override {
        auto* job = new QKeychain::DeletePasswordJob(service);
        job->setKey(entry);
        job->setInsecureFallback(false);
        job->start();  // nothing to tell: an entry that was never stored is gone too
    }
};

}  // namespace

EndpointKeys::EndpointKeys(std::shared_ptr<KeyStore> store, QObject* parent)
    : QObject(parent), store_(store ? std::move(store) : std::make_shared<QtKeychainStore>()) {
    service_ = qEnvironmentVariable("WP_KEYCHAIN_SERVICE", QStringLiteral("windowpane"));
    bool ok = false;
    const int timeout = qEnvironmentVariableIntValue("WP_KEY_READ_TIMEOUT_MS", &ok);
    if (ok && timeout > 0) readTimeoutMs_ = timeout;
}

void EndpointKeys::load(const QString& endpoint) {
    const quint64 read = ++lastRead_;
    reading_.insert(endpoint, read);
    readErrors_.remove(endpoint);
    QPointer<EndpointKeys> self(this);
    store_->read(service_, entryName(endpoint), [self, endpoint, read](bool found, const QString& key, const QString& error) {
        // Gone, removed meanwhile, given a key this session (which wins) or timed out: stale.
        if (!self || self->reading_.value(endpoint) != read) return;
        self->reading_.remove(endpoint);
        if (found && !self->keys_.contains(endpoint)) self->keys_.insert(endpoint, key);
        if (!error.isEmpty()) self->readErrors_.insert(endpoint, error);
        emit self->loaded(endpoint);
    });
    // A store that never answers (a keyring's unlock prompt left open) must not hold requests for
    // ever; its late answer is dropped. The job itself is left alone: backends call back into it.
    QTimer::singleShot(readTimeoutMs_, this, [this, endpoint, read] {
        if (reading_.value(endpoint) != read) return;
        reading_.remove(endpoint);
        readErrors_.insert(endpoint, tr("the secret store did not answer within %1 s (is it locked?)").arg(readTimeoutMs_ / 1000.0));
        emit loaded(endpoint);
    });
}

void EndpointKeys::store(const QString& endpoint, const QString& key) {
    const bool wasReading = reading_.remove(endpoint) > 0;
    readErrors_.remove(endpoint);
    if (key.isEmpty()) {
        remove(endpoint);
        emit stored(endpoint, true, QString());
        if (wasReading) emit loaded(endpoint);
        return;
    }
    keys_.insert(endpoint, key);  // usable at once, whatever the store says
    sessionOnly_.insert(endpoint);
    if (wasReading) emit loaded(endpoint);  // a request waiting on the read goes with this key
    QPointer<EndpointKeys> self(this);
    store_->write(service_, entryName(endpoint), key, [self, endpoint](bool ok, const QString& error) {
        if (!self) return;
        if (ok) self->sessionOnly_.remove(endpoint);
        emit self->stored(endpoint, ok, error);
    });
}

void EndpointKeys::remove(const QString& endpoint) {
    keys_.remove(endpoint);
    sessionOnly_.remove(endpoint);
    reading_.remove(endpoint);  // its read's answer, when it comes, is dropped
    readErrors_.remove(endpoint);
    store_->remove(service_, entryName(endpoint));
}

}  // namespace wp::ui
