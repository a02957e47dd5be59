#include "engine/remote_models.h"

#include "engine/remote_model_ref.h"

namespace wp::ui {

RemoteModels::RemoteModels(AppSettings& settings, std::shared_ptr<KeyStore> keyStore, QObject* parent)
    : QObject(parent), settings_(settings), keys_(std::move(keyStore)), endpoints_(settings.remoteEndpoints()) {
    connect(&keys_, &EndpointKeys::stored, this, &RemoteModels::keyStored);
    connect(&keys_, &EndpointKeys::loaded, this, [this](const QString& url) {
        sendWaiting(url);
        emit keyLoaded(url);
    });
    for (const RemoteEndpoint& e : endpoints_) keys_.load(e.url);
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
    // Requests waiting for its key end unsent: the user has just said not to use it.
    waiting_.removeIf([&](const Waiting& w) {
        if (w.endpoint != url) return false;
        thread_.post(&RemoteWorker::reject, w.id, tr("%1 was removed; nothing was sent.").arg(url));
        return true;
    });
    emit keyLoaded(url);
    emit changed();
}

void RemoteModels::generate(quint64 requestId, const QString& modelPath, const QList<ChatTurn>& conversation,
                            const GenerationSettings& settings) {
    const auto ref = parseRemoteModelPath(modelPath);
    // The last read failed and no key came since: read again (the keyring may be open now).
    if (ref && !keys_.readError(ref->baseUrl).isEmpty() && keys_.key(ref->baseUrl).isEmpty() &&
        !keys_.pending(ref->baseUrl))
        keys_.load(ref->baseUrl);
    if (ref && keys_.pending(ref->baseUrl)) {
        waiting_.push_back({requestId, ref->baseUrl, modelPath, conversation, settings});
        return;
    }
    thread_.post(&RemoteWorker::generate, requestId, modelPath, conversation, settings,
                 ref ? keys_.key(ref->baseUrl) : QString());
}

void RemoteModels::cancel(quint64 requestId) {
    thread_.cancel(requestId);
    for (qsizetype i = 0; i < waiting_.size(); ++i)
        if (waiting_[i].id == requestId) {
            // Handed to the worker now, already cancelled: it ends it ("cancelled") without sending.
            const Waiting w = waiting_.takeAt(i);
            thread_.post(&RemoteWorker::generate, w.id, w.modelPath, w.turns, w.settings, QString());
            return;
        }
}

void RemoteModels::sendWaiting(const QString& endpoint) {
    QList<Waiting> now;
    waiting_.removeIf([&](const Waiting& w) {
        if (w.endpoint != endpoint) return false;
        now.push_back(w);
        return true;
    });
    const QString key = keys_.key(endpoint), error = keys_.readError(endpoint);
    for (const Waiting& w : now) {
        if (key.isEmpty() && !error.isEmpty())
            thread_.post(&RemoteWorker::reject, w.id,
                         tr("Could not read the key of %1 from the secret store: %2. Nothing was sent.").arg(endpoint, error));
        else
            thread_.post(&RemoteWorker::generate, w.id, w.modelPath, w.turns, w.settings, key);
    }
}

quint64 RemoteModels::listModels(const QString& url, const QString& key) {
    const quint64 id = thread_.nextRequestId();
    listing_.insert(id);
    thread_.post(&RemoteWorker::listModels, id, url, key);
    return id;
}

}  // namespace wp::ui
