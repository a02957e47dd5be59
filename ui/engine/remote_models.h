// The remote endpoints the user added and their models, for every part of the window: the model
// library lists them, the compare pickers offer them, the chat and compare panes send their
// requests through its RemoteThread with the endpoint's key. Endpoints (URL and model ids) are kept
// in AppSettings; keys in EndpointKeys (the secret store), never in settings. GUI thread only.
#pragma once

#include <QObject>
#include <QSet>
#include <QStringList>

#include "app_settings.h"
#include "engine/endpoint_keys.h"
#include "engine/remote_thread.h"

namespace wp::ui {

class RemoteModels : public QObject {
    Q_OBJECT
public:
    // `keyStore`: null for the platform's secret store (tests give a stand-in).
    explicit RemoteModels(AppSettings& settings, std::shared_ptr<KeyStore> keyStore = nullptr,
                          QObject* parent = nullptr);

    RemoteThread& thread() { return thread_; }
    const QList<RemoteEndpoint>& endpoints() const { return endpoints_; }
    // Every remote model as a model path (engine/remote_model_ref.h), endpoint by endpoint.
    QStringList modelPaths() const;
    bool contains(const QString& modelPath) const;
    QString key(const QString& endpoint) const { return keys_.key(endpoint); }
    bool keySessionOnly(const QString& endpoint) const { return keys_.sessionOnly(endpoint); }
    // Whether the endpoint's key is still being read from the secret store (a request waits for it).
    bool keyPending(const QString& endpoint) const { return keys_.pending(endpoint); }

    // Sends the chat request `requestId` (an id of thread()) for the remote model `modelPath` with
    // its endpoint's key: at once, or, while that key is being read, when the read ends; never
    // without the key while it is pending. When the read failed (refused, or no answer in time) the
    // request ends with that error, unsent, and the next one reads again. Results come from
    // thread()'s worker as for any request.
    void generate(quint64 requestId, const QString& modelPath, const QList<wp::ui::ChatTurn>& conversation,
                  const wp::ui::GenerationSettings& settings);
    // Stops that request, also one still waiting for its key (it ends "cancelled", unsent).
    void cancel(quint64 requestId);

    // Adds `url` with `models` (or replaces the endpoint with that URL) and keeps `key` in the
    // secret store (emits keyStored; an empty key deletes a stored one).
    void addEndpoint(const QString& url, const QStringList& models, const QString& key);
    // Forgets the endpoint and deletes its key; requests waiting for it end unsent.
    void removeEndpoint(const QString& url);
    // Asks the server at `url` for its models: modelsListed or listFailed with the returned id.
    quint64 listModels(const QString& url, const QString& key);

signals:
    void changed();  // endpoints added or removed
    void modelsListed(quint64 requestId, const QStringList& models);
    void listFailed(quint64 requestId, const QString& message);
    void keyStored(const QString& url, bool persistent, const QString& message);
    void keyLoaded(const QString& url);  // its read from the secret store ended

private:
    AppSettings& settings_;
    RemoteThread thread_{QStringLiteral("remote")};
    EndpointKeys keys_;
    QList<RemoteEndpoint> endpoints_;
    QSet<quint64> listing_;  // this object's listModels requests
    struct Waiting {         // a chat request held until its endpoint's key is read
        quint64 id = 0;
        QString endpoint, modelPath;
        QList<ChatTurn> turns;
        GenerationSettings settings;
    };
    QList<Waiting> waiting_;
    void sendWaiting(const QString& endpoint);
};

}  // namespace wp::ui
