// The remote backend: replies from an OpenAI-compatible server (vLLM, llama.cpp's llama-server,
// `windowpane-cli serve`, ...) streamed over QNetworkAccessManager. Lives on its own QThread
// (RemoteThread), like InferenceWorker, and sends the same reply signals (tokenText, stats,
// finished, error) tagged with the request id, so the chat and compare panes stream from a remote
// model as from a local one. Several requests may run at once (every pane's); each is its own.
//
// Errors: an unreachable server, 401/403 (the key), 404, 5xx and a 400 that names no optional
// field end the request with `error`. A 400 naming top_k, min_p, logprobs or stream_options is
// sent again without them. 429 (and 503 with Retry-After) waits as Retry-After says, announced by
// `retrying` once per second, up to kMaxRetries times. A stream cut in the middle (closed before
// "[DONE]" or a finish_reason) or an error object inside it ends with `finished`, stopReason
// "incomplete" and the reason in ReplyStats::incomplete, keeping the text so far.
#pragma once

#include <QObject>
#include <QSet>
#include <QString>
#include <map>
#include <memory>
#include <mutex>

#include "engine/types.h"

class QNetworkAccessManager;
class QNetworkReply;

namespace wp::ui {

class RemoteWorker : public QObject {
    Q_OBJECT
public:
    static constexpr int kMaxRetries = 3;  // waits on 429 / 503 per request

    RemoteWorker();
    ~RemoteWorker() override;

    // Thread-safe: request `requestId` stops (its connection is aborted; a reply in progress
    // ends with `finished`, stopReason "cancelled", the text so far). Only that one, as requests
    // run side by side; the largest id stops every request (the thread is ending).
    void cancel(quint64 requestId);

public slots:
    // GET {baseUrl}/models: emits modelsListed or error (unreachable, 401, not JSON, no models).
    void listModels(quint64 requestId, const QString& baseUrl, const QString& apiKey);
    // POST {base}/chat/completions, streamed, for the remote model `modelPath`
    // (engine/remote_model_ref.h): emits tokenText per token, stats at most once a second, then
    // finished or error; `retrying` while it waits on a busy server.
    void generate(quint64 requestId, const QString& modelPath, const QList<wp::ui::ChatTurn>& conversation,
                  const wp::ui::GenerationSettings& settings, const QString& apiKey);
    // Ends request `requestId` with `message` without sending anything (its key could not be read).
    void reject(quint64 requestId, const QString& message) { emit error(requestId, message); }

signals:
    void modelsListed(quint64 requestId, const QStringList& models);
    void tokenText(quint64 requestId, const QString& text, const wp::ui::TokenInfo& info);
    void stats(quint64 requestId, const wp::ui::ReplyStats& stats);
    void finished(quint64 requestId, const QString& text, const wp::ui::ReplyStats& stats);
    // The server is busy: the request is sent again in `seconds` (counting down, once a second),
    // retry `attempt` of `maxAttempts`; `why` is the server's message.
    void retrying(quint64 requestId, int seconds, int attempt, int maxAttempts, const QString& why);
    void error(quint64 requestId, const QString& message);

private:
    struct Request;
    QNetworkAccessManager* network();
    bool takeCancelled(quint64 requestId);
    void send(Request& r);
    void onReadyRead(Request& r);
    void onReplyFinished(Request& r);
    void handleEvent(Request& r, const QByteArray& event, const QByteArray& data);
    void waitAndRetry(Request& r, int seconds, const QString& why);
    void finish(Request& r, const QString& stopReason, const QString& incomplete = {});
    void fail(Request& r, const QString& message);
    void abortRequest(quint64 requestId);

    QNetworkAccessManager* network_ = nullptr;  // made on the worker's thread, at its first use
    std::map<quint64, std::unique_ptr<Request>> requests_;
    std::mutex cancelMutex_;
    QSet<quint64> cancelled_;  // under cancelMutex_: cancelled before (or while) they ran
    bool cancelAll_ = false;   // under cancelMutex_
};

}  // namespace wp::ui
