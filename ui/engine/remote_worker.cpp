#include "engine/remote_worker.h"

#include <QDateTime>
#include <QElapsedTimer>
#include <QLocale>
#include <QNetworkAccessManager>
#include <QNetworkReply>
#include <QNetworkRequest>
#include <QPointer>
#include <QTimer>
#include <QUrl>
#include <algorithm>
#include <limits>

#include "engine/openai_chat.h"
#include "engine/remote_model_ref.h"
#include "engine/sse_parser.h"

namespace wp::ui {

namespace {

// Tokens that came in less time than this (a reply sent in one burst, a proxy that buffers)
// give no meaningful rate: none is shown.
constexpr double kMinRateMs = 50;

constexpr int kMaxRefusals = 4;              // 400s answered by dropping optional fields
constexpr qsizetype kMaxErrorBody = 64 * 1024;
constexpr qsizetype kMaxModelList = 32 * 1024 * 1024;  // a big catalogue fits; a runaway body does not
constexpr int kChatIdleTimeoutMs = 300000;   // no byte for 5 minutes: the server is gone
constexpr int kListTimeoutMs = 15000;

// Retry-After: seconds, or an HTTP date; absent or unreadable: 1 s. At most two minutes.
int retryAfterSeconds(const QByteArray& header) {
    bool ok = false;
    int s = header.trimmed().toInt(&ok);
    if (!ok && !header.isEmpty()) {
        const QDateTime when = QLocale::c().toDateTime(QString::fromLatin1(header.trimmed()), "ddd, dd MMM yyyy HH:mm:ss 'GMT'");
        if (when.isValid()) {
            QDateTime utc = when;
            utc.setTimeSpec(Qt::UTC);  // the date is GMT
            s = static_cast<int>(QDateTime::currentDateTimeUtc().secsTo(utc));
            ok = true;
        }
    }
    return std::clamp(ok ? s : 1, 1, 120);
}

QString unreachableMessage(const QString& baseUrl, QNetworkReply* reply) {
    return QObject::tr("Cannot reach %1: %2").arg(baseUrl, reply->errorString());
}

QString keyMessage(int status, const QString& serverMessage, bool haveKey) {
    const QString why = haveKey ? QObject::tr("the API key is wrong or lacks access")
                                : QObject::tr("the server wants an API key and none is set for this endpoint");
    QString m = QObject::tr("The server refused the request (HTTP %1): %2.").arg(status).arg(why);
    if (!serverMessage.isEmpty()) m += QStringLiteral(" (%1)").arg(serverMessage);
    return m + QObject::tr(" Add the endpoint again with the right key (File \u2192 Add Endpoint\u2026).");
}

}  // namespace

struct RemoteWorker::Request {
    quint64 id = 0;
    bool listing = false;  // GET /models rather than a chat
    QString baseUrl;
    QString model;
    QList<ChatTurn> turns;
    GenerationSettings settings;
    QString key;
    ChatRequestExtras extras;
    int retries = 0;
    int refusals = 0;
    QPointer<QNetworkReply> reply;
    QTimer* retryTimer = nullptr;  // the countdown while waiting on a busy server
    int retryLeft = 0;
    QString retryWhy;
    bool cancelled = false;

    // The streamed reply.
    int status = 0;
    SseParser parser;
    QByteArray body;  // a non-200 answer, or the model list
    QString text;
    int count = 0;
    QElapsedTimer clock;
    QElapsedTimer sinceStats;
    double firstTokenMs = -1;
    int promptTokens = 0;
    QString finishReason;
    bool done = false;  // "data: [DONE]"
    QString streamError;
    bool overlong = false;      // the stream sent a line or event past SseParser::kMaxEventBytes
    qint64 listTooLarge = 0;    // the model list passed kMaxModelList: its size (as far as known)
};

RemoteWorker::RemoteWorker() {
    qRegisterMetaType<wp::ui::GenerationSettings>();
    qRegisterMetaType<wp::ui::ChatTurn>();
    qRegisterMetaType<QList<wp::ui::ChatTurn>>();
    qRegisterMetaType<wp::ui::TokenInfo>();
    qRegisterMetaType<wp::ui::ReplyStats>();
}

RemoteWorker::~RemoteWorker() {
    // The thread is ending: nothing is told any more, every connection closes.
    for (auto& [id, r] : requests_)
        if (r->reply) {
            r->reply->disconnect(this);
            r->reply->abort();
        }
}

QNetworkAccessManager* RemoteWorker::network() {
    if (network_ == nullptr) network_ = new QNetworkAccessManager(this);  // on this worker's thread
    return network_;
}

void RemoteWorker::cancel(quint64 requestId) {
    {
        std::lock_guard<std::mutex> lock(cancelMutex_);
        if (requestId == std::numeric_limits<quint64>::max()) cancelAll_ = true;
        else cancelled_.insert(requestId);
    }
    // The network objects belong to the worker's thread: the abort runs there.
    QMetaObject::invokeMethod(this, [this, requestId] { abortRequest(requestId); }, Qt::QueuedConnection);
}

bool RemoteWorker::takeCancelled(quint64 requestId) {
    std::lock_guard<std::mutex> lock(cancelMutex_);
    return cancelAll_ || cancelled_.remove(requestId);
}

void RemoteWorker::abortRequest(quint64 requestId) {
    std::vector<quint64> ids;
    if (requestId == std::numeric_limits<quint64>::max())
        for (auto& [id, r] : requests_) ids.push_back(id);
    else ids.push_back(requestId);
    for (quint64 id : ids) {
        auto it = requests_.find(id);
        if (it == requests_.end()) continue;
        Request& r = *it->second;
        {
            std::lock_guard<std::mutex> lock(cancelMutex_);
            cancelled_.remove(id);
        }
        r.cancelled = true;
        if (r.reply) r.reply->abort();  // finished() follows, and ends the request
        else finish(r, QStringLiteral("cancelled"));  // waiting to retry
    }
}

void RemoteWorker::listModels(quint64 requestId, const QString& baseUrl, const QString& apiKey) {
    auto r = std::make_unique<Request>();
    r->id = requestId;
    r->listing = true;
    r->baseUrl = baseUrl;
    r->key = apiKey;
    Request& ref = *r;
    requests_[requestId] = std::move(r);
    send(ref);
}

void RemoteWorker::generate(quint64 requestId, const QString& modelPath, const QList<ChatTurn>& conversation,
                            const GenerationSettings& settings, const QString& apiKey) {
    const auto ref = parseRemoteModelPath(modelPath);
    if (!ref) {
        emit error(requestId, tr("%1 is not a remote model.").arg(modelPath));
        return;
    }
    auto r = std::make_unique<Request>();
    r->id = requestId;
    r->baseUrl = ref->baseUrl;
    r->model = ref->model;
    r->turns = conversation;
    r->settings = settings;
    r->key = apiKey;
    Request& req = *r;
    requests_[requestId] = std::move(r);
    if (takeCancelled(requestId)) {  // stopped before it was sent
        finish(req, QStringLiteral("cancelled"));
        return;
    }
    send(req);
}

void RemoteWorker::send(Request& r) {
    const QString path = r.listing ? QStringLiteral("/models") : QStringLiteral("/chat/completions");
    QNetworkRequest request(QUrl(r.baseUrl + path));
    if (!r.key.isEmpty()) request.setRawHeader("Authorization", "Bearer " + r.key.toUtf8());
    request.setTransferTimeout(r.listing ? kListTimeoutMs : kChatIdleTimeoutMs);
    r.status = 0;
    r.body.clear();
    r.parser = SseParser();
    r.overlong = false;
    r.listTooLarge = 0;
    QNetworkReply* reply = nullptr;
    if (r.listing) {
        reply = network()->get(request);
    } else {
        request.setHeader(QNetworkRequest::ContentTypeHeader, QStringLiteral("application/json"));
        request.setRawHeader("Accept", "text/event-stream");
        reply = network()->post(request, chatRequestBody(r.model, r.turns, r.settings, r.extras));
        if (!r.clock.isValid()) {
            r.clock.start();
            r.sinceStats.start();
        }
    }
    r.reply = reply;
    const quint64 id = r.id;
    connect(reply, &QNetworkReply::readyRead, this, [this, id] {
        if (auto it = requests_.find(id); it != requests_.end()) onReadyRead(*it->second);
    });
    connect(reply, &QNetworkReply::finished, this, [this, id] {
        if (auto it = requests_.find(id); it != requests_.end()) onReplyFinished(*it->second);
    });
}

void RemoteWorker::onReadyRead(Request& r) {
    if (!r.reply) return;
    if (r.status == 0) r.status = r.reply->attribute(QNetworkRequest::HttpStatusCodeAttribute).toInt();
    const QByteArray bytes = r.reply->readAll();
    if (r.status == 200 && r.listing) {
        if (r.body.size() + bytes.size() > kMaxModelList) {
            // Too much to read: stopped here, and said so (not "not JSON" for a cut body).
            const qint64 announced = r.reply->header(QNetworkRequest::ContentLengthHeader).toLongLong();
            r.listTooLarge = std::max<qint64>(announced, r.body.size() + bytes.size());
            r.body.clear();
            if (!r.reply->isFinished()) r.reply->abort();  // finished() may run now: `r` is not touched after
            return;
        }
        r.body += bytes;
        return;
    }
    if (r.status != 200) {
        if (r.body.size() < kMaxErrorBody) r.body += bytes;  // an error's message is cut to this anyway
        return;
    }
    for (const SseEvent& e : r.parser.feed(bytes)) {
        handleEvent(r, e.event, e.data);
        if (!r.streamError.isEmpty() || r.cancelled) break;
    }
    r.overlong = r.parser.overflowed();
    // The server gave up on this reply, or sends what cannot be read: close it (when it is not
    // closed already). An abort may end the request at once (finished() runs now): nothing touches
    // `r` after it.
    if ((!r.streamError.isEmpty() || r.overlong) && r.reply && !r.reply->isFinished()) r.reply->abort();
}

void RemoteWorker::handleEvent(Request& r, const QByteArray& event, const QByteArray& data) {
    if (data.trimmed() == "[DONE]") {
        r.done = true;
        return;
    }
    if (event == "error") {  // llama.cpp's server's "error: {json}"
        r.streamError = errorMessage(data);
        return;
    }
    const StreamChunk chunk = parseStreamChunk(data);
    if (!chunk.error.isEmpty()) {
        r.streamError = chunk.error;
        return;
    }
    if (chunk.promptTokens >= 0) r.promptTokens = chunk.promptTokens;
    if (!chunk.finishReason.isEmpty()) r.finishReason = chunk.finishReason;
    for (const TokenInfo& t : chunk.tokens) {
        if (r.firstTokenMs < 0) r.firstTokenMs = static_cast<double>(r.clock.elapsed());
        ++r.count;
        r.text += t.text;
        emit tokenText(r.id, t.text, t);
    }
    if (r.sinceStats.elapsed() >= 1000 && r.count > 0) {
        ReplyStats live;
        live.promptTokens = r.promptTokens;
        live.generatedTokens = r.count;
        live.timeToFirstTokenMs = r.firstTokenMs;
        const double decodeMs = r.clock.elapsed() - r.firstTokenMs;
        live.tokensPerSecond = r.count > 1 && decodeMs >= kMinRateMs ? (r.count - 1) * 1000.0 / decodeMs : 0;
        emit stats(r.id, live);
        r.sinceStats.restart();
    }
}

void RemoteWorker::onReplyFinished(Request& r) {
    QNetworkReply* reply = r.reply;
    if (reply == nullptr) return;
    reply->deleteLater();
    if (r.status == 0) r.status = reply->attribute(QNetworkRequest::HttpStatusCodeAttribute).toInt();
    if (!r.cancelled && reply->error() != QNetworkReply::OperationCanceledError) onReadyRead(r);  // the last bytes
    r.reply = nullptr;
    if (r.cancelled || takeCancelled(r.id)) {
        r.cancelled = true;
        finish(r, QStringLiteral("cancelled"));
        return;
    }
    const int status = r.status;
    if (status == 0) {  // no HTTP answer: refused, unknown host, TLS, timeout
        fail(r, unreachableMessage(r.baseUrl, reply));
        return;
    }
    if (status == 200 && r.listing && r.listTooLarge > 0) {
        fail(r, tr("%1: the model list is too large (%2 MB; at most %3 MB is read).")
                    .arg(r.baseUrl)
                    .arg(static_cast<double>(r.listTooLarge) / (1024 * 1024), 0, 'f', 0)
                    .arg(kMaxModelList / (1024 * 1024)));
        return;
    }
    if (status == 200 && r.listing) {
        QString why;
        const QStringList models = parseModelList(r.body, &why);
        if (models.isEmpty()) fail(r, tr("%1: %2").arg(r.baseUrl, why));
        else {
            emit modelsListed(r.id, models);
            requests_.erase(r.id);
        }
        return;
    }
    if (status == 200) {
        if (r.overlong) {
            const QString why = tr("the server sent a line of more than %1 MB without ending it, so the stream was cut there")
                                    .arg(SseParser::kMaxEventBytes / (1024 * 1024));
            if (r.count > 0) finish(r, QStringLiteral("incomplete"), why);
            else fail(r, tr("The reply could not be read: %1.").arg(why));
        } else if (!r.streamError.isEmpty()) {
            const QString why = tr("the server reported an error in the middle of the reply: %1").arg(r.streamError);
            if (r.count > 0) finish(r, QStringLiteral("incomplete"), why);
            else fail(r, tr("The server reported an error: %1").arg(r.streamError));
        } else if (r.done || !r.finishReason.isEmpty()) {
            finish(r, r.finishReason.isEmpty() ? QStringLiteral("eos") : stopReasonFor(r.finishReason));
        } else {
            QString why = tr("the connection closed before the reply ended");
            if (reply->error() != QNetworkReply::NoError) why += QStringLiteral(" (%1)").arg(reply->errorString());
            if (r.count > 0) finish(r, QStringLiteral("incomplete"), why);
            else fail(r, tr("The server closed the connection before it sent a reply."));
        }
        return;
    }
    const QString message = errorMessage(r.body.left(kMaxErrorBody));
    const bool busy = status == 429 || (status == 503 && reply->hasRawHeader("Retry-After"));
    if (busy && !r.listing) {
        if (r.retries < kMaxRetries) waitAndRetry(r, retryAfterSeconds(reply->rawHeader("Retry-After")), message);
        else fail(r, tr("The server is busy (HTTP %1) and still was after %n retries: %2", nullptr, kMaxRetries)
                         .arg(status).arg(message));
        return;
    }
    if (status == 401 || status == 403) {
        fail(r, keyMessage(status, message, !r.key.isEmpty()));
    } else if (status == 400 && !r.listing && r.refusals < kMaxRefusals && dropRefusedExtras(message, r.extras)) {
        ++r.refusals;  // sent again without what it refused
        send(r);
    } else if (status == 404) {
        fail(r, r.listing ? tr("%1 has no /models (HTTP 404): is it an OpenAI-compatible server's address?").arg(r.baseUrl)
                          : tr("The server does not know the model %1 (HTTP 404): %2").arg(r.model, message));
    } else if (status >= 500) {
        fail(r, tr("The server failed (HTTP %1): %2").arg(status).arg(message));
    } else {
        fail(r, tr("The server rejected the request (HTTP %1): %2").arg(status).arg(message));
    }
}

void RemoteWorker::waitAndRetry(Request& r, int seconds, const QString& why) {
    ++r.retries;
    r.retryLeft = seconds;
    r.retryWhy = why;
    emit retrying(r.id, r.retryLeft, r.retries, kMaxRetries, why);
    if (r.retryTimer == nullptr) {
        r.retryTimer = new QTimer(this);
        r.retryTimer->setInterval(1000);
        const quint64 id = r.id;
        connect(r.retryTimer, &QTimer::timeout, this, [this, id] {
            auto it = requests_.find(id);
            if (it == requests_.end()) return;
            Request& q = *it->second;
            if (--q.retryLeft > 0) {
                emit retrying(id, q.retryLeft, q.retries, kMaxRetries, q.retryWhy);
                return;
            }
            q.retryTimer->stop();
            if (takeCancelled(id)) finish(q, QStringLiteral("cancelled"));
            else send(q);
        });
    }
    r.retryTimer->start();
}

void RemoteWorker::finish(Request& r, const QString& stopReason, const QString& incomplete) {
    ReplyStats s;
    s.promptTokens = r.promptTokens;
    s.generatedTokens = r.count;
    s.timeToFirstTokenMs = r.firstTokenMs < 0 ? 0 : r.firstTokenMs;
    const double decodeMs = r.clock.isValid() ? r.clock.elapsed() - s.timeToFirstTokenMs : 0;
    s.tokensPerSecond = r.count > 1 && decodeMs >= kMinRateMs ? (r.count - 1) * 1000.0 / decodeMs : 0;
    s.stopReason = stopReason;
    s.incomplete = incomplete;
    s.final = true;
    const quint64 id = r.id;
    const QString text = r.text;
    if (r.retryTimer) r.retryTimer->deleteLater();
    requests_.erase(id);  // `r` is gone from here on
    emit finished(id, text, s);
}

void RemoteWorker::fail(Request& r, const QString& message) {
    const quint64 id = r.id;
    if (r.retryTimer) r.retryTimer->deleteLater();
    requests_.erase(id);
    emit error(id, message);
}

}  // namespace wp::ui
