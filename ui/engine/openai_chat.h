// The OpenAI chat-completions protocol as the remote backend speaks it: the request body built from
// a conversation and the pane's sampling settings, one streamed chunk read into tokens (with their
// logprobs when the server sends them: vLLM's and llama.cpp's server's shapes), errors read from a
// body or from inside the stream, and the model list. Pure functions: no network, no threads.
#pragma once

#include <QByteArray>
#include <QList>
#include <QString>
#include <QStringList>

#include "engine/types.h"

namespace wp::ui {

// What the request asks for beyond the standard fields; a server that refuses one by name (a 400
// naming it) gets the request again without it.
struct ChatRequestExtras {
    bool topK = true;            // top_k (vLLM, llama.cpp: yes; OpenAI: no)
    bool minP = true;            // min_p
    bool logprobs = true;        // logprobs: true, top_logprobs: 5
    bool streamOptions = true;   // stream_options.include_usage (prompt and reply token counts)
};

QByteArray chatRequestBody(const QString& model, const QList<ChatTurn>& turns, const GenerationSettings& settings,
                           const ChatRequestExtras& extras);

// The optional request fields `message` (a 400's error text) names, as ChatRequestExtras members
// turned off in `extras`; whether it named any that was on.
bool dropRefusedExtras(const QString& message, ChatRequestExtras& extras);

// One "data:" payload of a chat-completion stream (not "[DONE]").
struct StreamChunk {
    QList<TokenInfo> tokens;  // what the chunk adds to the reply; a token's probability < 0: not sent
    QString finishReason;     // "stop", "length", ... once the choice ends
    QString error;            // an error object inside the stream (vLLM, llama.cpp's server)
    int promptTokens = -1;    // from "usage", when present
    int completionTokens = -1;
    bool malformed = false;   // not JSON, or not a chunk
};
StreamChunk parseStreamChunk(const QByteArray& data);

// The message of an error body: {"error":{"message"}}, {"error":"..."}, {"message"}, {"detail"}
// (OpenAI, vLLM, llama.cpp's server, TGI), else the body's text (cut), else empty.
QString errorMessage(const QByteArray& body);

// The ids of GET /v1/models ({"data":[{"id":...}]}; Ollama's {"models":[{"name":...}]} too);
// `error` says why there are none.
QStringList parseModelList(const QByteArray& body, QString* error);

// Our stop reasons (ReplyStats::stopReason) for OpenAI's finish_reason.
QString stopReasonFor(const QString& finishReason);

}  // namespace wp::ui
