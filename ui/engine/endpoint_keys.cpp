#include "engine/endpoint_keys.h"

#include <qt6keychain/keychain.h>

namespace wp::ui {

namespace {
QString entryName(const QString& endpoint) { return QStringLiteral("remote-endpoint ") + endpoint; }
}  // namespace

EndpointKeys::EndpointKeys(QObject* parent) : QObject(parent) {
    service_ = qEnvironmentVariable("WP_KEYCHAIN_SERVICE", QStringLiteral("windowpane"));
}

void EndpointKeys::load(const QString& endpoint) {
    auto* job = new QKeychain::ReadPasswordJob(service_, this);
    job->setKey(entryName(endpoint));
    job->setInsecureFallback(false);  // never a plain file
    connect(job, &QKeychain::Job::finished, this, [this, endpoint](QKeychain::Job* j) {
        // A key given this session (and kept in memory) wins over a stored one read late.
        if (j->error() == QKeychain::NoError && !keys_.contains(endpoint))
            keys_.insert(endpoint, static_cast<QKeychain::ReadPasswordJob*>(j)->textData());
        emit loaded(endpoint);
    });
    job->start();
}

void EndpointKeys::store(const QString& endpoint, const QString& key) {
    if (key.isEmpty()) {
        remove(endpoint);
        emit stored(endpoint, true, QString());
        return;
    }
    keys_.insert(endpoint, key);  // usable at once, whatever the store says
    sessionOnly_.insert(endpoint);
    auto* job = new QKeychain::WritePasswordJob(service_, this);
    job->setKey(entryName(endpoint));
    job->setTextData(key);
    job->setInsecureFallback(false);
    connect(job, &QKeychain::Job::finished, this, [this, endpoint](QKeychain::Job* j) {
        const bool ok = j->error() == QKeychain::NoError;
        if (ok) sessionOnly_.remove(endpoint);
        emit stored(endpoint, ok, ok ? QString() : j->errorString());
    });
    job->start();
}

void EndpointKeys::remove(const QString& endpoint) {
    keys_.remove(endpoint);
    sessionOnly_.remove(endpoint);
    auto* job = new QKeychain::DeletePasswordJob(service_, this);
    job->setKey(entryName(endpoint));
    job->setInsecureFallback(false);
    job->start();  // nothing to tell: an entry that was never stored is gone too
}

}  // namespace wp::ui
