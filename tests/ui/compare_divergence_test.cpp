// The compare view's Divergence mode and the first parting of greedy replies, offscreen: the demo
// model against itself gives KL 0 and full agreement, loaded once; at f32 against q4 every row
// equals wp::diverge run here; two vocabularies are refused with core's reason in the view, and a
// model that fails to load is named; Stop stops the worker mid-comparison; the worker's models
// are kept across runs and freed when the user leaves the mode; the token table jumps to a token,
// and a 32k-token result shows at once; greedy replies of the demo model at two precisions are
// marked at the first token where their ids differ, every pair of panes of one vocabulary, and
// models of two vocabularies are not compared. Screenshots of both go to the build's screenshots
// folder.
//
// The offscreen screen is 1366 x 768, as for wp_gui_tests.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <QApplication>
#include <QDockWidget>
#include <QElapsedTimer>
#include <QHelpEvent>
#include <QLabel>
#include <QTabWidget>
#include <QTemporaryDir>
#include <QPushButton>
#include <QSemaphore>
#include <QSignalSpy>
#include <QTabBar>
#include <QTableView>
#include <QTextBlock>
#include <QTextBrowser>
#include <QTextCursor>
#include <algorithm>
#include <atomic>
#include <cmath>
#include <iostream>
#include <memory>
#include <numeric>

#include "gui_test_support.h"
#include "main_window.h"
#include "engine/divergence_engine.h"
#include "engine/divergence_worker.h"
#include "widgets/compare_view.h"
#include "widgets/divergence_view.h"
#include "wp/error.h"
#include "wp/generate/chat_session.h"
#include "wp/model/decode_kernel_choice.h"
#include "wp/model/divergence.h"

namespace wp::ui {

// Streams a pane's reply token by token without a model behind it: for text a model will not
// write (a "\r\n") and for a run that fails at a chosen moment.
struct CompareViewTestAccess {
    // A greedy run of panes `panes` (loaded, so their vocabularies are known): cleared and running.
    static void start(CompareView& v, std::initializer_list<int> panes) {
        v.runPrompt_ = QStringLiteral("a prompt");
        v.runGreedy_ = true;
        v.runStopped_ = false;
        for (int slot : panes) runIds()[slot] = v.startReply(slot);
        v.updatePartings(true);
    }
    static void token(CompareView& v, int slot, int id, const QString& text, float probability = 0.6f) {
        TokenInfo info;
        info.id = id;
        info.text = text;
        info.probability = probability;
        info.top = {{text, probability, id}, {QStringLiteral("x"), 0.25f, id + 1000}};
        v.onReplyToken(slot, runIds()[slot], text, info);
    }
    static void finish(CompareView& v, int slot) {
        ReplyStats s;
        s.generatedTokens = static_cast<int>(v.replyTokens(slot).size());
        s.stopReason = QStringLiteral("length");
        v.onReplyFinished(slot, runIds()[slot], v.replyText(slot), s);
    }
    static void fail(CompareView& v, int slot, const QString& message) { v.onReplyError(slot, runIds()[slot], message); }

private:
    static quint64* runIds() {
        static quint64 ids[CompareView::kMaxModels] = {};
        return ids;
    }
};

}  // namespace wp::ui

namespace {

using namespace gui_test;
using wp::ui::CompareView;
using wp::ui::CompareViewTestAccess;
using wp::ui::DivergenceView;
using wp::ui::DivergenceWorker;

const char* const kDemo = "models/windowpane-demo-gemma2";
const char* const kTinyGemma2 = "fixtures/tiny-gemma2";
const char* const kTinyQwen2 = "fixtures/tiny-qwen2";

QString shared(const char* model) { return sharedDir() + "/" + model; }

const QString kText = QStringLiteral(
    "In the beginning God created the heaven and the earth. And the earth was without form, and void; and darkness "
    "was upon the face of the deep. And the Spirit of God moved upon the face of the waters.\n"
    "And God said, Let there be light: and there was light.");

// The document positions whose character has a background (a mark or a shade), in order.
QVector<int> markedPositions(const QTextDocument* doc) {
    QVector<int> out;
    for (QTextBlock b = doc->begin(); b.isValid(); b = b.next())
        for (auto it = b.begin(); !it.atEnd(); ++it) {
            const QTextFragment f = it.fragment();
            if (f.charFormat().background().style() != Qt::NoBrush)
                for (int i = 0; i < f.length(); ++i) out << f.position() + i;
        }
    return out;
}

QVector<int> positions(int begin, int end) {
    QVector<int> out;
    for (int i = begin; i < end; ++i) out << i;
    return out;
}

QString percentText(float p) { return QString::number(100.0 * p, 'f', 1) + "%"; }

class CompareDivergence : public testing::Test {
protected:
    void SetUp() override {
        GUI_TEST_REQUIRE_MODELS(kDemo, kTinyGemma2, kTinyQwen2);
        view_ = std::make_unique<CompareView>();
        view_->resize(1366, 740);
        view_->show();
    }
    void TearDown() override { view_.reset(); }

    CompareView& cv() { return *view_; }
    DivergenceView& dv() { return *view_->divergenceView(); }

    // Loads (path, precision) pairs into the first panes.
    void loadPanes(std::initializer_list<std::pair<const char*, const char*>> models) {
        int slot = 0;
        for (const auto& [m, precision] : models) cv().setModel(slot++, shared(m), QString::fromLatin1(precision));
        ASSERT_TRUE(waitFor([&] { return !cv().isLoading() && cv().loadedCount() == slot; }, 60000));
    }

    // Runs the divergence of A and B on `text` and waits for its result or refusal.
    void diverge(int slotA, const QString& precisionA, int slotB, const QString& precisionB, const QString& text) {
        cv().setMode(CompareView::Mode::Divergence);
        ASSERT_TRUE(dv().chooseA(slotA, precisionA));
        ASSERT_TRUE(dv().chooseB(slotB, precisionB));
        dv().setText(text);
        QSignalSpy done(&dv(), &DivergenceView::finished);
        dv().run();
        ASSERT_TRUE(dv().isRunning());
        ASSERT_TRUE(done.wait(120000));
        ASSERT_FALSE(dv().isRunning());
    }

    // Greedy replies of up to `maxTokens` to `prompt` in every loaded pane.
    void runReplies(const QString& prompt, int maxTokens) {
        QSignalSpy done(&cv(), &CompareView::allFinished);
        cv().setMode(CompareView::Mode::Replies);
        cv().setPrompt(prompt);
        cv().setMaxTokens(maxTokens);
        cv().run();
        ASSERT_TRUE(cv().isRunning());
        ASSERT_TRUE(done.wait(120000));
    }

private:
    std::unique_ptr<CompareView> view_;
};

TEST_F(CompareDivergence, OffersTheLoadedPanesAsAAndB) {
    loadPanes({{kDemo, ""}, {kTinyGemma2, ""}});
    EXPECT_EQ(dv().candidateLabels(), (QStringList{"1: windowpane-demo-gemma2", "2: tiny-gemma2"}));
    auto* mode = cv().findChild<QTabBar*>("compareMode");
    ASSERT_NE(mode, nullptr);
    mode->setCurrentIndex(1);
    EXPECT_EQ(cv().mode(), CompareView::Mode::Divergence);
    EXPECT_TRUE(dv().isVisible());
}

TEST_F(CompareDivergence, TheDemoModelAgainstItselfHasNoDivergence) {
    loadPanes({{kDemo, ""}});
    diverge(0, "bf16", 0, "bf16", kText);
    ASSERT_TRUE(dv().hasResult()) << dv().statusText().toStdString();
    const wp::ui::DivergenceViewData& d = dv().result();
    // One file at one precision is one model: loaded once, read by both sides.
    EXPECT_EQ(dv().worker()->modelLoads(), 1);
    EXPECT_EQ(dv().worker()->heldModels(), 1);
    EXPECT_EQ(d.nameA, "windowpane-demo-gemma2 (bf16)");
    EXPECT_EQ(d.nameB, d.nameA);
    ASSERT_GT(d.positions(), 20);
    EXPECT_EQ(d.positions(), d.ids.size() - 1);
    EXPECT_EQ(d.stats.tokens, d.positions());
    for (int t = 0; t < d.positions(); ++t) {
        EXPECT_EQ(d.kl[t], 0.0) << t;
        EXPECT_TRUE(d.sameTop[t]) << t;
        EXPECT_EQ(d.logprobA[t], d.logprobB[t]) << t;
    }
    EXPECT_EQ(d.stats.meanKl, 0.0);
    EXPECT_EQ(d.stats.maxKl, 0.0);
    EXPECT_EQ(d.stats.sameTop, 1.0);
    EXPECT_DOUBLE_EQ(d.stats.pplRatio, 1.0);
    EXPECT_THAT(dv().summaryText().toStdString(), testing::HasSubstr("top-1 agreement 100.0%"));
    EXPECT_THAT(dv().summaryText().toStdString(), testing::HasSubstr("Mean KL 0 "));
    auto* summary = dv().findChild<QLabel*>("divergenceSummary");
    ASSERT_NE(summary, nullptr);
    EXPECT_THAT(summary->text().toStdString(), testing::HasSubstr("agreement <b>100.0%</b>"));
    // Nothing is shaded: every character of the text has no background.
    auto* tokens = dv().findChild<QTextBrowser*>("divergenceTokens");
    ASSERT_NE(tokens, nullptr);
    EXPECT_EQ(tokens->toPlainText(), kText);
    for (QTextBlock b = tokens->document()->begin(); b.isValid(); b = b.next())
        for (auto it = b.begin(); !it.atEnd(); ++it)
            EXPECT_EQ(it.fragment().charFormat().background().style(), Qt::NoBrush) << it.fragment().text().toStdString();
}

TEST_F(CompareDivergence, F32AgainstQ4DivergesAsCoreComputesAndTheTableJumps) {
    loadPanes({{kDemo, "f32"}, {kDemo, "q4"}});
    diverge(0, "f32", 1, "q4", kText);
    ASSERT_TRUE(dv().hasResult()) << dv().statusText().toStdString();
    const wp::ui::DivergenceViewData& d = dv().result();
    EXPECT_THAT(d.nameA.toStdString(), testing::HasSubstr("(f32)"));
    EXPECT_THAT(d.nameB.toStdString(), testing::HasSubstr("(q4)"));
    EXPECT_GT(d.stats.meanKl, 0.0);
    EXPECT_GT(d.stats.maxKl, d.stats.medianKl);
    EXPECT_LE(d.stats.sameTop, 1.0);
    EXPECT_GT(d.stats.pplA, 1.0);
    EXPECT_NE(d.stats.pplRatio, 1.0);

    // The same numbers as wp::diverge run here on the same tokens (the view's pieces are A's),
    // row by row: every position's KL, both log-probabilities, both top-5 ids and probabilities.
    wp::LoadOptions f32, q4;
    f32.precision = wp::Precision::F32;
    q4.precision = wp::Precision::Q4;
    f32.decode_choice_file = q4.decode_choice_file = wp::default_decode_choice_file();  // as the worker loads
    const auto a = wp::LoadedModel::load(shared(kDemo).toStdString(), {}, f32);
    const auto b = wp::LoadedModel::load(shared(kDemo).toStdString(), {}, q4);
    const std::vector<int> ids = a->tokenizer().encode(kText.toStdString(), true);
    ASSERT_EQ(std::vector<int>(d.ids.begin(), d.ids.end()), ids);
    const wp::Divergence ref = wp::diverge(a->model(), b->model(), ids);
    ASSERT_EQ(d.positions(), static_cast<int>(ref.positions.size()));
    ASSERT_EQ(d.topK, ref.top_k);
    ASSERT_EQ(d.topIdA.size(), d.positions() * d.topK);
    ASSERT_EQ(d.topIdB.size(), d.positions() * d.topK);
    ASSERT_EQ(d.topProbA.size(), d.positions() * d.topK);
    for (int t = 0; t < d.positions(); ++t) {
        SCOPED_TRACE(t);
        const wp::TokenDivergence& r = ref.positions[static_cast<std::size_t>(t)];
        EXPECT_NEAR(d.kl[t], r.kl, 1e-9 + 1e-6 * r.kl);
        EXPECT_EQ(d.sameTop[t], r.same_top);
        EXPECT_NEAR(d.logprobA[t], r.logprob_a, 1e-6);
        EXPECT_NEAR(d.logprobB[t], r.logprob_b, 1e-6);
        for (int k = 0; k < d.topK; ++k) {
            const int i = t * d.topK + k;
            EXPECT_EQ(d.topIdA[i], ref.top_ids_a[static_cast<std::size_t>(i)]) << k;
            EXPECT_EQ(d.topIdB[i], ref.top_ids_b[static_cast<std::size_t>(i)]) << k;
            EXPECT_NEAR(d.topProbA[i], ref.top_probs_a[static_cast<std::size_t>(i)], 1e-6) << k;
            EXPECT_NEAR(d.topProbB[i], ref.top_probs_b[static_cast<std::size_t>(i)], 1e-6) << k;
        }
    }
    EXPECT_NEAR(d.stats.meanKl, ref.summary.mean_kl, 1e-6 * ref.summary.mean_kl + 1e-12);
    EXPECT_EQ(d.stats.sameTop, ref.summary.same_top);
    EXPECT_NEAR(d.stats.pplB, ref.summary.ppl_b, 1e-6 * ref.summary.ppl_b);

    // The table lists every prediction, the worst first; a click on a row marks its token.
    auto* table = dv().findChild<QTableView*>("divergenceTable");
    ASSERT_NE(table, nullptr);
    ASSERT_EQ(table->model()->rowCount(), d.positions());
    const int worst = dv().tokenInRow(0);
    ASSERT_GE(worst, 1);
    EXPECT_EQ(d.kl[worst - 1], d.stats.maxKl);
    for (int row = 1; row < table->model()->rowCount(); ++row) {
        EXPECT_LE(d.kl[dv().tokenInRow(row) - 1], d.kl[dv().tokenInRow(row - 1) - 1]) << row;
        EXPECT_EQ(table->model()->index(row, 0).data().toString(), QString::number(dv().tokenInRow(row) + 1));
    }
    table->setCurrentIndex(table->model()->index(0, 1));
    EXPECT_EQ(dv().markedToken(), worst);
    auto* tokens = dv().findChild<QTextBrowser*>("divergenceTokens");
    ASSERT_NE(tokens, nullptr);
    ASSERT_EQ(tokens->extraSelections().size(), 1);
    EXPECT_EQ(tokens->extraSelections().front().cursor.selectionStart(), d.begin[worst]);
    EXPECT_EQ(tokens->extraSelections().front().cursor.selectionEnd(), d.end[worst]);
    // The worst token is shaded fullest.
    QTextCursor at(tokens->document());
    at.setPosition(d.begin[worst] + 1);
    EXPECT_EQ(at.charFormat().background().color().alpha(), 220);

    // Hovering the token shows both models' top 5 and each one's log-probability of it.
    const QRect r = dv().tokenRect(worst);
    ASSERT_TRUE(r.isValid());
    EXPECT_EQ(dv().tokenAt(r.center()), worst);
    const QString tip = dv().tokenToolTip(worst);
    EXPECT_TRUE(tip.startsWith("<b>")) << tip.toStdString();
    for (int k = 0; k < d.topK; ++k) {
        EXPECT_TRUE(tip.contains(QString::number(100.0 * d.topProbA[(worst - 1) * d.topK + k], 'f', 1) + "%")) << k;
        EXPECT_TRUE(tip.contains(QString::number(100.0 * d.topProbB[(worst - 1) * d.topK + k], 'f', 1) + "%")) << k;
    }
    EXPECT_TRUE(tip.contains(QString::number(d.logprobA[worst - 1], 'f', 3)));
    EXPECT_TRUE(tip.contains(QString::number(d.logprobB[worst - 1], 'f', 3)));
    EXPECT_TRUE(tip.contains("Model A") && tip.contains("Model B"));

    // Sorted by position instead, row 0 is the first prediction.
    table->sortByColumn(0, Qt::AscendingOrder);
    EXPECT_EQ(dv().tokenInRow(0), 1);
    EXPECT_EQ(dv().tokenInRow(d.positions() - 1), d.positions());
    // The marked token's row stays current through the sort.
    EXPECT_EQ(dv().tokenInRow(table->currentIndex().row()), worst);
    table->sortByColumn(2, Qt::DescendingOrder);
    table->setCurrentIndex(table->model()->index(1, 1));
    EXPECT_EQ(dv().markedToken(), dv().tokenInRow(1));
    // A jump made elsewhere moves the table's current row to the token.
    dv().jumpToToken(3);
    EXPECT_EQ(dv().tokenInRow(table->currentIndex().row()), 3);
}

TEST_F(CompareDivergence, TwoVocabulariesAreRefusedWithTheReason) {
    loadPanes({{kTinyGemma2, ""}, {kTinyQwen2, ""}});
    std::string reason;
    {
        const auto a = wp::LoadedModel::load(shared(kTinyGemma2).toStdString());
        const auto b = wp::LoadedModel::load(shared(kTinyQwen2).toStdString());
        try {
            wp::check_same_vocabulary(a->tokenizer(), b->tokenizer());
        } catch (const wp::Error& e) {
            reason = e.what();
        }
    }
    ASSERT_FALSE(reason.empty()) << "the fixtures' vocabularies should differ";
    diverge(0, "", 1, "", kText);
    EXPECT_FALSE(dv().hasResult());
    EXPECT_THAT(dv().statusText().toStdString(), testing::HasSubstr("cannot be compared token for token"));
    EXPECT_THAT(dv().statusText().toStdString(), testing::HasSubstr(reason));
    auto* summary = dv().findChild<QLabel*>("divergenceSummary");
    ASSERT_NE(summary, nullptr);
    EXPECT_TRUE(summary->isVisible());
    EXPECT_THAT(summary->text().toStdString(), testing::HasSubstr("cannot be compared"));
    EXPECT_EQ(dv().findChild<QTableView*>("divergenceTable")->model()->rowCount(), 0);
    QTest::qWait(50);
    EXPECT_TRUE(cv().grab().save(screenshotPath("gui-compare-divergence-refused")));
}

// A text of two passes of the demo model or more (512 tokens a pass, 1024 in its context).
QString twoPassText() {
    const auto lm = wp::LoadedModel::load(shared(kDemo).toStdString());
    QString text;
    while (lm->tokenizer().encode(text.toStdString(), true).size() < 700) text += kText + "\n";
    return text;
}

TEST_F(CompareDivergence, StopMidComparisonStopsTheWorkerAndDropsItsResult) {
    loadPanes({{kDemo, ""}});
    cv().setMode(CompareView::Mode::Divergence);
    ASSERT_TRUE(dv().chooseA(0, "f32"));
    ASSERT_TRUE(dv().chooseB(0, "q8"));
    dv().setText(twoPassText());
    // The worker waits after its first pass until Stop has been pressed: Stop lands mid-comparison.
    std::atomic<bool> paused{false};
    QSemaphore resume;
    DivergenceWorker* w = dv().worker();
    const auto pause = QObject::connect(w, &DivergenceWorker::progress, w, [&](quint64, const QString& stage, double f) {
        if (stage == "Comparing" && f > 0 && f < 1 && !paused.exchange(true)) resume.acquire();
    }, Qt::DirectConnection);
    std::atomic<int> results{0};  // what the worker sends, dropped by the view or not
    const auto count = QObject::connect(w, &DivergenceWorker::diverged, w, [&] { ++results; }, Qt::DirectConnection);
    QSignalSpy done(&dv(), &DivergenceView::finished);
    dv().run();
    ASSERT_TRUE(dv().isRunning());
    ASSERT_TRUE(waitFor([&] { return paused.load(); }, 60000));
    EXPECT_EQ(dv().statusText(), "Comparing");
    dv().stop();
    resume.release();
    EXPECT_FALSE(dv().isRunning());
    EXPECT_EQ(dv().statusText(), "Stopped.");
    QObject::disconnect(pause);

    // The worker gives up at its next pass (wp::Cancelled): the next run is answered at once,
    // and the stopped one never sends a result.
    dv().setText(kText);
    dv().run();
    ASSERT_TRUE(done.wait(30000));
    ASSERT_TRUE(dv().hasResult()) << dv().statusText().toStdString();
    EXPECT_EQ(done.count(), 1);
    // The worker counts after it posted the result to the view: wait for the second run's count;
    // a result of the first would have been counted before the second run started.
    EXPECT_TRUE(waitFor([&] { return results.load() >= 1; }, 5000));
    EXPECT_EQ(results.load(), 1);
    EXPECT_GT(dv().result().positions(), 20);
    EXPECT_LT(dv().result().positions(), 200);  // the short text's result, not the long one's
    QObject::disconnect(count);
}

TEST_F(CompareDivergence, ACancelFlagSetMidwayThrowsCancelled) {
    const auto lm = wp::LoadedModel::load(shared(kDemo).toStdString());
    std::atomic<bool> cancel{false};
    int passes = 0;
    EXPECT_THROW(wp::ui::divergeText(*lm, "A", *lm, "B", twoPassText(), [&](double) {
                     ++passes;
                     cancel = true;
                 }, &cancel),
                 wp::Cancelled);
    EXPECT_EQ(passes, 1);
}

TEST_F(CompareDivergence, AModelThatFailsToLoadIsNamed) {
    loadPanes({{kDemo, ""}});
    QTemporaryDir broken;  // a folder with no model in it
    ASSERT_TRUE(broken.isValid());
    cv().setMode(CompareView::Mode::Divergence);
    dv().setCandidates({{0, "windowpane-demo-gemma2", shared(kDemo), "f32"}, {1, "broken:latest", broken.path(), "f32"}});
    dv().setText(kText);
    for (const char* side : {"B", "A"}) {
        SCOPED_TRACE(side);
        const bool brokenIsB = side == std::string("B");
        ASSERT_TRUE(dv().chooseA(brokenIsB ? 0 : 1));
        ASSERT_TRUE(dv().chooseB(brokenIsB ? 1 : 0));
        QSignalSpy done(&dv(), &DivergenceView::finished);
        dv().run();
        ASSERT_TRUE(dv().isRunning()) << dv().statusText().toStdString();
        ASSERT_TRUE(done.wait(60000)) << dv().statusText().toStdString();
        EXPECT_FALSE(dv().hasResult());
        EXPECT_THAT(dv().statusText().toStdString(),
                    testing::StartsWith(QStringLiteral("Could not load model %1 (broken:latest): ").arg(side).toStdString()));
        EXPECT_THAT(dv().findChild<QLabel*>("divergenceSummary")->text().toStdString(),
                    testing::HasSubstr("Could not load model"));
    }
}

// The models stay for the next run while the user is in Divergence mode, and go when they leave
// it, when a pane loads another model, and when the view closes.
TEST_F(CompareDivergence, TheModelsAreKeptForReRunsAndFreedOnLeaving) {
    loadPanes({{kDemo, "f32"}, {kDemo, "q4"}});
    DivergenceWorker* w = dv().worker();
    diverge(0, "f32", 1, "q4", kText);
    ASSERT_TRUE(dv().hasResult()) << dv().statusText().toStdString();
    EXPECT_EQ(w->heldModels(), 2);
    EXPECT_EQ(w->modelLoads(), 2);
    diverge(0, "f32", 1, "q4", kText.left(60));
    ASSERT_TRUE(dv().hasResult()) << dv().statusText().toStdString();
    EXPECT_EQ(w->modelLoads(), 2);  // kept: nothing loaded again
    EXPECT_EQ(w->heldModels(), 2);

    cv().setMode(CompareView::Mode::Replies);
    EXPECT_TRUE(waitFor([&] { return w->heldModels() == 0; }, 10000));

    diverge(0, "f32", 1, "q4", kText);
    EXPECT_EQ(w->modelLoads(), 4);
    EXPECT_EQ(w->heldModels(), 2);
    cv().setModel(2, shared(kTinyGemma2));  // in Divergence mode still
    EXPECT_TRUE(waitFor([&] { return w->heldModels() == 0; }, 10000));
    ASSERT_TRUE(waitFor([&] { return !cv().isLoading(); }, 60000));

    diverge(0, "f32", 0, "f32", kText);
    EXPECT_EQ(w->heldModels(), 1);
    cv().close();
    EXPECT_TRUE(waitFor([&] { return w->heldModels() == 0; }, 10000));
}

// A long result: the table is a model read on demand, so 32k tokens show at once.
wp::ui::DivergenceViewData syntheticResult(int tokens) {
    wp::ui::DivergenceViewData d;
    d.nameA = "A (f32)";
    d.nameB = "B (q4)";
    d.topK = 5;
    d.ids << 2;
    d.pieces << "<bos>";
    d.begin << 0;
    d.end << 0;
    quint32 seed = 12345;
    const auto next = [&] {
        seed = seed * 1664525u + 1013904223u;
        return (seed >> 8) / double(1 << 24);
    };
    for (int i = 1; i < tokens; ++i) {
        const QString piece = i % 11 == 0 ? QStringLiteral("\n") : QStringLiteral(" w%1").arg(i % 997);
        d.ids << 100 + i % 997;
        d.pieces << piece;
        d.begin << static_cast<int>(d.text.size());
        d.text += piece;
        d.end << static_cast<int>(d.text.size());
    }
    for (int t = 0; t + 1 < tokens; ++t) {
        const double u = next();
        d.kl << std::pow(u, 6) * 2;  // mostly small, a few large
        d.sameTop << (u < 0.9);
        d.logprobA << -3 * next();
        d.logprobB << -3 * next();
        for (int k = 0; k < d.topK; ++k) {
            d.topIdA << d.ids[t + 1] + k;
            d.topIdB << d.ids[t + 1] + k;
            d.topTextA << d.pieces[t + 1];
            d.topTextB << d.pieces[t + 1];
            d.topProbA << 0.5f / (k + 1);
            d.topProbB << 0.5f / (k + 1);
        }
    }
    QVector<double> sorted = d.kl;
    std::sort(sorted.begin(), sorted.end());
    d.stats.tokens = d.positions();
    d.stats.meanKl = std::accumulate(sorted.begin(), sorted.end(), 0.0) / sorted.size();
    d.stats.medianKl = sorted[sorted.size() / 2];
    d.stats.p99Kl = sorted[sorted.size() * 99 / 100];
    d.stats.maxKl = sorted.last();
    d.stats.pplA = d.stats.pplB = d.stats.pplRatio = 1;
    return d;
}

// A long context's result: the table is a model over the result (no item per row), sorted and
// jumped through by index. (Its speed, ~30 ms for 32k tokens here, is measured by hand, not asserted.)
TEST_F(CompareDivergence, A32kTokenResultShowsWholeSortsAndJumps) {
    cv().setMode(CompareView::Mode::Divergence);
    const wp::ui::DivergenceViewData d = syntheticResult(32768);
    QElapsedTimer timer;
    timer.start();
    dv().showResult(d);
    QCoreApplication::processEvents();  // and painted
    std::cout << "32k tokens shown in " << timer.elapsed() << " ms\n";
    auto* table = dv().findChild<QTableView*>("divergenceTable");
    ASSERT_EQ(table->model()->rowCount(), d.positions());
    EXPECT_EQ(d.kl[dv().tokenInRow(0) - 1], d.stats.maxKl);
    auto* tokens = dv().findChild<QTextBrowser*>("divergenceTokens");
    EXPECT_EQ(tokens->toPlainText(), d.text);
    table->sortByColumn(0, Qt::AscendingOrder);
    dv().jumpToToken(30000);
    QCoreApplication::processEvents();
    EXPECT_EQ(dv().tokenInRow(table->currentIndex().row()), 30000);
    EXPECT_EQ(dv().tokenInRow(0), 1);
}

// Pieces with "%1" and the like are shown as they are, and the actual token is bold by its id,
// not by its text: another token that decodes alike stays plain.
TEST_F(CompareDivergence, TheTooltipKeepsPercentSignsAndBoldsTheActualTokenById) {
    wp::ui::DivergenceViewData d = syntheticResult(8);
    d.pieces[3] = QStringLiteral("%1%2");
    for (int k = 0; k < d.topK; ++k) {
        const int i = 2 * d.topK + k;  // the prediction of token 3
        d.topIdA[i] = 500 + k;
        d.topTextA[i] = QStringLiteral("%1%2");  // every one decodes alike...
        d.topIdB[i] = 600 + k;
        d.topTextB[i] = QStringLiteral("50%3");
    }
    d.topIdA[2 * d.topK + 2] = d.ids[3];  // ...but only the third is the token
    d.topIdB[2 * d.topK + 4] = d.ids[3];
    dv().showResult(d);
    const QString tip = dv().tokenToolTip(3);
    EXPECT_TRUE(tip.startsWith("<b>%1%2</b> \u2014 token 4 \u00b7 KL")) << tip.toStdString();
    EXPECT_EQ(tip.count("<b>%1%2</b>"), 2) << tip.toStdString();  // the title and A's third
    EXPECT_EQ(tip.count("<b>50%3</b>"), 1) << tip.toStdString();
    EXPECT_EQ(tip.count("<td>%1%2</td>"), 4) << tip.toStdString();
    EXPECT_EQ(tip.count("<td>50%3</td>"), 4) << tip.toStdString();
}

TEST_F(CompareDivergence, UseCurrentConversationTakesThePromptAndReplies) {
    loadPanes({{kDemo, ""}, {kTinyGemma2, ""}});
    runReplies("Who made the light?", 12);
    cv().setMode(CompareView::Mode::Divergence);
    auto* use = dv().findChild<QPushButton*>("divergenceUseConversation");
    ASSERT_NE(use, nullptr);
    use->click();
    const QString expected = QStringList{"Who made the light?", cv().replyText(0).trimmed(), cv().replyText(1).trimmed()}.join("\n\n");
    EXPECT_EQ(dv().text(), expected);
    EXPECT_EQ(cv().conversationText(), expected);
    // The chat's open conversation, when the main window gives one, comes first.
    cv().setChatConversation({{"user", "In the beginning"}, {"assistant", " God created. "}});
    use->click();
    EXPECT_EQ(dv().text(), QStringLiteral("In the beginning\n\nGod created."));
    cv().setChatConversation({});
    EXPECT_EQ(cv().conversationText(), expected);
}

// ---- the first parting of greedy replies ---------------------------------------------------

int firstDifference(const QVector<int>& a, const QVector<int>& b) {
    for (qsizetype i = 0; i < std::min(a.size(), b.size()); ++i)
        if (a[i] != b[i]) return static_cast<int>(i);
    return -1;
}

TEST_F(CompareDivergence, GreedyRepliesAreMarkedWhereTheyFirstPart) {
    loadPanes({{kDemo, "f32"}, {kDemo, "q4"}});
    EXPECT_EQ(cv().card(0).vocabFingerprint, cv().card(1).vocabFingerprint);
    EXPECT_FALSE(cv().card(0).vocabFingerprint.isEmpty());
    runReplies("And God said", 64);
    const QVector<int> a = cv().replyTokenIds(0), b = cv().replyTokenIds(1);
    ASSERT_FALSE(a.isEmpty());
    const int parting = firstDifference(a, b);
    ASSERT_GE(parting, 0) << "f32 and q4 should choose differently within 64 tokens";
    EXPECT_EQ(cv().partingTokens(1), QVector<int>{parting});
    EXPECT_EQ(cv().partingTokens(0), QVector<int>{parting});
    for (int slot : {0, 1}) {
        SCOPED_TRACE(slot);
        auto* label = cv().findChild<QLabel*>(QStringLiteral("compareParting%1").arg(slot));
        ASSERT_NE(label, nullptr);
        EXPECT_TRUE(label->isVisible());
        const std::string banner = cv().partingText(slot).toStdString();
        EXPECT_THAT(banner, testing::HasSubstr(QStringLiteral("Parts from pane %1").arg(2 - slot).toStdString()));
        EXPECT_THAT(banner, testing::HasSubstr(QStringLiteral("at token %1").arg(parting + 1).toStdString()));
        // Both tokens' probabilities under both models: this model's of its own token and of the
        // other's (or that it is not in its top 5), and the other model's of both.
        const QVector<wp::ui::ReplyToken> mine = cv().replyTokens(slot), theirs = cv().replyTokens(1 - slot);
        const auto probabilityOf = [](const wp::ui::ReplyToken& t, int id) -> QString {
            for (const wp::ui::TokenAlternativeInfo& alt : t.top)
                if (alt.id == id) return percentText(alt.probability);
            return "not in its top 5";
        };
        EXPECT_THAT(banner, testing::HasSubstr(QStringLiteral("” %1,").arg(percentText(mine[parting].probability)).toStdString()));
        EXPECT_THAT(banner, testing::HasSubstr(probabilityOf(mine[parting], theirs[parting].id).toStdString()));
        EXPECT_THAT(banner, testing::HasSubstr(percentText(theirs[parting].probability).toStdString()));
        EXPECT_THAT(banner, testing::HasSubstr(probabilityOf(theirs[parting], mine[parting].id).toStdString()));
        // The mark covers exactly the parting token's characters (or the next token's with text
        // of its own), and those characters are the token's.
        auto* out = cv().findChild<QTextBrowser*>(QStringLiteral("compareOutput%1").arg(slot));
        ASSERT_NE(out, nullptr);
        int i = parting;
        while (i < mine.size() && mine[i].begin >= mine[i].end) ++i;
        ASSERT_LT(i, mine.size());
        EXPECT_EQ(markedPositions(out->document()), positions(mine[i].begin, mine[i].end));
        QTextCursor c(out->document());
        c.setPosition(mine[i].begin);
        c.setPosition(mine[i].end, QTextCursor::KeepAnchor);
        if (i == parting) {
            EXPECT_EQ(c.selectedText(), mine[parting].piece);
        }
        EXPECT_EQ(cv().replyText(slot).left(mine[i].begin) + c.selectedText(), cv().replyText(slot).left(mine[i].end));
    }
    QTest::qWait(50);
    EXPECT_TRUE(cv().grab().save(screenshotPath("gui-compare-parting-panes")));
}

TEST_F(CompareDivergence, RepliesOfTwoVocabulariesAreNotCompared) {
    loadPanes({{kTinyGemma2, ""}, {kTinyQwen2, ""}});
    EXPECT_NE(cv().card(0).vocabFingerprint, cv().card(1).vocabFingerprint);
    runReplies("In the beginning", 16);
    EXPECT_TRUE(cv().partingTokens(0).isEmpty());
    EXPECT_TRUE(cv().partingTokens(1).isEmpty());
    EXPECT_FALSE(cv().findChild<QLabel*>("compareParting1")->isVisible());
}

// Every pair of panes of one vocabulary is compared, whichever panes they are: pane 1 of another
// vocabulary leaves panes 2 and 3 to each other.
TEST_F(CompareDivergence, ThreePanesComparePanesOfOneVocabulary) {
    loadPanes({{kTinyQwen2, ""}, {kDemo, "f32"}, {kDemo, "q4"}});
    runReplies("And God said", 48);
    const QVector<int> b = cv().replyTokenIds(1), c = cv().replyTokenIds(2);
    const int parting = firstDifference(b, c);
    ASSERT_GE(parting, 0);
    EXPECT_TRUE(cv().partingTokens(0).isEmpty());
    EXPECT_FALSE(cv().findChild<QLabel*>("compareParting0")->isVisible());
    EXPECT_EQ(cv().partingTokens(1), QVector<int>{parting});
    EXPECT_EQ(cv().partingTokens(2), QVector<int>{parting});
    EXPECT_THAT(cv().partingText(1).toStdString(), testing::HasSubstr("Parts from pane 3"));
    EXPECT_THAT(cv().partingText(2).toStdString(), testing::HasSubstr("Parts from pane 2"));
    EXPECT_THAT(cv().partingText(1).toStdString(), testing::Not(testing::HasSubstr("pane 1")));
}

// Three panes of one vocabulary: each pane shows where it parts from each of the two others.
TEST_F(CompareDivergence, ThreePanesOfOneVocabularyCompareEveryPair) {
    loadPanes({{kDemo, "f32"}, {kDemo, "q4"}, {kDemo, "q8"}});
    runReplies("And God said", 48);
    const QVector<int> ids[3] = {cv().replyTokenIds(0), cv().replyTokenIds(1), cv().replyTokenIds(2)};
    ASSERT_GE(firstDifference(ids[0], ids[1]), 0);
    for (int slot = 0; slot < 3; ++slot) {
        SCOPED_TRACE(slot);
        QVector<int> expected;
        QStringList from;
        for (int other = 0; other < 3; ++other)
            if (other != slot)
                if (const int at = firstDifference(ids[slot], ids[other]); at >= 0) {
                    expected << at;
                    from << QStringLiteral("Parts from pane %1").arg(other + 1);
                }
        std::sort(expected.begin(), expected.end());
        EXPECT_EQ(cv().partingTokens(slot), expected);
        for (const QString& f : from) EXPECT_THAT(cv().partingText(slot).toStdString(), testing::HasSubstr(f.toStdString()));
    }
}

// A reply with "\r\n": the document keeps it as one character, and the mark is still on the
// parting token's characters, as the tokens stream and once the reply is set anew at its end.
TEST_F(CompareDivergence, TheMarkIsOnThePartingTokenAfterACarriageReturn) {
    loadPanes({{kTinyGemma2, ""}, {kTinyGemma2, ""}});
    CompareViewTestAccess::start(cv(), {0, 1});
    const QList<std::pair<int, QString>> shared = {{10, "Hi"}, {11, "\r\n"}, {12, "there"}, {13, "\r\n"}};
    for (const auto& [id, text] : shared)
        for (int slot : {0, 1}) CompareViewTestAccess::token(cv(), slot, id, text);
    CompareViewTestAccess::token(cv(), 0, 20, " A!");
    CompareViewTestAccess::token(cv(), 1, 21, " B?");
    CompareViewTestAccess::token(cv(), 0, 22, " end");
    CompareViewTestAccess::token(cv(), 1, 22, " end");
    auto* out = cv().findChild<QTextBrowser*>("compareOutput0");
    const auto check = [&] {
        EXPECT_EQ(cv().partingTokens(0), QVector<int>{4});
        EXPECT_EQ(cv().partingTokens(1), QVector<int>{4});
        const QString doc = out->document()->toPlainText();
        ASSERT_EQ(doc, "Hi\nthere\n A! end");
        const int at = static_cast<int>(doc.indexOf(" A!"));
        EXPECT_EQ(markedPositions(out->document()), positions(at, at + 3));
        EXPECT_EQ(cv().replyTokens(0)[4].begin, at);
        EXPECT_EQ(cv().replyTokens(0)[4].end, at + 3);
    };
    {
        SCOPED_TRACE("streaming");
        check();
    }
    CompareViewTestAccess::finish(cv(), 0);
    CompareViewTestAccess::finish(cv(), 1);
    {
        SCOPED_TRACE("finished");
        check();
    }
    EXPECT_EQ(cv().replyText(0), "Hi\r\nthere\r\n A! end");
}

// A pane whose run fails no longer parts from anything: the other pane's banner and mark go.
TEST_F(CompareDivergence, ARunErrorClearsThePartings) {
    loadPanes({{kTinyGemma2, ""}, {kTinyGemma2, ""}});
    CompareViewTestAccess::start(cv(), {0, 1});
    for (int slot : {0, 1}) CompareViewTestAccess::token(cv(), slot, 10, "Once");
    CompareViewTestAccess::token(cv(), 0, 11, " upon");
    CompareViewTestAccess::token(cv(), 1, 12, " more");
    CompareViewTestAccess::finish(cv(), 0);
    ASSERT_EQ(cv().partingTokens(0), QVector<int>{1});
    auto* banner = cv().findChild<QLabel*>("compareParting0");
    ASSERT_TRUE(banner->isVisible());
    auto* out = cv().findChild<QTextBrowser*>("compareOutput0");
    ASSERT_FALSE(markedPositions(out->document()).isEmpty());

    CompareViewTestAccess::fail(cv(), 1, "out of memory");
    EXPECT_TRUE(cv().partingTokens(0).isEmpty());
    EXPECT_TRUE(cv().partingTokens(1).isEmpty());
    EXPECT_FALSE(banner->isVisible());
    EXPECT_FALSE(cv().findChild<QLabel*>("compareParting1")->isVisible());
    EXPECT_TRUE(markedPositions(out->document()).isEmpty());
    EXPECT_EQ(cv().replyText(0), "Once upon");
    EXPECT_FALSE(cv().isRunning());
}

// The app's compare tab at the test screen's size, for people to look at: greedy replies of the
// demo model at f32 and q4 marked where they part, then the divergence of the two on a longer text
// with its worst token picked, and that token's tooltip.
TEST_F(CompareDivergence, ScreenshotsInTheAppWindow) {
    QTemporaryDir dir;
    ASSERT_TRUE(dir.isValid());
    wp::ui::AppOptions o;
    o.modelPath = shared(kDemo);
    o.dataDir = dir.path() + "/data";
    o.settingsFile = dir.path() + "/settings.ini";
    wp::ui::MainWindow w(o);
    w.show();
    ASSERT_TRUE(waitFor([&] { return !w.isLoading() && !w.modelCard().path.isEmpty(); }));
    for (QDockWidget* dock : w.findChildren<QDockWidget*>()) dock->close();
    auto* tabs = w.findChild<QTabWidget*>("mainTabs");
    ASSERT_NE(tabs, nullptr);
    CompareView* view = w.compareView();
    tabs->setCurrentWidget(view);
    view->setModel(0, shared(kDemo), "f32");
    view->setModel(1, shared(kDemo), "q4");
    ASSERT_TRUE(waitFor([&] { return !view->isLoading() && view->loadedCount() == 2; }));
    QSignalSpy done(view, &CompareView::allFinished);
    view->setPrompt("And God said");
    view->setMaxTokens(64);
    view->run();
    ASSERT_TRUE(done.wait(60000));
    ASSERT_FALSE(view->partingTokens(1).isEmpty());
    QTest::qWait(100);
    EXPECT_TRUE(w.grab().save(screenshotPath("gui-compare-parting")));

    view->setMode(CompareView::Mode::Divergence);
    DivergenceView* d = view->divergenceView();
    ASSERT_TRUE(d->chooseA(0));
    ASSERT_TRUE(d->chooseB(1));
    d->setText(kText + QStringLiteral(
        "\nAnd God saw the light, that it was good: and God divided the light from the darkness. And God called the "
        "light Day, and the darkness he called Night. And the evening and the morning were the first day.\n"
        "The LORD is my shepherd; I shall not want. He maketh me to lie down in green pastures: he leadeth me beside "
        "the still waters. He restoreth my soul: he leadeth me in the paths of righteousness for his name's sake.\n"
        "The quick brown fox jumps over the lazy dog while the network reboots the server."));
    QSignalSpy diverged(d, &DivergenceView::finished);
    d->run();
    ASSERT_TRUE(diverged.wait(60000));
    ASSERT_TRUE(d->hasResult()) << d->statusText().toStdString();
    auto* table = d->findChild<QTableView*>("divergenceTable");
    table->setCurrentIndex(table->model()->index(0, 1));  // the worst token
    QTest::qWait(100);
    EXPECT_TRUE(w.grab().save(screenshotPath("gui-compare-divergence")));

    // Its tooltip, as hovering shows it.
    auto* text = d->findChild<QTextBrowser*>("divergenceTokens");
    const QRect r = d->tokenRect(d->markedToken());
    ASSERT_TRUE(r.isValid());
    QHelpEvent help(QEvent::ToolTip, r.center(), text->viewport()->mapToGlobal(r.center()));
    QApplication::sendEvent(text->viewport(), &help);
    QWidget* tip = nullptr;
    ASSERT_TRUE(waitFor([&] {
        for (QWidget* t : QApplication::topLevelWidgets())
            if (t->inherits("QTipLabel") && t->isVisible()) tip = t;
        return tip != nullptr;
    }, 3000));
    EXPECT_TRUE(tip->grab().save(screenshotPath("gui-compare-divergence-tooltip")));
}

}  // namespace

int main(int argc, char** argv) { return gui_test::runGuiTests(argc, argv, {1366, 768}); }
