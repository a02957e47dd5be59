// How a model on an OpenAI-compatible server is named inside the app: one string, like a local
// model's path, so that the chat, the store, the library and the compare pickers carry it the same
// way: "remote:<base URL ending in /v1>#<model id>". The base URL never holds a '#'.
#pragma once

#include <QString>
#include <optional>

#include "engine/types.h"

namespace wp::ui {

struct RemoteModelRef {
    QString baseUrl;  // normalised: scheme, host, port, path ending in /v1; no trailing slash
    QString model;    // the id the server lists in GET /v1/models
};

QString remoteModelPath(const QString& baseUrl, const QString& model);
bool isRemoteModelPath(const QString& path);
std::optional<RemoteModelRef> parseRemoteModelPath(const QString& path);

// What the user typed ("http://127.0.0.1:8080", "https://host/v1/", "localhost:8080") as the /v1
// base URL ("http://127.0.0.1:8080/v1"); empty with `error` set when it is not an http(s) URL.
QString normalizeEndpointUrl(const QString& input, QString* error = nullptr);

// "model-id @ host:port": what pickers and titles show.
QString remoteModelLabel(const RemoteModelRef& ref);

// The card of a remote model: its name, the endpoint, and why the local-only views have nothing.
ModelCard remoteModelCard(const RemoteModelRef& ref);

// Why the local-only views (attention, logit lens, head summary, divergence, classify) have
// nothing for a remote model, in one sentence for a pane or a status line.
QString remoteViewUnavailable(const QString& modelName);

}  // namespace wp::ui
