// InferenceWorker driven from plain threads, without Qt's queued calls: its own cross-thread state
// (cancel() from the GUI thread while a reply streams on the worker's) and two workers generating
// at once, as the compare view runs them. Built normally and under ThreadSanitizer
// (tests/sanitizers/run.sh), which sees every synchronisation here.
#include <gtest/gtest.h>

#include <QJsonObject>
#include <QString>
#include <atomic>
#include <chrono>
#include <thread>

#include "engine/inference_worker.h"

namespace wp::ui {
namespace {

const QString kDemo = QStringLiteral(WP_DEMO_MODEL);

// Results of one worker, written by its signals on the worker's own thread (direct connections).
struct Recorder {
    std::atomic<int> tokens{0};
    std::atomic<bool> loaded{false}, finished{false};
    QString error, text, stopReason;  // written before `finished` (or `loaded`) is set

    explicit Recorder(InferenceWorker& w) {
        QObject::connect(&w, &InferenceWorker::modelLoaded, &w, [this](quint64, const ModelCard&) { loaded = true; },
                         Qt::DirectConnection);
        QObject::connect(&w, &InferenceWorker::tokenText, &w,
                         [this](quint64, const QString&, const TokenInfo&) { ++tokens; }, Qt::DirectConnection);
        QObject::connect(&w, &InferenceWorker::finished, &w,
                         [this](quint64, const QString& t, const ReplyStats& s) {
                             text = t;
                             stopReason = s.stopReason;
                             finished = true;
                         },
                         Qt::DirectConnection);
        QObject::connect(&w, &InferenceWorker::error, &w, [this](quint64, const QString& m) { error = m; },
                         Qt::DirectConnection);
    }
};

QList<ChatTurn> question() { return {ChatTurn{QStringLiteral("user"), QStringLiteral("Tell me a long story.")}}; }

TEST(InferenceWorker, CancelFromAnotherThreadStopsTheReply) {
    InferenceWorker worker;
    Recorder rec(worker);
    GenerationSettings settings;
    settings.seed = 7;
    settings.maxNewTokens = 100000;  // only the cancel ends it (or the context)
    std::thread engine([&] {
        worker.loadModel(1, kDemo);
        worker.generate(2, kDemo, question(), settings);
    });
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    while (rec.tokens < 3 && !rec.finished && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    worker.cancel(2);
    engine.join();
    ASSERT_TRUE(rec.error.isEmpty()) << rec.error.toStdString();
    EXPECT_TRUE(rec.loaded);
    ASSERT_TRUE(rec.finished);
    EXPECT_GE(rec.tokens, 3);
    EXPECT_EQ(rec.stopReason, QStringLiteral("cancelled"));
}

TEST(InferenceWorker, TwoWorkersGenerateAtOnce) {
    InferenceWorker a, b;
    Recorder ra(a), rb(b);
    GenerationSettings settings;
    settings.greedy = true;
    settings.maxNewTokens = 24;
    auto run = [&](InferenceWorker& w) {
        w.loadModel(1, kDemo, QStringLiteral("q8"));
        w.generate(2, kDemo, question(), settings);
    };
    std::thread ta([&] { run(a); }), tb([&] { run(b); });
    ta.join();
    tb.join();
    ASSERT_TRUE(ra.error.isEmpty() && rb.error.isEmpty()) << ra.error.toStdString() << rb.error.toStdString();
    ASSERT_TRUE(ra.finished && rb.finished);
    // Same model, same precision, greedy: the same reply, whatever ran beside it.
    EXPECT_FALSE(ra.text.isEmpty());
    EXPECT_EQ(ra.text, rb.text);
}

// The KV cache type chosen in the app reaches the model: the card says so, a q8 cache takes fewer
// bytes per token than the default f32 one (bf16 weights), a reply still comes, and asking again
// with another type loads again rather than reusing the model.
TEST(InferenceWorker, KvCacheTypeIsLoadedAndShown) {
    InferenceWorker w;
    ModelCard cards[2];
    QObject::connect(&w, &InferenceWorker::modelLoaded, [&](quint64 id, const ModelCard& c) { cards[id - 1] = c; });
    Recorder rec(w);
    w.loadModel(1, kDemo);
    w.loadModel(2, kDemo, QString(), QStringLiteral("q8"));
    ASSERT_TRUE(rec.error.isEmpty()) << rec.error.toStdString();
    EXPECT_EQ(cards[0].kvType, QStringLiteral("f32"));
    EXPECT_EQ(cards[1].kvType, QStringLiteral("q8"));
    EXPECT_LT(cards[1].kvBytesPerToken * 3, cards[0].kvBytesPerToken);
    GenerationSettings settings;
    settings.greedy = true;
    settings.maxNewTokens = 12;
    w.generate(3, kDemo, question(), settings);
    ASSERT_TRUE(rec.finished) << rec.error.toStdString();
    EXPECT_FALSE(rec.text.isEmpty());
}

// The settings' prompt lookup: stored and read back, and in greedy replies the same text with it
// as without it.
TEST(InferenceWorker, PromptLookupGivesTheSameGreedyReply) {
    GenerationSettings settings;
    settings.greedy = true;
    settings.maxNewTokens = 48;
    settings.promptLookup = 10;
    EXPECT_EQ(GenerationSettings::fromJson(settings.toJson()).promptLookup, 10);
    EXPECT_EQ(GenerationSettings::fromJson(QJsonObject{{"prompt_lookup", 1000}}).promptLookup, 64);
    QString replies[2];
    for (int i = 0; i < 2; ++i) {
        InferenceWorker w;
        Recorder rec(w);
        GenerationSettings s = settings;
        s.promptLookup = i == 0 ? 0 : 10;
        w.loadModel(1, kDemo);
        w.generate(2, kDemo, {ChatTurn{QStringLiteral("user"), QStringLiteral("And God said, Let there be light: and "
                                                                                  "there was light. Say it again.")}},
                   s);
        ASSERT_TRUE(rec.error.isEmpty()) << rec.error.toStdString();
        ASSERT_TRUE(rec.finished);
        replies[i] = rec.text;
    }
    EXPECT_FALSE(replies[0].isEmpty());
    EXPECT_EQ(replies[0], replies[1]);
}

// The attention tab's two extra requests: a cancelled head summary stops with "Stopped.", and the
// next request (a lens of the last 8 positions) runs.
TEST(InferenceWorker, CancelledHeadSummaryStopsAndTheNextLensRuns) {
    InferenceWorker worker;
    Recorder rec(worker);
    LensViewData lens;
    QString headsError;
    QObject::connect(&worker, &InferenceWorker::lensReady, &worker,
                     [&](quint64, const LensViewData& d) { lens = d; }, Qt::DirectConnection);
    QObject::connect(&worker, &InferenceWorker::error, &worker,
                     [&](quint64 id, const QString& m) { if (id == 2) headsError = m; }, Qt::DirectConnection);
    worker.loadModel(1, kDemo);
    worker.cancel(2);
    worker.summarizeHeads(2, kDemo, QStringLiteral("And God said, Let there be light."), {});
    EXPECT_EQ(headsError, QStringLiteral("Stopped."));
    worker.lens(3, kDemo, QStringLiteral("And God said, Let there be light: and there was light."), {}, -1, 8, 5);
    ASSERT_EQ(lens.layers, 6) << rec.error.toStdString();
    EXPECT_EQ(lens.count, 8);
    EXPECT_EQ(lens.first + lens.count, lens.positions());
    for (int c = 0; c + 1 < lens.count; ++c)  // every column's next token has its text
        EXPECT_TRUE(lens.pieces.contains(lens.nextId(c))) << "column " << c;
}

// Chat, the Attention tab and the classify views share one worker: cancelling a request that
// waits behind a streaming reply (the Attention tab's Stop) must not end the reply.
TEST(InferenceWorker, CancellingALaterRequestLeavesTheRunningReply) {
    InferenceWorker worker;
    Recorder rec(worker);
    QString lensError;
    QObject::connect(&worker, &InferenceWorker::error, &worker,
                     [&](quint64 id, const QString& m) { if (id == 3) lensError = m; }, Qt::DirectConnection);
    GenerationSettings settings;
    settings.seed = 7;
    settings.maxNewTokens = 100000;
    std::thread engine([&] {
        worker.loadModel(1, kDemo);
        worker.generate(2, kDemo, question(), settings);
        worker.lens(3, kDemo, QStringLiteral("And God said, Let there be light."), {}, -1, 4, 5);
    });
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    while (rec.tokens < 3 && !rec.finished && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    worker.cancel(3);  // the queued lens
    const int before = rec.tokens;
    while (rec.tokens < before + 5 && !rec.finished && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    EXPECT_FALSE(rec.finished) << "the reply ended when a later request was cancelled";
    EXPECT_GE(rec.tokens, before + 5);
    worker.cancel(2);
    engine.join();
    EXPECT_EQ(rec.stopReason, QStringLiteral("cancelled"));
    EXPECT_EQ(lensError, QStringLiteral("Stopped."));  // and the lens never ran
}

}  // namespace
}  // namespace wp::ui

int main(int argc, char** argv) {
    testing::InitGoogleTest(&argc, argv);
    return RUN_ALL_TESTS();
}
