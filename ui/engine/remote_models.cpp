#include "engine/remote_models.h"

#include "engine/remote_model_ref.h"

namespace wp::ui {

RemoteModels::RemoteModels(AppSettings& settings, QObject* parent)
    : QObject(parent), settings_(settings), endpoints_(settings.remoteEndpoints()) {
    for (const RemoteEndpoint& e : endpoints_) keys_.load(e.url);
    connect(&keys_, &EndpointKeys::stored, this, &RemoteModels::keyStored);
    RemoteWorker* w = thread_.worker();
    connect(w, &RemoteWorker::modelsListed, this, [this](quint64 id, const QStringList& models) {
        if (listing_.remove(id)) emit modelsListed(id, models);
    });
    connect(w, &RemoteWorker::error, this, [this](quint64 id, const QString& message) {
        if (listing_.remove(id)) emit listFailed(id, message);
    });
}

QStringList RemoteModels::modelPaths() const {
    QStringList out;
    for (const RemoteEndpoint& e : endpoints_)
        for (const QString& m : e.models) out << remoteModelPath(e.url, m);
    return out;
}

bool RemoteModels::contains(const QString& modelPath) const {
    const auto ref = parseRemoteModelPath(modelPath);
    if (!ref) return false;
    for (const RemoteEndpoint& e : endpoints_)
        if (e.url == ref->baseUrl && e.models.contains(ref->model)) return true;
    return false;
}

void RemoteModels::addEndpoint(const QString& url, const QStringList& models, const QString& key) {
    bool replaced = false;
    for (RemoteEndpoint& e : endpoints_)
        if (e.url == url) {
            e.models = models;
            replaced = true;
        }
    if (!replaced) endpoints_.push_back({url, models});
    settings_.setRemoteEndpoints(endpoints_);
    keys_.store(url, key);
    emit changed();
}

void RemoteModels::removeEndpoint(const QString& url) {
    endpoints_.removeIf([&](const RemoteEndpoint& e) { return e.url == url; });
    settings_.setRemoteEndpoints(endpoints_);
    keys_.remove(url);
    emit changed();
}

quint64 RemoteModels::listModels(const QString& url, const QString& key) {
    const quint64 id = thread_.nextRequestId();
    listing_.insert(id);
    thread_.post(&RemoteWorker::listModels, id, url, key);
    return id;
}

}  // namespace wp::ui
