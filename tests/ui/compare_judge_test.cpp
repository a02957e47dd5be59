// "Judge with…" in the compare view, offscreen: a one-label reward model scores each pane's prompt
// and reply on its own worker; the scores equal classify_sequence run here on the same rendered
// conversation, the best pane is marked, Stop and a new prompt cancel pending judgements, and a
// model that cannot judge is refused with a message. Also the JudgeWorker alone (cancellation, a
// conversation longer than the judge's context) and a screenshot of a judged compare view.
//
// The offscreen screen is 1366 x 768, as for wp_gui_tests.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <QComboBox>
#include <QDockWidget>
#include <QLabel>
#include <QSignalSpy>
#include <QTabWidget>
#include <QTemporaryDir>
#include <QTest>
#include <cmath>
#include <memory>

#include "engine/judge_worker.h"
#include "gui_test_support.h"
#include "main_window.h"
#include "widgets/compare_view.h"
#include "wp/generate/chat_session.h"
#include "wp/model/task_heads.h"

namespace {

using namespace gui_test;
using wp::ui::CompareView;
using State = CompareView::Judgement::State;

const char* const kTinyGemma2 = "fixtures/tiny-gemma2";
const char* const kTinyQwen2 = "fixtures/tiny-qwen2";
const char* const kTinyGemma = "fixtures/tiny-gemma";
const char* const kDemo = "models/windowpane-demo-gemma2";
const char* const kReward = "heads/tiny-gemma2-reward";
const char* const kThreeLabels = "heads/tiny-gemma-seqcls";

QString shared(const char* model) { return sharedDir() + "/" + model; }

// The judge's reward for one pane's conversation, computed here as the worker should: the judge's
// template over [user prompt, assistant reply] without a generation prompt, encoded without
// special tokens (the template writes <bos>), through classify_sequence.
wp::SequenceClassification directJudgement(const QString& prompt, const QString& reply) {
    static std::unique_ptr<wp::LoadedModel> judge = wp::LoadedModel::load(shared(kReward).toStdString());
    const std::vector<wp::ChatMessage> messages = {{"user", prompt.toStdString()}, {"assistant", reply.toStdString()}};
    const std::string rendered = judge->render(messages, false);
    const std::vector<int> ids = judge->tokenizer().encode(rendered, false);
    // What a reward model expects, checked apart from the steps above: the conversation ends with
    // the reply's turn (no opened model turn after it), and one <bos> leads.
    const std::string end = reply.trimmed().toStdString() + "<end_of_turn>\n";
    EXPECT_TRUE(rendered.size() >= end.size() && rendered.compare(rendered.size() - end.size(), end.size(), end) == 0)
        << rendered;
    EXPECT_EQ(judge->tokenizer().special().bos, std::optional<int>(ids.at(0)));
    EXPECT_NE(judge->tokenizer().special().bos, std::optional<int>(ids.at(1)));
    return wp::classify_sequence(judge->model(), ids);
}

class CompareJudge : public testing::Test {
protected:
    void SetUp() override {
        GUI_TEST_REQUIRE_MODELS(kTinyGemma2, kTinyQwen2, kTinyGemma, kDemo, kReward, kThreeLabels);
        view_ = std::make_unique<CompareView>();
        view_->resize(1300, 740);
        view_->show();
    }
    void TearDown() override { view_.reset(); }

    CompareView& cv() { return *view_; }

    // Loads the fixture models into the first panes.
    void loadPanes(std::initializer_list<const char*> models) {
        int slot = 0;
        for (const char* m : models) cv().setModel(slot++, shared(m));
        ASSERT_TRUE(waitFor([&] { return !cv().isLoading() && cv().loadedCount() == slot; }, 30000));
    }

    // Chooses `model` as the judge and waits until it is loaded or refused; true when loaded.
    bool chooseJudge(const QString& path) {
        QSignalSpy loaded(&cv(), &CompareView::judgeLoaded);
        QSignalSpy failed(&cv(), &CompareView::judgeFailed);
        cv().setJudge(path);
        waitFor([&] { return !loaded.isEmpty() || !failed.isEmpty(); });
        return !loaded.isEmpty();
    }

    // Runs `prompt` (replies of up to `maxTokens`) and waits for the replies.
    void runAndWait(const QString& prompt, int maxTokens = 16) {
        QSignalSpy done(&cv(), &CompareView::allFinished);
        cv().setPrompt(prompt);
        cv().setMaxTokens(maxTokens);
        cv().run();
        ASSERT_TRUE(cv().isRunning());
        ASSERT_TRUE(done.wait(60000));
    }

    // Every scored pane against classify_sequence run here, and the mark on the best.
    void expectScoresMatchDirect(const QString& prompt, int panes) {
        int best = -1;
        double bestReward = 0;
        for (int slot = 0; slot < panes; ++slot) {
            SCOPED_TRACE(slot);
            const CompareView::Judgement j = cv().judgement(slot);
            ASSERT_EQ(j.state, State::Scored) << cv().judgementText(slot).toStdString();
            const wp::SequenceClassification ref = directJudgement(prompt, cv().replyText(slot));
            ASSERT_EQ(ref.logits.size(), 1u);
            EXPECT_NEAR(j.reward, ref.logits[0], 1e-4);
            EXPECT_NEAR(j.score, ref.score, 1e-4);
            EXPECT_NEAR(j.score, 1.0 / (1.0 + std::exp(-j.reward)), 1e-6);
            // What the pane shows is that score.
            const QString shown = cv().judgementText(slot);
            EXPECT_THAT(shown.toStdString(), testing::HasSubstr(QString::number(ref.logits[0], 'f', 3).toStdString()));
            EXPECT_THAT(shown.toStdString(), testing::HasSubstr(QString::number(ref.score, 'f', 3).toStdString()));
            auto* label = cv().findChild<QLabel*>(QStringLiteral("compareVerdict%1").arg(slot));
            ASSERT_NE(label, nullptr);
            EXPECT_TRUE(label->isVisible());
            if (best < 0 || ref.logits[0] > bestReward) best = slot, bestReward = ref.logits[0];
        }
        EXPECT_EQ(cv().bestSlot(), best);
        for (int slot = 0; slot < panes; ++slot)
            EXPECT_EQ(cv().judgementText(slot).contains(QStringLiteral("\u2605 best")), slot == best) << slot;
    }

    // No pane has a judgement, pending or shown.
    void expectNoJudgements() {
        EXPECT_FALSE(cv().isJudging());
        EXPECT_EQ(cv().bestSlot(), -1);
        for (int slot = 0; slot < CompareView::kMaxModels; ++slot) {
            SCOPED_TRACE(slot);
            EXPECT_EQ(cv().judgement(slot).state, State::None);
            EXPECT_TRUE(cv().judgementText(slot).isEmpty()) << cv().judgementText(slot).toStdString();
            auto* label = cv().findChild<QLabel*>(QStringLiteral("compareVerdict%1").arg(slot));
            ASSERT_NE(label, nullptr);
            EXPECT_FALSE(label->isVisible());
        }
    }

private:
    std::unique_ptr<CompareView> view_;
};

TEST_F(CompareJudge, OffersNoJudgeTheCandidatesAndAFolder) {
    EXPECT_EQ(cv().judgeLabels(), (QStringList{"No judge", "Choose folder\u2026"}));
    cv().setJudgeCandidates({shared(kReward)});
    EXPECT_EQ(cv().judgeLabels(), (QStringList{"No judge", "tiny-gemma2-reward", "Choose folder\u2026"}));
    EXPECT_TRUE(cv().judgePath().isEmpty());
}

TEST_F(CompareJudge, ScoresEveryPaneAsClassifySequenceDoesAndMarksTheBest) {
    loadPanes({kTinyGemma2, kTinyQwen2, kTinyGemma});
    ASSERT_TRUE(chooseJudge(shared(kReward))) << cv().judgeStatus().toStdString();
    EXPECT_EQ(cv().judgePath(), QDir::cleanPath(shared(kReward)));
    EXPECT_THAT(cv().judgeStatus().toStdString(), testing::HasSubstr("Gemma2ForSequenceClassification"));
    auto* chooser = cv().findChild<QComboBox*>("compareJudge");
    ASSERT_NE(chooser, nullptr);
    EXPECT_EQ(chooser->currentText(), "tiny-gemma2-reward");

    QSignalSpy judged(&cv(), &CompareView::judgingFinished);
    bool pendingAtFinish = false;
    QObject::connect(&cv(), &CompareView::allFinished, &cv(), [&] {
        pendingAtFinish = cv().isJudging();
        for (int slot = 0; slot < 3; ++slot)
            pendingAtFinish = pendingAtFinish && cv().judgementText(slot) == QStringLiteral("Judging\u2026");
    });
    const QString prompt = "And God said, Let there be light";
    runAndWait(prompt);
    EXPECT_TRUE(pendingAtFinish) << "each pane shows Judging… when the replies end";
    if (judged.isEmpty()) { ASSERT_TRUE(judged.wait(30000)); }
    EXPECT_FALSE(cv().isJudging());
    for (int slot = 0; slot < 3; ++slot) ASSERT_FALSE(cv().replyText(slot).trimmed().isEmpty()) << slot;
    expectScoresMatchDirect(prompt, 3);
}

TEST_F(CompareJudge, StopDuringGenerationLeavesNoJudgement) {
    loadPanes({kTinyGemma2, kTinyQwen2});
    ASSERT_TRUE(chooseJudge(shared(kReward)));
    QSignalSpy judged(&cv(), &CompareView::judgingFinished);
    QSignalSpy done(&cv(), &CompareView::allFinished);
    cv().setPrompt("In the beginning");
    cv().setMaxTokens(100000);
    cv().run();
    QTest::qWait(150);
    ASSERT_TRUE(cv().isRunning());
    cv().stopAll();
    if (done.isEmpty()) { ASSERT_TRUE(done.wait(10000)); }
    expectNoJudgements();
    QTest::qWait(500);  // nothing arrives late either
    expectNoJudgements();
    EXPECT_TRUE(judged.isEmpty());
}

TEST_F(CompareJudge, StopWhileJudgingDropsTheLateResults) {
    loadPanes({kTinyGemma2, kTinyQwen2});
    ASSERT_TRUE(chooseJudge(shared(kReward)));
    QSignalSpy judged(&cv(), &CompareView::judgingFinished);
    bool wasJudging = false;
    // Stop the moment the replies end: the judgements are posted, none has come back.
    QObject::connect(&cv(), &CompareView::allFinished, &cv(), [&] {
        wasJudging = cv().isJudging();
        cv().stopAll();
    });
    runAndWait("Let the waters be gathered");
    EXPECT_TRUE(wasJudging);
    expectNoJudgements();
    QTest::qWait(500);
    expectNoJudgements();
    EXPECT_TRUE(judged.isEmpty());
}

TEST_F(CompareJudge, ANewPromptClearsTheOldScores) {
    loadPanes({kTinyGemma2, kTinyQwen2});
    ASSERT_TRUE(chooseJudge(shared(kReward)));
    QSignalSpy judged(&cv(), &CompareView::judgingFinished);
    runAndWait("And the evening and the morning were the first day");
    if (judged.isEmpty()) { ASSERT_TRUE(judged.wait(30000)); }
    ASSERT_EQ(cv().judgement(0).state, State::Scored);
    const double oldReward = cv().judgement(0).reward;

    judged.clear();
    QSignalSpy done(&cv(), &CompareView::allFinished);
    cv().setPrompt("Divide the waters");
    cv().setMaxTokens(16);
    cv().run();
    expectNoJudgements();  // at once, not when the new replies end
    ASSERT_TRUE(done.wait(60000));
    if (judged.isEmpty()) { ASSERT_TRUE(judged.wait(30000)); }
    expectScoresMatchDirect("Divide the waters", 2);
    EXPECT_NE(cv().judgement(0).reward, oldReward);
}

TEST_F(CompareJudge, AJudgeChosenLaterScoresTheRepliesThereAndNoJudgeClearsThem) {
    loadPanes({kTinyGemma2, kTinyQwen2});
    const QString prompt = "Be fruitful, and multiply";
    runAndWait(prompt);
    expectNoJudgements();  // no judge yet

    QSignalSpy judged(&cv(), &CompareView::judgingFinished);
    ASSERT_TRUE(chooseJudge(shared(kReward)));
    if (judged.isEmpty()) { ASSERT_TRUE(judged.wait(30000)); }
    expectScoresMatchDirect(prompt, 2);

    cv().setJudge({});
    expectNoJudgements();
    EXPECT_TRUE(cv().judgePath().isEmpty());
    auto* chooser = cv().findChild<QComboBox*>("compareJudge");
    ASSERT_NE(chooser, nullptr);
    EXPECT_EQ(chooser->currentText(), "No judge");
    runAndWait(prompt);
    QTest::qWait(200);
    expectNoJudgements();
}

TEST_F(CompareJudge, AModelThatCannotJudgeIsRefusedWithAMessage) {
    loadPanes({kTinyGemma2, kTinyQwen2});
    auto* chooser = cv().findChild<QComboBox*>("compareJudge");
    ASSERT_NE(chooser, nullptr);

    EXPECT_FALSE(chooseJudge(shared(kThreeLabels)));
    EXPECT_THAT(cv().judgeStatus().toStdString(),
                testing::AllOf(testing::HasSubstr("tiny-gemma-seqcls"), testing::HasSubstr("3 labels"),
                               testing::HasSubstr("negative, neutral, positive"), testing::HasSubstr("one-label")));
    EXPECT_TRUE(cv().judgePath().isEmpty());
    EXPECT_EQ(chooser->currentText(), "No judge");

    cv().grab().save(screenshotPath("gui-compare-judge-refused"));

    EXPECT_FALSE(chooseJudge(shared(kTinyGemma2)));
    EXPECT_THAT(cv().judgeStatus().toStdString(),
                testing::AllOf(testing::HasSubstr("causal language model"), testing::HasSubstr("Gemma2ForCausalLM"),
                               testing::HasSubstr("reward")));

    EXPECT_FALSE(chooseJudge(QStringLiteral("/nonexistent-judge")));
    EXPECT_THAT(cv().judgeStatus().toStdString(), testing::HasSubstr("Could not use nonexistent-judge as a judge"));
    EXPECT_TRUE(cv().judgePath().isEmpty());

    // The replies go on without a judge.
    runAndWait("Let there be light");
    QTest::qWait(200);
    expectNoJudgements();

    // And a good judge after a refused one works.
    QSignalSpy judged(&cv(), &CompareView::judgingFinished);
    ASSERT_TRUE(chooseJudge(shared(kReward)));
    if (judged.isEmpty()) { ASSERT_TRUE(judged.wait(30000)); }
    expectScoresMatchDirect("Let there be light", 2);
}

// A reply that ended in an error is not judged, and says why; the others are.
TEST_F(CompareJudge, APaneWithAnErrorIsSkippedWithTheReason) {
    loadPanes({kDemo, kTinyQwen2});
    ASSERT_TRUE(chooseJudge(shared(kReward)));
    QString prompt;  // more tokens than the demo model's context of 1,024; fewer than tiny-qwen2's
    for (int i = 0; i < 700; ++i) prompt += QStringLiteral("light and dark ");
    QSignalSpy judged(&cv(), &CompareView::judgingFinished);
    runAndWait(prompt.trimmed(), 8);
    if (judged.isEmpty()) { ASSERT_TRUE(judged.wait(30000)); }
    EXPECT_EQ(cv().judgement(0).state, State::Skipped);
    EXPECT_EQ(cv().judgementText(0), "Not judged: the reply ended in an error");
    ASSERT_EQ(cv().judgement(1).state, State::Scored) << cv().judgementText(1).toStdString();
    EXPECT_NEAR(cv().judgement(1).reward, directJudgement(prompt.trimmed(), cv().replyText(1)).logits[0], 1e-4);
    EXPECT_EQ(cv().bestSlot(), -1);  // one score is no comparison
    EXPECT_FALSE(cv().judgementText(1).contains(QStringLiteral("\u2605")));
    cv().grab().save(screenshotPath("gui-compare-judge-skipped"));
}

// The worker alone, called on this thread.
TEST_F(CompareJudge, WorkerRefusesALongConversationAndDropsCancelledRequests) {
    wp::ui::JudgeWorker w;
    QSignalSpy loaded(&w, &wp::ui::JudgeWorker::judgeLoaded);
    QSignalSpy judged(&w, &wp::ui::JudgeWorker::judged);
    QSignalSpy errors(&w, &wp::ui::JudgeWorker::error);
    w.loadJudge(1, shared(kReward));
    ASSERT_EQ(loaded.count(), 1) << (errors.isEmpty() ? "" : errors.first().at(1).toString().toStdString());
    EXPECT_EQ(loaded.first().at(1).value<wp::ui::JudgeCard>().label, "LABEL_0");

    QString longReply;
    for (int i = 0; i < 3000; ++i) longReply += QStringLiteral("light upon the waters ");
    w.judge(2, {{"user", "Tell me"}, {"assistant", longReply}});
    ASSERT_EQ(errors.count(), 1);
    EXPECT_EQ(errors.first().at(0).toULongLong(), 2u);
    EXPECT_THAT(errors.first().at(1).toString().toStdString(),
                testing::AllOf(testing::HasSubstr("longer than the judge's context of 8192")));
    EXPECT_TRUE(judged.isEmpty());

    w.cancel(3);
    w.judge(3, {{"user", "Tell me"}, {"assistant", "Light."}});
    EXPECT_TRUE(judged.isEmpty());
    w.judge(4, {{"user", "Tell me"}, {"assistant", "Light."}});
    ASSERT_EQ(judged.count(), 1);
    EXPECT_NEAR(judged.first().at(1).value<wp::ui::JudgeScore>().reward, directJudgement("Tell me", "Light.").logits[0], 1e-4);
    EXPECT_EQ(errors.count(), 1);
}

// The app's compare tab at the test screen's size, judged, for people to look at.
TEST_F(CompareJudge, ScreenshotOfAJudgedCompareView) {
    QTemporaryDir dir;
    ASSERT_TRUE(dir.isValid());
    wp::ui::AppOptions o;
    o.modelPath = shared(kDemo);
    o.dataDir = dir.path() + "/data";
    o.settingsFile = dir.path() + "/settings.ini";
    wp::ui::MainWindow w(o);
    w.show();
    ASSERT_TRUE(waitFor([&] { return !w.isLoading() && !w.modelCard().path.isEmpty(); }));
    // The docks closed, as one would to compare: two panes side by side fit then.
    for (QDockWidget* dock : w.findChildren<QDockWidget*>()) dock->close();
    auto* tabs = w.findChild<QTabWidget*>("mainTabs");
    ASSERT_NE(tabs, nullptr);
    CompareView* view = w.compareView();
    tabs->setCurrentWidget(view);
    view->setJudgeCandidates({shared(kReward)});
    view->setModel(0, shared(kDemo));
    view->setModel(1, shared(kTinyQwen2));
    ASSERT_TRUE(waitFor([&] { return !view->isLoading() && view->loadedCount() == 2; }));
    QSignalSpy loaded(view, &CompareView::judgeLoaded);
    view->setJudge(shared(kReward));
    ASSERT_TRUE(loaded.wait(30000));
    QSignalSpy judged(view, &CompareView::judgingFinished);
    view->setPrompt("And God said, Let there be light");
    view->setMaxTokens(40);
    view->run();
    ASSERT_TRUE(judged.wait(60000));
    EXPECT_EQ(view->judgement(0).state, State::Scored);
    EXPECT_EQ(view->judgement(1).state, State::Scored);
    EXPECT_GE(view->bestSlot(), 0);
    QTest::qWait(100);
    EXPECT_TRUE(w.grab().save(screenshotPath("gui-compare-judge")));
}

}  // namespace

int main(int argc, char** argv) { return gui_test::runGuiTests(argc, argv, {1366, 768}); }
