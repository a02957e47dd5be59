#include "engine/openai_chat.h"

#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QObject>
#include <cmath>

namespace wp::ui {

QByteArray chatRequestBody(const QString& model, const QList<ChatTurn>& turns, const GenerationSettings& s,
                           const ChatRequestExtras& extras) {
    QJsonArray messages;
    for (const ChatTurn& t : turns) messages.append(QJsonObject{{"role", t.role}, {"content", t.content}});
    QJsonObject body{{"model", model}, {"messages", messages}, {"stream", true}, {"max_tokens", s.maxNewTokens}};
    // Greedy is temperature 0 on every OpenAI-compatible server; the other knobs then do nothing.
    body.insert("temperature", s.greedy ? 0.0 : s.temperature);
    if (!s.greedy) body.insert("top_p", s.topP);
    if (!s.greedy && extras.topK && s.topK > 0) body.insert("top_k", s.topK);
    if (!s.greedy && extras.minP && s.minP > 0) body.insert("min_p", s.minP);
    if (s.seed >= 0) body.insert("seed", static_cast<double>(s.seed));
    if (extras.logprobs) {
        body.insert("logprobs", true);
        body.insert("top_logprobs", 5);
    }
    if (extras.streamOptions) body.insert("stream_options", QJsonObject{{"include_usage", true}});
    return QJsonDocument(body).toJson(QJsonDocument::Compact);
}

bool dropRefusedExtras(const QString& message, ChatRequestExtras& extras) {
    const QString m = message.toLower();
    bool dropped = false;
    auto drop = [&](bool& on, std::initializer_list<const char*> names) {
        for (const char* n : names)
            if (on && m.contains(QLatin1String(n))) {
                on = false;
                dropped = true;
            }
    };
    drop(extras.topK, {"top_k", "top-k", "topk"});
    drop(extras.minP, {"min_p", "min-p", "minp"});
    drop(extras.logprobs, {"logprobs", "top_logprobs"});
    drop(extras.streamOptions, {"stream_options", "include_usage"});
    return dropped;
}

namespace {

float probabilityOf(const QJsonValue& logprob) {
    // vLLM clamps -inf to -9999, llama.cpp's server to the lowest float: both are probability 0.
    return logprob.isDouble() ? static_cast<float>(std::exp(logprob.toDouble())) : -1.0f;
}

TokenInfo tokenFrom(const QJsonObject& entry) {
    TokenInfo t;
    t.text = entry.value("token").toString();
    t.id = entry.value("id").toInt(-1);  // llama.cpp's server sends ids, vLLM does not
    t.probability = probabilityOf(entry.value("logprob"));
    for (const QJsonValue& v : entry.value("top_logprobs").toArray()) {
        const QJsonObject alt = v.toObject();
        t.top.push_back({alt.value("token").toString(), std::max(0.0f, probabilityOf(alt.value("logprob"))),
                         alt.value("id").toInt(-1)});
    }
    return t;
}

}  // namespace

StreamChunk parseStreamChunk(const QByteArray& data) {
    StreamChunk out;
    QJsonParseError pe;
    const QJsonDocument doc = QJsonDocument::fromJson(data, &pe);
    if (pe.error != QJsonParseError::NoError || !doc.isObject()) {
        out.malformed = true;
        return out;
    }
    const QJsonObject o = doc.object();
    // An error inside the stream: vLLM's {"error":{...}} (older: {"object":"error","message":...}),
    // llama.cpp's server's {"error":{"code","message","type"}} or, on an "error:" line, {"code","message"}.
    if (o.contains("error") || o.value("object").toString() == QLatin1String("error")) {
        out.error = errorMessage(data);
        if (out.error.isEmpty()) out.error = QObject::tr("the server reported an error");
        return out;
    }
    if (const QJsonObject usage = o.value("usage").toObject(); !usage.isEmpty()) {
        out.promptTokens = usage.value("prompt_tokens").toInt(-1);
        out.completionTokens = usage.value("completion_tokens").toInt(-1);
    }
    if (!o.contains("choices")) {
        out.malformed = !o.contains("usage");  // a usage-only chunk is fine
        return out;
    }
    const QJsonArray choices = o.value("choices").toArray();
    if (choices.isEmpty()) return out;  // the usage chunk of stream_options.include_usage
    const QJsonObject choice = choices.first().toObject();
    const QJsonValue content = choice.value("delta").toObject().value("content");  // null in llama.cpp's first chunk
    const QString text = content.toString();
    if (choice.value("finish_reason").isString()) out.finishReason = choice.value("finish_reason").toString();

    const QJsonArray entries = choice.value("logprobs").toObject().value("content").toArray();
    QList<TokenInfo> tokens;
    QString joined;
    for (const QJsonValue& e : entries) {
        tokens.push_back(tokenFrom(e.toObject()));
        joined += tokens.back().text;
    }
    if (!tokens.isEmpty() && joined == text) {
        out.tokens = tokens;  // one token per logprobs entry: the token view shows each
    } else if (!text.isEmpty()) {
        // No logprobs, or tokens whose pieces do not spell the text (a character split across
        // tokens): the chunk as one token, with the joint probability when there is one.
        TokenInfo t;
        t.id = -1;
        t.text = text;
        t.probability = -1;
        if (!tokens.isEmpty()) {
            double p = 1;
            for (const TokenInfo& e : tokens) p *= std::max(0.0f, e.probability);
            t.probability = static_cast<float>(p);
            t.top = tokens.first().top;
        }
        out.tokens.push_back(t);
    }
    return out;
}

QString errorMessage(const QByteArray& body) {
    const QJsonDocument doc = QJsonDocument::fromJson(body);
    if (doc.isObject()) {
        const QJsonObject o = doc.object();
        const QJsonValue error = o.value("error");
        if (error.isObject() && error.toObject().value("message").isString())
            return error.toObject().value("message").toString();
        if (error.isString()) return error.toString();
        if (o.value("message").isString()) return o.value("message").toString();
        if (o.value("detail").isString()) return o.value("detail").toString();
        if (o.value("detail").isArray()) return QString::fromUtf8(QJsonDocument(o.value("detail").toArray()).toJson(QJsonDocument::Compact));
    }
    QString text = QString::fromUtf8(body).simplified();
    if (text.size() > 300) text = text.left(299) + QStringLiteral("\u2026");
    return text;
}

QStringList parseModelList(const QByteArray& body, QString* error) {
    QJsonParseError pe;
    const QJsonDocument doc = QJsonDocument::fromJson(body, &pe);
    if (pe.error != QJsonParseError::NoError || !doc.isObject()) {
        if (error) *error = QObject::tr("the server's answer to /v1/models is not JSON (is this an OpenAI-compatible server?)");
        return {};
    }
    QStringList ids;
    for (const QJsonValue& v : doc.object().value("data").toArray())
        if (const QString id = v.toObject().value("id").toString(); !id.isEmpty()) ids << id;
    for (const QJsonValue& v : doc.object().value("models").toArray())
        if (const QString id = v.toObject().value("name").toString(); !id.isEmpty() && !ids.contains(id)) ids << id;
    if (ids.isEmpty() && error) *error = QObject::tr("the server lists no models at /v1/models");
    return ids;
}

QString stopReasonFor(const QString& finishReason) {
    if (finishReason == QLatin1String("stop")) return QStringLiteral("eos");
    if (finishReason == QLatin1String("length")) return QStringLiteral("max_tokens");
    return finishReason;
}

}  // namespace wp::ui
