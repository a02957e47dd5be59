// Plain values that cross the thread boundary between the GUI and the inference worker.
#pragma once

#include <QJsonObject>
#include <QList>
#include <QMetaType>
#include <QString>
#include <QStringList>
#include <QVector>

namespace wp::ui {

struct LayerInfo {
    bool sliding = false;
    int window = 0;
};

// What the model card shows; filled by the worker from core.
struct ModelCard {
    QString path;
    QString name;            // folder name, GGUF file name, or Ollama's MODEL:TAG
    QString family;          // gemma, gemma2, qwen2
    QString dtype;           // weights dtype
    // A GGUF file's tensor types and what each became at load, one entry per type
    // ("Q4_K → q8 (169, converted)", "Q8_0 → q8 (26, repacked)"); empty for a model folder.
    QStringList weightConversions;
    bool singleFile = false;  // a GGUF file rather than a model folder
    QString precision;       // compute precision (f32, bf16, q8, q4)
    QString tokenizer;       // tokenizer description
    // A hash of every token's piece: equal for two models whose ids mean the same strings, so
    // their replies and distributions compare token for token (the compare view's first parting).
    QString vocabFingerprint;
    qint64 parameters = 0;
    int contextLength = 0;
    int vocabSize = 0;
    int hiddenSize = 0;
    int heads = 0, kvHeads = 0, headDim = 0;
    QVector<LayerInfo> layers;
    qint64 kvBytesPerToken = 0;
    QString defaultCache;
    QString kvType;  // how its caches hold K and V: f32, f16, q8
    bool systemRoleSupported = true;
    QString systemRoleReason;  // the template's message when it rejects a system turn
    bool builtinTemplate = false;
    // The head on the body (wp::head_name: "causal-lm", "sequence-classification", ...), the
    // architecture as config.json names it, and the labels of a classification head.
    QString head = QStringLiteral("causal-lm");
    QString architecture;
    QStringList labels;
    QString chatUnavailable;  // why a task-head model cannot chat; empty for a causal LM
    // The /v1 base URL of the OpenAI-compatible server that runs it (engine/remote_model_ref.h);
    // empty for a model this app loads. A remote model only chats: its weights are not here.
    QString remoteEndpoint;

    bool isTaskHead() const { return head != QLatin1String("causal-lm"); }
    bool isRemote() const { return !remoteEndpoint.isEmpty(); }
};

struct GenerationSettings {
    bool greedy = false;
    double temperature = 0.8;
    int topK = 40;
    double topP = 0.95;
    double minP = 0.05;
    double repetitionPenalty = 1.0;
    int maxNewTokens = 512;
    qint64 seed = -1;  // -1: a new random seed per reply
    int promptLookup = 0;  // greedy only: draft tokens copied from the context (0: off); same reply, faster when it quotes

    QJsonObject toJson() const;
    static GenerationSettings fromJson(const QJsonObject& o);
};

struct ChatTurn {
    QString role;
    QString content;
};

struct TokenAlternativeInfo {
    QString text;
    float probability = 0;
    int id = -1;  // the token's id; -1 when not known (a reply read back from the store)
};

// One generated token: its text, probability and the most probable alternatives.
struct TokenInfo {
    int id = 0;
    QString text;
    float probability = 0;
    QList<TokenAlternativeInfo> top;
};

struct ReplyStats {
    int promptTokens = 0;
    int reusedPromptTokens = 0;
    int generatedTokens = 0;
    double timeToFirstTokenMs = 0;
    double tokensPerSecond = 0;
    qint64 contextUsed = 0;
    int contextLength = 0;
    qint64 kvBytes = 0;
    QString stopReason;  // eos, max_tokens, context_full, cancelled, incomplete, ...
    // Why the reply ended before the model ended it (stopReason "incomplete": a remote stream cut
    // in the middle); the text so far is kept and marked.
    QString incomplete;
    bool final = false;

    QJsonObject toJson() const;
};

}  // namespace wp::ui

Q_DECLARE_METATYPE(wp::ui::ModelCard)
Q_DECLARE_METATYPE(wp::ui::GenerationSettings)
Q_DECLARE_METATYPE(wp::ui::ChatTurn)
Q_DECLARE_METATYPE(wp::ui::TokenInfo)
Q_DECLARE_METATYPE(wp::ui::ReplyStats)
