#include "engine/inference_worker.h"

#include <QCryptographicHash>
#include <QDir>
#include <QElapsedTimer>
#include <QFileInfo>
#include <QRandomGenerator>
#include <algorithm>
#include <cmath>

#include "engine/classify_engine.h"
#include "engine/head_summary_engine.h"
#include "engine/lens_engine.h"
#include "engine/view_input.h"
#include "engine/model_names.h"
#include "wp/error.h"
#include "wp/generate/chat_session.h"
#include "wp/hub/model_library.h"
#include "wp/model/decode_kernel_choice.h"

namespace wp::ui {

QJsonObject GenerationSettings::toJson() const {
    return QJsonObject{{"greedy", greedy},   {"temperature", temperature}, {"top_k", topK},
                       {"top_p", topP},      {"min_p", minP},             {"repetition_penalty", repetitionPenalty},
                       {"max_new_tokens", maxNewTokens}, {"seed", seed}, {"prompt_lookup", promptLookup}};
}

GenerationSettings GenerationSettings::fromJson(const QJsonObject& o) {
    GenerationSettings s;
    s.greedy = o.value("greedy").toBool(s.greedy);
    s.temperature = o.value("temperature").toDouble(s.temperature);
    s.topK = o.value("top_k").toInt(s.topK);
    s.topP = o.value("top_p").toDouble(s.topP);
    s.minP = o.value("min_p").toDouble(s.minP);
    s.repetitionPenalty = o.value("repetition_penalty").toDouble(s.repetitionPenalty);
    s.maxNewTokens = o.value("max_new_tokens").toInt(s.maxNewTokens);
    s.seed = static_cast<qint64>(o.value("seed").toDouble(static_cast<double>(s.seed)));
    s.promptLookup = std::clamp(o.value("prompt_lookup").toInt(s.promptLookup), 0, 64);
    return s;
}

QJsonObject ReplyStats::toJson() const {
    QJsonObject o{{"prompt_tokens", promptTokens},
                       {"reused_prompt_tokens", reusedPromptTokens},
                       {"generated_tokens", generatedTokens},
                       {"time_to_first_token_ms", timeToFirstTokenMs},
                       {"tokens_per_second", tokensPerSecond},
                       {"context_used", static_cast<double>(contextUsed)},
                       {"context_length", contextLength},
                       {"kv_bytes", static_cast<double>(kvBytes)},
                       {"stop_reason", stopReason}};
    if (!incomplete.isEmpty()) o.insert("incomplete", incomplete);
    return o;
}

struct InferenceWorker::Loaded {
    QString precision;  // as requested ("" = the model's default)
    QString kvCache;    // likewise
    std::unique_ptr<LoadedModel> model;
    std::unique_ptr<ChatSession> session;  // none for a task-head model: it cannot chat
    ModelCard card;
};

InferenceWorker::InferenceWorker() {
    qRegisterMetaType<wp::ui::ModelCard>();
    qRegisterMetaType<wp::ui::GenerationSettings>();
    qRegisterMetaType<wp::ui::ChatTurn>();
    qRegisterMetaType<QList<wp::ui::ChatTurn>>();
    qRegisterMetaType<wp::ui::TokenInfo>();
    qRegisterMetaType<wp::ui::ReplyStats>();
    qRegisterMetaType<wp::ui::MaskViewData>();
    qRegisterMetaType<wp::ui::ClassifyResult>();
    qRegisterMetaType<wp::ui::AnswerResult>();
    qRegisterMetaType<wp::ui::LensViewData>();
    qRegisterMetaType<wp::ui::HeadSummaryData>();
}

InferenceWorker::~InferenceWorker() = default;

void InferenceWorker::cancel(quint64 requestId) {
    {
        std::lock_guard<std::mutex> lock(cancelMutex_);
        cancelledIds_.push_back(requestId);
    }
    if (current_.load() == requestId) cancelFlag_ = true;
}

bool InferenceWorker::cancelled(quint64 requestId) const {
    std::lock_guard<std::mutex> lock(cancelMutex_);
    return std::find(cancelledIds_.begin(), cancelledIds_.end(), requestId) != cancelledIds_.end();
}

void InferenceWorker::begin(quint64 requestId) {
    // Clear, publish, then check: a cancel() between the steps either sees this request as current
    // and sets the flag after it was cleared, or is seen by the check (it records the id first).
    cancelFlag_ = false;
    current_ = requestId;
    {
        // Requests run in the order they were posted: a cancelled id below this one is over.
        std::lock_guard<std::mutex> lock(cancelMutex_);
        std::erase_if(cancelledIds_, [&](quint64 id) { return id < requestId; });
    }
    if (cancelled(requestId)) cancelFlag_ = true;
}

InferenceWorker::Loaded* InferenceWorker::find(const QString& path) {
    auto it = models_.find(QDir::cleanPath(path));
    return it == models_.end() ? nullptr : it->get();
}

namespace {

// "Q4_K → q8 (169, converted)", "F32 → f32 (1)": each GGUF tensor type and what it became. A type
// kept as it is says nothing more; "repacked" moves the same values, "converted" changes their form
// (dequantized and quantized again, or widened).
QStringList describeConversions(const std::vector<WeightConversion>& conversions) {
    QStringList parts;
    for (const WeightConversion& c : conversions) {
        const QString from = QString::fromStdString(c.from), to = QString::fromLatin1(precision_name(c.to));
        const QString how = c.repacked ? QObject::tr(", repacked")
                            : from.compare(to, Qt::CaseInsensitive) == 0 ? QString()
                                                                          : QObject::tr(", converted");
        parts << QStringLiteral("%1 \u2192 %2 (%3%4)").arg(from, to).arg(c.matrices).arg(how);
    }
    return parts;
}

// Every piece in id order, NUL-separated, hashed: ids that mean the same strings in two models.
QString vocabularyFingerprint(const Tokenizer& tok) {
    QCryptographicHash hash(QCryptographicHash::Sha256);
    for (int id = 0; id < tok.vocab_size(); ++id) {
        const std::string piece = tok.piece(id);
        hash.addData(QByteArrayView(piece.data(), static_cast<qsizetype>(piece.size() + 1)));  // with its NUL
    }
    return QString::fromLatin1(hash.result().toHex().left(16));
}

}  // namespace

ModelCard describeModel(const LoadedModel& lm, const QString& path) {
    const ModelConfig& c = lm.model().config();
    ModelCard card;
    card.path = QDir::cleanPath(path);
    card.singleFile = QFileInfo(card.path).isFile();
    card.name = modelDisplayName(card.path);
    // An Ollama blob is named by its digest: Ollama's manifests give the name it is known by.
    if (const std::string ollama = ollama_blob_name(card.path.toStdString()); !ollama.empty())
        card.name = QString::fromStdString(ollama);
    card.family = QString::fromLatin1(family_name(c.family));
    card.dtype = QString::fromStdString(lm.model().weights_dtype());
    card.weightConversions = describeConversions(lm.model().weight_conversions());
    card.precision = QString::fromLatin1(precision_name(lm.model().precision()));
    card.tokenizer = QString::fromStdString(lm.tokenizer().describe());
    card.vocabFingerprint = vocabularyFingerprint(lm.tokenizer());
    card.parameters = lm.model().parameter_count();
    card.contextLength = c.max_position_embeddings;
    card.vocabSize = c.vocab_size;
    card.hiddenSize = c.hidden_size;
    card.heads = c.num_heads;
    card.kvHeads = c.num_kv_heads;
    card.headDim = c.head_dim;
    for (int l = 0; l < c.num_layers; ++l) card.layers.push_back({c.layer_is_sliding(l), c.layer_masks[l].window});
    card.kvBytesPerToken = static_cast<qint64>(lm.model().kv_bytes_per_token());
    card.defaultCache = QString::fromLatin1(cache_kind_name(lm.model().default_cache()));
    card.kvType = QString::fromLatin1(kv_type_name(lm.model().kv_type()));
    std::string why;
    card.systemRoleSupported = lm.supports_system_role(&why);
    card.systemRoleReason = QString::fromStdString(why);
    card.builtinTemplate = lm.builtin_template();
    card.head = QString::fromLatin1(head_name(c.head));
    card.architecture = QString::fromStdString(c.architecture);
    for (const std::string& l : c.labels) card.labels << QString::fromStdString(l);
    if (c.head != Head::CausalLM) {
        const QString what = card.architecture.isEmpty() ? card.name : card.architecture;
        const QString does = c.head == Head::SequenceClassification ? QObject::tr("it classifies texts")
                             : c.head == Head::TokenClassification ? QObject::tr("it labels each token of a text")
                                                                    : QObject::tr("it finds answers in a text");
        card.chatUnavailable = QObject::tr("%1 is a %2 model: %3 rather than chat. Use the Classify tab.")
                                   .arg(what, QString::fromLatin1(head_name(c.head)).replace('-', ' '), does);
    }
    return card;
}

void InferenceWorker::loadModel(quint64 requestId, const QString& path, const QString& precision, const QString& kvCache) {
    const QString key = QDir::cleanPath(path);
    if (Loaded* l = find(key); l && l->precision == precision && l->kvCache == kvCache) {
        emit loadProgress(requestId, 1.0);
        emit modelLoaded(requestId, l->card);
        return;
    }
    try {
        auto loaded = std::make_shared<Loaded>();
        loaded->precision = precision;
        loaded->kvCache = kvCache;
        LoadOptions options;
        if (!precision.isEmpty()) options.precision = parse_precision(precision.toStdString());
        if (!kvCache.isEmpty()) options.kv_cache = parse_kv_type(kvCache.toStdString());
        // The decode kernels measured fastest on this CPU: read from the user's cache, or
        // measured once (under a second) the first time any model is opened.
        options.decode_choice_file = default_decode_choice_file();
        loaded->model = LoadedModel::load(key.toStdString(), [&](double f) { emit loadProgress(requestId, f); }, options);
        if (loaded->model->model().config().head == Head::CausalLM)
            loaded->session = std::make_unique<ChatSession>(*loaded->model);
        loaded->card = describeModel(*loaded->model, key);
        models_.insert(key, loaded);
        emit modelLoaded(requestId, loaded->card);
    } catch (const std::exception& e) {
        emit error(requestId, QString::fromStdString(e.what()));
    }
}

void InferenceWorker::unloadModel(const QString& path) { models_.remove(QDir::cleanPath(path)); }

void InferenceWorker::tokenize(quint64 requestId, const QString& modelPath, const QString& text) {
    Loaded* l = find(modelPath);
    if (l == nullptr) {
        emit error(requestId, tr("The model %1 is not loaded.").arg(modelPath));
        return;
    }
    const Tokenizer& tok = l->model->tokenizer();
    QStringList pieces;
    for (int id : tok.encode(text.toStdString(), true)) {
        const int one[1] = {id};
        pieces << QString::fromStdString(tok.decode(one, false));
    }
    emit tokenized(requestId, pieces);
}

void InferenceWorker::analyze(quint64 requestId, const QString& modelPath, const QString& text,
                              const QList<ChatTurn>& conversation, int layer) {
    Loaded* l = find(modelPath);
    if (l == nullptr) {
        emit error(requestId, tr("The model %1 is not loaded.").arg(modelPath));
        return;
    }
    try {
        const LoadedModel& lm = *l->model;
        const ModelConfig& cfg = lm.model().config();
        const std::vector<int> ids = encodeViewInput(lm, text, conversation);
        const int T = static_cast<int>(ids.size());

        MaskViewData data;
        data.tokens = tokenPieces(lm.tokenizer(), ids);
        data.layers = cfg.layer_masks;
        data.heads = cfg.num_heads;
        // Attention of every layer when it fits in ~256 MB, else of the chosen layer only.
        const double all_bytes = 4.0 * cfg.num_layers * cfg.num_heads * static_cast<double>(T) * T;
        std::vector<bool> record(cfg.num_layers, all_bytes <= 256.0 * (1 << 20));
        if (layer >= 0 && layer < cfg.num_layers) record[layer] = true;
        AttentionTrace trace(record, cfg.num_heads, T);

        // The real cache, stepped like a chat: the text up to the last 64 tokens in one chunk,
        // then token by token, recording which positions each layer holds after every step.
        auto ctx = lm.model().new_context();
        const int tail = std::min(T - 1, 64);
        auto record_step = [&] { data.cacheSteps.push_back(MaskViewData::captureCache(ctx->cache)); };
        lm.model().forward(*ctx, std::span<const int>(ids).first(T - tail), LogitsMode::Last, &trace);
        record_step();
        for (int i = T - tail; i < T; ++i) {
            lm.model().forward(*ctx, std::span<const int>(ids).subspan(i, 1), LogitsMode::Last, &trace);
            record_step();
        }
        data.attention.resize(cfg.num_layers);
        const std::size_t per_layer = static_cast<std::size_t>(cfg.num_heads) * T * T;
        for (int li = 0; li < cfg.num_layers; ++li)
            if (trace.records(li)) data.attention[li].assign(trace.layer_data(li), trace.layer_data(li) + per_layer);
        emit analyzed(requestId, data);
    } catch (const std::exception& e) {
        emit error(requestId, QString::fromStdString(e.what()));
    }
}

template <typename Run>
void InferenceWorker::runViewRequest(quint64 requestId, const QString& modelPath, const QString& text,
                                     const QList<ChatTurn>& conversation, Run run) {
    begin(requestId);
    Loaded* l = find(modelPath);
    if (l == nullptr) {
        emit error(requestId, tr("The model %1 is not loaded.").arg(modelPath));
        return;
    }
    try {
        run(*l->model, encodeViewInput(*l->model, text, conversation),
            [&](double f) { emit analysisProgress(requestId, f); });
    } catch (const Cancelled&) {
        emit error(requestId, tr("Stopped."));
    } catch (const std::exception& e) {
        emit error(requestId, QString::fromStdString(e.what()));
    }
}

void InferenceWorker::lens(quint64 requestId, const QString& modelPath, const QString& text,
                           const QList<ChatTurn>& conversation, int first, int count, int topK) {
    runViewRequest(requestId, modelPath, text, conversation,
                   [&](const LoadedModel& lm, const std::vector<int>& ids, const auto& progress) {
        emit lensReady(requestId, computeLens(lm, ids, first, count, topK, progress, &cancelFlag_));
    });
}

void InferenceWorker::summarizeHeads(quint64 requestId, const QString& modelPath, const QString& text,
                                     const QList<ChatTurn>& conversation) {
    runViewRequest(requestId, modelPath, text, conversation,
                   [&](const LoadedModel& lm, const std::vector<int>& ids, const auto& progress) {
        emit headsSummarized(requestId, summarizeAllHeads(lm, ids, progress, &cancelFlag_));
    });
}

void InferenceWorker::classify(quint64 requestId, const QString& modelPath, const QString& text) {
    Loaded* l = find(modelPath);
    if (l == nullptr) {
        emit error(requestId, tr("The model %1 is not loaded.").arg(modelPath));
        return;
    }
    try {
        emit classified(requestId, classifyText(*l->model, text));
    } catch (const std::exception& e) {
        emit error(requestId, QString::fromStdString(e.what()));
    }
}

void InferenceWorker::answer(quint64 requestId, const QString& modelPath, const QString& question,
                             const QString& context, int topK) {
    Loaded* l = find(modelPath);
    if (l == nullptr) {
        emit error(requestId, tr("The model %1 is not loaded.").arg(modelPath));
        return;
    }
    try {
        emit answered(requestId, answerQuestion(*l->model, question, context, topK));
    } catch (const std::exception& e) {
        emit error(requestId, QString::fromStdString(e.what()));
    }
}

void InferenceWorker::generate(quint64 requestId, const QString& modelPath, const QList<ChatTurn>& conversation,
                               const GenerationSettings& settings) {
    begin(requestId);
    Loaded* l = find(modelPath);
    if (l == nullptr) {
        emit error(requestId, tr("The model %1 is not loaded.").arg(modelPath));
        return;
    }
    if (!l->session) {
        emit error(requestId, l->card.chatUnavailable);
        return;
    }
    const ModelConfig& cfg = l->model->model().config();
    ReplyStats st;
    st.contextLength = cfg.max_position_embeddings;
    if (cancelFlag_) {
        st.stopReason = "cancelled";
        st.final = true;
        emit finished(requestId, QString(), st);
        return;
    }

    GenerateOptions opts;
    opts.max_new_tokens = settings.maxNewTokens;
    opts.sampling.greedy = settings.greedy;
    opts.sampling.temperature = static_cast<float>(settings.temperature);
    opts.sampling.top_k = settings.topK;
    opts.sampling.top_p = static_cast<float>(settings.topP);
    opts.sampling.min_p = static_cast<float>(settings.minP);
    opts.sampling.repetition_penalty = static_cast<float>(settings.repetitionPenalty);
    opts.sampling.seed = settings.seed >= 0 ? static_cast<std::uint64_t>(settings.seed) : QRandomGenerator::global()->generate64();
    opts.prompt_lookup_tokens = settings.greedy ? std::clamp(settings.promptLookup, 0, 64) : 0;
    opts.cancel = &cancelFlag_;
    // Prompt progress (and a Stop press) in visible steps. The chunk size stays fixed: it decides
    // which product path each chunk takes (and so the exact logits), and chunks sized from
    // measured speed made the same seed give different replies from run to run.
    opts.prefill_chunk = 64;
    opts.on_prefill = [&](int done, int total) { emit promptProgress(requestId, done, total); };

    const Tokenizer& tok = l->model->tokenizer();
    QElapsedTimer clock;
    clock.start();
    QElapsedTimer sinceStats;
    sinceStats.start();
    double firstTokenMs = -1;
    int count = 0;
    auto fill = [&](ReplyStats& s) {
        s.generatedTokens = count;
        s.timeToFirstTokenMs = firstTokenMs < 0 ? 0 : firstTokenMs;
        const double decodeMs = clock.elapsed() - s.timeToFirstTokenMs;
        s.tokensPerSecond = count > 1 && decodeMs > 0 ? (count - 1) * 1000.0 / decodeMs : 0;
        s.contextUsed = l->session->context().cache.length();
        s.kvBytes = static_cast<qint64>(l->session->context().cache.bytes_used());
    };

    std::vector<ChatMessage> messages;
    for (const ChatTurn& t : conversation) messages.push_back({t.role.toStdString(), t.content.toStdString()});
    try {
        const Reply reply = l->session->reply(messages, opts, [&](const std::string& text, const GeneratedToken& t) {
            if (firstTokenMs < 0) firstTokenMs = static_cast<double>(clock.elapsed());
            ++count;
            TokenInfo info;
            info.id = t.id;
            info.text = QString::fromStdString(text);
            info.probability = std::exp(t.logprob);
            for (int i = 0; i < t.top_count; ++i) {
                const int one[1] = {t.top[i].id};
                info.top.push_back({QString::fromStdString(tok.decode(one, false)), std::exp(t.top[i].logprob), t.top[i].id});
            }
            emit tokenText(requestId, info.text, info);
            if (sinceStats.elapsed() >= 1000) {
                ReplyStats live = st;
                fill(live);
                emit stats(requestId, live);
                sinceStats.restart();
            }
            return !cancelFlag_.load();
        });
        count = static_cast<int>(reply.result.tokens.size());
        st.promptTokens = reply.result.prompt_tokens;
        fill(st);
        st.reusedPromptTokens = reply.reused_tokens;
        st.timeToFirstTokenMs = reply.result.prefill_seconds * 1000.0;
        st.tokensPerSecond = reply.result.tokens.size() > 1 && reply.result.decode_seconds > 0
                                 ? (reply.result.tokens.size() - 1) / reply.result.decode_seconds
                                 : 0;
        st.stopReason = QString::fromLatin1(stop_reason_name(reply.result.reason));
        if (reply.result.reason == StopReason::Callback) st.stopReason = "cancelled";
        st.final = true;
        emit finished(requestId, QString::fromStdString(reply.text), st);
    } catch (const std::exception& e) {
        emit error(requestId, QString::fromStdString(e.what()));
    }
}

}  // namespace wp::ui
