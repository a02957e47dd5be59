// The compare view's Divergence mode and the first parting of greedy replies, offscreen: the demo
// model against itself gives KL 0 and full agreement; at f32 against q4 the KL is positive and
// equals wp::diverge run here; two vocabularies are refused with core's reason in the view; the
// token table jumps to a token; greedy replies of the demo model at two precisions are marked at
// the first token where their ids differ, and models of two vocabularies are not compared.
// Screenshots of both go to the build's screenshots folder.
//
// The offscreen screen is 1366 x 768, as for wp_gui_tests.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <QApplication>
#include <QDockWidget>
#include <QHelpEvent>
#include <QLabel>
#include <QTabWidget>
#include <QTemporaryDir>
#include <QPushButton>
#include <QSignalSpy>
#include <QTabBar>
#include <QTableWidget>
#include <QTextBlock>
#include <QTextBrowser>
#include <QTextCursor>
#include <algorithm>
#include <memory>

#include "gui_test_support.h"
#include "main_window.h"
#include "widgets/compare_view.h"
#include "widgets/divergence_view.h"
#include "wp/error.h"
#include "wp/generate/chat_session.h"
#include "wp/model/divergence.h"

namespace {

using namespace gui_test;
using wp::ui::CompareView;
using wp::ui::DivergenceView;

const char* const kDemo = "models/windowpane-demo-gemma2";
const char* const kTinyGemma2 = "fixtures/tiny-gemma2";
const char* const kTinyQwen2 = "fixtures/tiny-qwen2";

QString shared(const char* model) { return sharedDir() + "/" + model; }

const QString kText = QStringLiteral(
    "In the beginning God created the heaven and the earth. And the earth was without form, and void; and darkness "
    "was upon the face of the deep. And the Spirit of God moved upon the face of the waters.\n"
    "And God said, Let there be light: and there was light.");

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

    // The same numbers as wp::diverge run here on the same tokens (the view's pieces are A's).
    wp::LoadOptions f32, q4;
    f32.precision = wp::Precision::F32;
    q4.precision = wp::Precision::Q4;
    const auto a = wp::LoadedModel::load(shared(kDemo).toStdString(), {}, f32);
    const auto b = wp::LoadedModel::load(shared(kDemo).toStdString(), {}, q4);
    const std::vector<int> ids = a->tokenizer().encode(kText.toStdString(), true);
    ASSERT_EQ(std::vector<int>(d.ids.begin(), d.ids.end()), ids);
    const wp::Divergence ref = wp::diverge(a->model(), b->model(), ids);
    EXPECT_NEAR(d.stats.meanKl, ref.summary.mean_kl, 1e-3 * ref.summary.mean_kl + 1e-9);
    EXPECT_NEAR(d.stats.sameTop, ref.summary.same_top, 0.02);
    EXPECT_NEAR(d.stats.pplB, ref.summary.ppl_b, 1e-3 * ref.summary.ppl_b);

    // The table lists every prediction, the worst first; a click on a row marks its token.
    auto* table = dv().findChild<QTableWidget*>("divergenceTable");
    ASSERT_NE(table, nullptr);
    ASSERT_EQ(table->rowCount(), d.positions());
    const int worst = dv().tokenInRow(0);
    ASSERT_GE(worst, 1);
    EXPECT_EQ(d.kl[worst - 1], d.stats.maxKl);
    for (int row = 1; row < table->rowCount(); ++row) EXPECT_LE(d.kl[dv().tokenInRow(row) - 1], d.kl[worst - 1]);
    table->setCurrentCell(0, 1);
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
    table->sortByColumn(2, Qt::DescendingOrder);
    table->setCurrentCell(1, 1);
    EXPECT_EQ(dv().markedToken(), dv().tokenInRow(1));
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
    EXPECT_EQ(dv().findChild<QTableWidget*>("divergenceTable")->rowCount(), 0);
    QTest::qWait(50);
    EXPECT_TRUE(cv().grab().save(screenshotPath("gui-compare-divergence-refused")));
}

TEST_F(CompareDivergence, StopDropsTheRunAndALateResult) {
    loadPanes({{kDemo, ""}});
    cv().setMode(CompareView::Mode::Divergence);
    dv().chooseA(0, "f32");
    dv().chooseB(0, "q8");
    QString text;
    for (int i = 0; i < 6; ++i) text += kText + "\n";
    dv().setText(text);
    QSignalSpy done(&dv(), &DivergenceView::finished);
    dv().run();
    ASSERT_TRUE(dv().isRunning());
    dv().stop();
    EXPECT_FALSE(dv().isRunning());
    EXPECT_EQ(dv().statusText(), "Stopped.");
    QTest::qWait(3000);  // whatever the worker still sends is dropped
    EXPECT_TRUE(done.isEmpty());
    EXPECT_FALSE(dv().hasResult());
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
        EXPECT_THAT(cv().partingText(slot).toStdString(),
                    testing::HasSubstr(QStringLiteral("Parts from pane %1").arg(2 - slot).toStdString()));
        EXPECT_THAT(cv().partingText(slot).toStdString(), testing::HasSubstr(QStringLiteral("at token %1").arg(parting + 1).toStdString()));
        // The token is marked in the reply: the first character of its text (or the next token's).
        auto* out = cv().findChild<QTextBrowser*>(QStringLiteral("compareOutput%1").arg(slot));
        ASSERT_NE(out, nullptr);
        int marked = -1;
        for (int pos = 0; pos < out->document()->characterCount() - 1 && marked < 0; ++pos) {
            QTextCursor c(out->document());
            c.setPosition(pos + 1);
            if (c.charFormat().background().style() != Qt::NoBrush) marked = pos;
        }
        EXPECT_GE(marked, 0) << "no mark in pane " << slot;
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

TEST_F(CompareDivergence, ThreePanesEachCompareWithPaneOne) {
    loadPanes({{kDemo, "f32"}, {kDemo, "q4"}, {kDemo, "f32"}});
    runReplies("And God said", 48);
    const QVector<int> a = cv().replyTokenIds(0), b = cv().replyTokenIds(1), c = cv().replyTokenIds(2);
    EXPECT_EQ(a, c);  // the same model at the same precision: the same reply
    const int parting = firstDifference(a, b);
    ASSERT_GE(parting, 0);
    EXPECT_EQ(cv().partingTokens(1), QVector<int>{parting});
    EXPECT_TRUE(cv().partingTokens(2).isEmpty());
    EXPECT_EQ(cv().partingTokens(0), QVector<int>{parting});
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
    auto* table = d->findChild<QTableWidget*>("divergenceTable");
    table->setCurrentCell(0, 1);  // the worst token
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
