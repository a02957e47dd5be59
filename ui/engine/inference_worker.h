// The only bridge between the GUI and core. Lives on its own QThread; the GUI calls its slots
// through queued signals and receives results as signals tagged with the request id, so a late
// token of a cancelled request can be recognised and dropped.
#pragma once

#include <QHash>
#include <QObject>
#include <QString>
#include <atomic>
#include <memory>
#include <mutex>
#include <vector>

#include "engine/classify_types.h"
#include "engine/head_summary_data.h"
#include "engine/lens_view_data.h"
#include "engine/mask_view_data.h"
#include "engine/types.h"

namespace wp {
class LoadedModel;
class ChatSession;
}  // namespace wp

namespace wp::ui {

class InferenceWorker : public QObject {
    Q_OBJECT
public:
    InferenceWorker();
    ~InferenceWorker() override;

    // Thread-safe, callable from the GUI while the worker is busy: that request stops before its
    // next token (or never starts). Only that one: the chat, the Attention tab and the classify
    // views share this worker, and one's Stop must not end another's request.
    void cancel(quint64 requestId);

public slots:
    // Loads (or reuses) the model folder `path` in `precision` ("f32", "bf16", "q8", "q4"; empty:
    // the model's default) with KV caches of type `kvCache` ("f32", "f16", "q8"; empty: the
    // precision's default); emits loadProgress, then modelLoaded or error.
    void loadModel(quint64 requestId, const QString& path, const QString& precision = {}, const QString& kvCache = {});
    void unloadModel(const QString& path);
    // Generates the assistant's reply to `conversation` with the model loaded from `modelPath`.
    // Emits promptProgress, tokenText per token, stats at most once a second, then finished (also
    // when stopped) or error.
    void generate(quint64 requestId, const QString& modelPath, const QList<wp::ui::ChatTurn>& conversation,
                  const wp::ui::GenerationSettings& settings);
    // Tokens of `text` as the model's tokenizer splits it (for display), emitted as tokenized.
    void tokenize(quint64 requestId, const QString& modelPath, const QString& text);
    // Runs the model over `text` (or, when it is empty, over `conversation` as its chat template
    // renders it) with attention recording, and emits `analyzed` with the tokens, every layer's
    // mask spec, the attention probabilities (all layers when they fit in ~256 MB, else only
    // `layer`) and the KV cache's held positions after each step.
    void analyze(quint64 requestId, const QString& modelPath, const QString& text,
                 const QList<wp::ui::ChatTurn>& conversation, int layer);
    // The logit lens (engine/lens_engine.h) of `text` (or the conversation) over positions
    // first .. first + count - 1 (first < 0: the last `count`) with the `topK` best tokens per
    // cell: emits analysisProgress, then lensReady, or error (also when cancelled, or for a model
    // without a language-model head).
    void lens(quint64 requestId, const QString& modelPath, const QString& text,
              const QList<wp::ui::ChatTurn>& conversation, int first, int count, int topK);
    // Every layer's and head's attention summary (engine/head_summary_engine.h) of `text` (or the
    // conversation): emits analysisProgress, then headsSummarized, or error (also when cancelled).
    void summarizeHeads(quint64 requestId, const QString& modelPath, const QString& text,
                        const QList<wp::ui::ChatTurn>& conversation);
    // Runs a sequence- or token-classification model over `text` (encoded with its special
    // tokens) and emits `classified`, or error (another head, no tokens, more than the model's
    // positions).
    void classify(quint64 requestId, const QString& modelPath, const QString& text);
    // Extractive question answering over `context`: emits `answered` with the `topK` best spans
    // (of up to 30 tokens each), or error.
    void answer(quint64 requestId, const QString& modelPath, const QString& question, const QString& context,
                int topK);

signals:
    void loadProgress(quint64 requestId, double fraction);
    void modelLoaded(quint64 requestId, const wp::ui::ModelCard& card);
    void promptProgress(quint64 requestId, int done, int total);
    void tokenText(quint64 requestId, const QString& text, const wp::ui::TokenInfo& info);
    void stats(quint64 requestId, const wp::ui::ReplyStats& stats);
    void finished(quint64 requestId, const QString& text, const wp::ui::ReplyStats& stats);
    void tokenized(quint64 requestId, const QStringList& pieces);
    void analyzed(quint64 requestId, const wp::ui::MaskViewData& data);
    void analysisProgress(quint64 requestId, double fraction);  // lens and summarizeHeads, 0..1
    void lensReady(quint64 requestId, const wp::ui::LensViewData& data);
    void headsSummarized(quint64 requestId, const wp::ui::HeadSummaryData& data);
    void classified(quint64 requestId, const wp::ui::ClassifyResult& result);
    void answered(quint64 requestId, const wp::ui::AnswerResult& result);
    void error(quint64 requestId, const QString& message);

private:
    struct Loaded;
    Loaded* find(const QString& path);
    bool cancelled(quint64 requestId) const;
    void begin(quint64 requestId);  // the request now running: current_ and its cancel flag
    // The lens and head-summary requests: the model, the text or conversation as ids, progress,
    // Stop ("Stopped.") and errors; `run(model, ids, progress)` emits the result.
    template <typename Run>
    void runViewRequest(quint64 requestId, const QString& modelPath, const QString& text,
                        const QList<ChatTurn>& conversation, Run run);

    QHash<QString, std::shared_ptr<Loaded>> models_;
    mutable std::mutex cancelMutex_;
    std::vector<quint64> cancelledIds_;  // cancelled and not yet started (or running); under cancelMutex_
    std::atomic<quint64> current_{0};
    std::atomic<bool> cancelFlag_{false};
};

ModelCard describeModel(const wp::LoadedModel& lm, const QString& path);

}  // namespace wp::ui

Q_DECLARE_METATYPE(wp::ui::MaskViewData)
