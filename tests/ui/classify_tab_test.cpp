// The Classify tab driven under QT_QPA_PLATFORM=offscreen on a 1366 x 768 screen: a task-head
// model (../shared/heads) replaces chat with the Classify tab, and each of its three views shows
// what core computes for the same input (the fixtures have random weights: the numbers mean
// nothing, but they are deterministic). Screenshots of the views go to the build's screenshots/.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <QApplication>
#include <QDir>
#include <QHelpEvent>
#include <QDockWidget>
#include <QLabel>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QScreen>
#include <QSettings>
#include <QSignalSpy>
#include <QTabWidget>
#include <QTableWidget>
#include <QTemporaryDir>
#include <QTest>
#include <QTextBrowser>
#include <QToolTip>
#include <cmath>
#include <memory>

#include "engine/classify_engine.h"
#include "gui_test_support.h"
#include "main_window.h"
#include "widgets/classify_answer_view.h"
#include "widgets/classify_sequence_view.h"
#include "widgets/classify_tab.h"
#include "widgets/classify_token_view.h"
#include "widgets/mask_view.h"
#include "widgets/probability_bars.h"
#include "wp/generate/chat_session.h"
#include "wp/model/entities.h"
#include "wp/model/question_answering.h"
#include "wp/model/task_heads.h"

namespace {

using namespace gui_test;
using wp::ui::ClassifyTab;
using wp::ui::MainWindow;

const char* const kSeqCls = "heads/tiny-gemma-seqcls";
const char* const kReward = "heads/tiny-gemma2-reward";
const char* const kGemma2TokCls = "heads/tiny-gemma2-tokcls";
const char* const kQwen2TokCls = "heads/tiny-qwen2-tokcls";
const char* const kQa = "heads/tiny-qwen2-qa";
const char* const kCausal = "fixtures/tiny-gemma2";

// Names and places, with characters of two, three and four UTF-8 bytes (the last a surrogate
// pair in UTF-16), so a byte offset taken for a character offset shows.
const char* const kEntityText = "Zoë Müller flew from Zürich to Łódź with Анна 🙂 and John Smith.";

std::string str(const QString& s) { return s.toStdString(); }

bool waitForModel(MainWindow& w, const QString& path, int ms = 20000) {
    return waitFor([&] { return !w.isLoading() && w.modelCard().path == QDir::cleanPath(path); }, ms);
}

// Runs `start` and waits for the tab's result (or error) to be on screen.
template <class F>
bool runAndWait(ClassifyTab* tab, F start, int ms = 30000) {
    QSignalSpy shown(tab, &ClassifyTab::resultShown);
    start();
    return !shown.isEmpty() || shown.wait(ms);
}

// The core's own results for comparison, from a model loaded here as the app loads it.
std::unique_ptr<wp::LoadedModel> loadDirect(const QString& dir) { return wp::LoadedModel::load(dir.toStdString()); }

// Characters (UTF-16 units, as QString counts) in the first `bytes` bytes of `text`.
int utf16At(const std::string& text, std::size_t bytes) {
    return static_cast<int>(QString::fromUtf8(text.data(), static_cast<qsizetype>(bytes)).size());
}

class Classify : public testing::Test {
protected:
    void SetUp() override {
        GUI_TEST_REQUIRE_MODELS(kSeqCls, kCausal);
        ASSERT_TRUE(dir_.isValid());
    }
    void TearDown() override { window_.reset(); }

    QString model(const char* name) const { return sharedDir() + "/" + name; }

    // The main window on `name`, at the size it picks on the test screen, with the model loaded.
    MainWindow& open(const char* name, const QString& theme = {}) {
        if (!theme.isEmpty()) QSettings(dir_.path() + "/settings.ini", QSettings::IniFormat).setValue("view/theme", theme);
        wp::ui::AppOptions o;
        o.modelPath = model(name);
        o.dataDir = dir_.path() + "/data";
        o.settingsFile = dir_.path() + "/settings.ini";
        window_ = std::make_unique<MainWindow>(o);
        window_->show();
        EXPECT_TRUE(waitForModel(*window_, o.modelPath)) << str(window_->lastError());
        return *window_;
    }

    QTabWidget* tabs() const { return window_->findChild<QTabWidget*>("mainTabs"); }
    bool tabVisible(QWidget* page) const { return tabs()->isTabVisible(tabs()->indexOf(page)); }
    QWidget* chatPane() const { return tabs()->widget(0); }

    void screenshot(const QString& name) {
        QTest::qWait(50);
        EXPECT_TRUE(window_->grab().save(screenshotPath(name)));
    }

private:
    QTemporaryDir dir_;
    std::unique_ptr<MainWindow> window_;
};

TEST(ClassifyEngine, Utf16OffsetsCountSurrogatePairsAndStopAtCharacterStarts) {
    const std::string s = "aë€🙂b";  // 1 + 2 + 3 + 4 + 1 bytes; 🙂 is two UTF-16 units
    const std::vector<int> at = wp::ui::utf16Offsets(s);
    ASSERT_EQ(at.size(), s.size() + 1);
    EXPECT_EQ(at[0], 0);
    EXPECT_EQ(at[1], 1);   // ë
    EXPECT_EQ(at[2], 1);   // inside ë: where it starts
    EXPECT_EQ(at[3], 2);   // €
    EXPECT_EQ(at[6], 3);   // 🙂
    EXPECT_EQ(at[9], 3);   // inside 🙂
    EXPECT_EQ(at[10], 5);  // b, after the surrogate pair
    EXPECT_EQ(at[11], static_cast<int>(QString::fromStdString(s).size()));
}

TEST_F(Classify, AHeadModelReplacesChatWithTheClassifyTabAndACausalLmBringsChatBack) {
    MainWindow& w = open(kSeqCls);
    ClassifyTab* tab = w.classifyTab();
    ASSERT_NE(tab, nullptr);
    EXPECT_EQ(w.modelCard().head, "sequence-classification");
    EXPECT_EQ(w.modelCard().labels, QStringList({"negative", "neutral", "positive"}));
    EXPECT_TRUE(tabVisible(tab));
    EXPECT_EQ(tabs()->currentWidget(), tab);
    EXPECT_EQ(tab->currentView(), tab->sequenceView());

    // The chat tab says why it is unavailable and takes no message.
    auto* why = w.findChild<QLabel*>("chatUnavailable");
    ASSERT_NE(why, nullptr);
    tabs()->setCurrentWidget(chatPane());
    QTest::qWait(20);
    EXPECT_TRUE(why->isVisible());
    EXPECT_THAT(str(why->text()), testing::HasSubstr("GemmaForSequenceClassification is a sequence classification model"));
    EXPECT_THAT(str(why->text()), testing::HasSubstr("Classify tab"));
    EXPECT_FALSE(w.findChild<QPushButton*>("sendButton")->isEnabled());
    EXPECT_FALSE(w.findChild<QPlainTextEdit*>("messageInput")->isEnabled());
    w.sendMessage("Hello");
    EXPECT_FALSE(w.isGenerating());
    EXPECT_THAT(str(w.lastError()), testing::HasSubstr("Use the Classify tab"));
    // Sampling settings do nothing for a head: the panel is disabled.
    auto* settings = w.findChild<QDockWidget*>("settingsDock");
    ASSERT_NE(settings, nullptr);
    EXPECT_FALSE(settings->widget()->isEnabled());
    screenshot("classify-chat-unavailable");

    // The model card names the task.
    auto* card = w.findChild<QLabel*>("modelCard");
    ASSERT_NE(card, nullptr);
    EXPECT_THAT(str(card->text()), testing::HasSubstr("sequence classification (3 labels)"));
    EXPECT_THAT(str(card->text()), testing::HasSubstr("negative, neutral, positive"));

    // A causal LM: chat again, the Classify tab gone.
    w.openModel(model(kCausal));
    ASSERT_TRUE(waitForModel(w, model(kCausal)));
    EXPECT_FALSE(tabVisible(tab));
    EXPECT_EQ(tabs()->currentWidget(), chatPane());
    EXPECT_FALSE(why->isVisible());
    EXPECT_TRUE(w.findChild<QPushButton*>("sendButton")->isEnabled());
    EXPECT_TRUE(w.findChild<QPlainTextEdit*>("messageInput")->isEnabled());
    EXPECT_TRUE(settings->widget()->isEnabled());
    EXPECT_THAT(str(card->text()), testing::HasSubstr("text generation"));

    // And a head model again: the tab comes back, selected.
    w.openModel(model(kQa));
    ASSERT_TRUE(waitForModel(w, model(kQa)));
    EXPECT_TRUE(tabVisible(tab));
    EXPECT_EQ(tabs()->currentWidget(), tab);
    EXPECT_EQ(tab->currentView(), tab->answerView());
}

TEST_F(Classify, SequenceClassificationShowsEachLabelsProbabilityAsCoreComputesIt) {
    MainWindow& w = open(kSeqCls);
    ClassifyTab* tab = w.classifyTab();
    auto* view = tab->sequenceView();
    const QString text = "The light was good, and the evening and the morning were the first day.";
    view->setText(text);
    auto* button = view->findChild<QPushButton*>("classifyButton");
    ASSERT_NE(button, nullptr);
    ASSERT_TRUE(runAndWait(tab, [&] {
        QTest::mouseClick(button, Qt::LeftButton);
        EXPECT_TRUE(view->isBusy());
        EXPECT_FALSE(button->isEnabled()) << "the button is disabled while the model runs";
    }));
    EXPECT_FALSE(view->isBusy());
    EXPECT_TRUE(button->isEnabled());

    const auto lm = loadDirect(model(kSeqCls));
    const std::vector<int> ids = lm->tokenizer().encode(text.toStdString(), true);
    const wp::SequenceClassification core = wp::classify_sequence(lm->model(), ids);
    const auto& rows = view->bars()->rows();
    ASSERT_EQ(rows.size(), 3);
    double top = *std::max_element(core.logits.begin(), core.logits.end()), sum = 0;
    for (float x : core.logits) sum += std::exp(x - top);
    for (int i = 0; i < 3; ++i) {
        EXPECT_EQ(rows[i].label, QString::fromStdString(lm->model().config().labels[i]));
        EXPECT_NEAR(rows[i].value, std::exp(core.logits[i] - top) / sum, 1e-5) << i;
    }
    EXPECT_EQ(rows[view->bars()->highlighted()].label, QString::fromStdString(core.label));
    EXPECT_NEAR(rows[view->bars()->highlighted()].value, core.score, 1e-5);
    EXPECT_THAT(str(view->summary()), testing::HasSubstr(core.label));
    EXPECT_EQ(view->result().pooledIndex, core.pooled_index);
    screenshot("classify-sequence");

    // Ctrl+Enter in the text classifies too.
    view->setText("And God saw the light.");
    auto* input = view->findChild<QPlainTextEdit*>("classifyInput");
    ASSERT_TRUE(runAndWait(tab, [&] { QTest::keyClick(input, Qt::Key_Return, Qt::ControlModifier); }));
    EXPECT_EQ(view->result().text, "And God saw the light.");
    EXPECT_EQ(input->toPlainText(), "And God saw the light.") << "Ctrl+Enter must not add a line";
}

TEST_F(Classify, ARewardModelShowsItsRawRewardAndSigmoidNotAOneLabelSoftmax) {
    MainWindow& w = open(kReward);
    ClassifyTab* tab = w.classifyTab();
    auto* view = tab->sequenceView();
    const QString text = "A helpful and honest answer.";
    view->setText(text);
    ASSERT_TRUE(runAndWait(tab, [&] { view->classify(); }));
    const auto lm = loadDirect(model(kReward));
    const std::vector<int> ids = lm->tokenizer().encode(text.toStdString(), true);
    const wp::SequenceClassification core = wp::classify_sequence(lm->model(), ids);
    ASSERT_EQ(core.logits.size(), 1u);
    EXPECT_THAT(str(view->summary()), testing::HasSubstr(str(QString::number(core.logits[0], 'f', 4))));
    EXPECT_THAT(str(view->summary()), testing::HasSubstr(str(QString::number(core.score, 'f', 4))));
    const auto& rows = view->bars()->rows();
    ASSERT_EQ(rows.size(), 1);
    EXPECT_NEAR(rows[0].value, core.score, 1e-5);  // sigmoid(logit), not 100%
    EXPECT_LT(rows[0].value, 1.0);
    screenshot("classify-reward");
}

TEST_F(Classify, EmptyAndTooLongTextsAreReportedInTheTab) {
    MainWindow& w = open(kSeqCls);
    ClassifyTab* tab = w.classifyTab();
    auto* view = tab->sequenceView();
    view->setText("   ");
    ASSERT_TRUE(runAndWait(tab, [&] { view->classify(); }));
    EXPECT_THAT(str(view->status()), testing::HasSubstr("Type a text"));

    // More tokens than the model's 8,192 positions.
    QString longText;
    for (int i = 0; i < 9000; ++i) longText += QStringLiteral("light ");
    view->setText(longText);
    ASSERT_TRUE(runAndWait(tab, [&] { view->classify(); }));
    EXPECT_THAT(str(view->status()), testing::HasSubstr("too long"));
    EXPECT_FALSE(view->isBusy());
    EXPECT_TRUE(view->findChild<QPushButton*>("classifyButton")->isEnabled());

    // Still works afterwards.
    view->setText("Light.");
    ASSERT_TRUE(runAndWait(tab, [&] { view->classify(); }));
    EXPECT_EQ(view->bars()->rows().size(), 3);
}

// The entity spans drawn are group_entities' spans in characters; each token's hover text holds
// its label probabilities.
void checkTokenView(MainWindow& w, const QString& dir, const QString& shot) {
    ClassifyTab* tab = w.classifyTab();
    auto* view = tab->tokenView();
    ASSERT_EQ(tab->currentView(), view);
    const std::string text = kEntityText;
    view->setText(QString::fromStdString(text));
    ASSERT_TRUE(runAndWait(tab, [&] { view->classify(); }));
    ASSERT_EQ(view->result().text, QString::fromStdString(text)) << str(view->status());

    const auto lm = wp::LoadedModel::load(dir.toStdString());
    const std::vector<int> ids = lm->tokenizer().encode(text, true);
    const wp::TokenClassification core = wp::classify_tokens(lm->model(), ids);
    const std::vector<wp::Entity> entities = wp::group_entities(core, ids, lm->tokenizer(), text);
    const std::vector<float> probs = wp::token_probabilities(core);
    const std::vector<wp::ByteSpan> spans = wp::token_spans(lm->tokenizer(), ids, text);

    ASSERT_FALSE(entities.empty());  // else the checks below would check nothing
    ASSERT_EQ(view->result().entities.size(), static_cast<qsizetype>(entities.size()));
    EXPECT_EQ(view->entityTable()->rowCount(), static_cast<int>(entities.size()));
    // Every entity is drawn, except where a character's bytes fall in two entities' tokens (a
    // byte-level BPE token can hold part of a character): both entities name that character,
    // and the first is drawn there.
    std::vector<wp::Entity> drawable;
    std::size_t at = 0;
    for (const wp::Entity& e : entities) {
        ASSERT_FALSE(e.span.empty());
        if (e.span.begin >= at) drawable.push_back(e), at = e.span.end;
    }
    const auto drawn = view->coloredSpans();
    ASSERT_EQ(drawn.size(), static_cast<qsizetype>(drawable.size()));
    const QString shown = view->result().text;
    for (std::size_t i = 0; i < drawable.size(); ++i) {
        SCOPED_TRACE(i);
        EXPECT_EQ(drawn[i].group, QString::fromStdString(drawable[i].group));
        EXPECT_EQ(drawn[i].begin, utf16At(text, drawable[i].span.begin));
        EXPECT_EQ(drawn[i].end, utf16At(text, drawable[i].span.end));
        EXPECT_EQ(shown.mid(drawn[i].begin, drawn[i].end - drawn[i].begin), QString::fromStdString(drawable[i].text));
    }
    for (std::size_t i = 0; i < entities.size(); ++i)
        if (!entities[i].text.empty()) {
            EXPECT_EQ(view->entityTable()->item(static_cast<int>(i), 0)->text(), QString::fromStdString(entities[i].text));
        }

    // Hover: each token with a span, at its first character, names its label probabilities.
    const int L = core.num_labels;
    int hovered = 0;
    for (std::size_t t = 0; t < ids.size(); ++t) {
        if (spans[t].empty()) continue;
        const int at = utf16At(text, spans[t].begin);
        ASSERT_EQ(view->tokenAt(at), static_cast<int>(t)) << "character " << at;
        const QString tip = view->tokenTooltip(static_cast<int>(t));
        for (int l = 0; l < L; ++l) {
            EXPECT_THAT(str(tip), testing::HasSubstr(lm->model().config().labels[l]));
            EXPECT_THAT(str(tip), testing::HasSubstr(str(QStringLiteral("%1%").arg(100.0 * probs[t * L + l], 0, 'f', 1))));
        }
        ++hovered;
    }
    EXPECT_GT(hovered, 10);

    // A real hover over the text's first word shows its token's tooltip.
    QTextBrowser* browser = view->rendered();
    QTextCursor c(browser->document());
    c.setPosition(1);
    const QPoint p = browser->cursorRect(c).center() - QPoint(2, 0);  // on the first word's first character
    QHelpEvent help(QEvent::ToolTip, p, browser->viewport()->mapToGlobal(p));
    QApplication::sendEvent(browser->viewport(), &help);
    EXPECT_TRUE(QToolTip::isVisible());
    int first = 0;
    while (spans[static_cast<std::size_t>(first)].empty()) ++first;
    EXPECT_EQ(QToolTip::text(), view->tokenTooltip(first));
    QToolTip::hideText();

    // The screenshot with a text the offscreen fonts draw whole (no emoji).
    view->setText("John Smith flew from Paris to Berlin with Anna Karenina, and Tom stayed in Rome.");
    ASSERT_TRUE(runAndWait(tab, [&] { view->classify(); }));
    EXPECT_EQ(view->coloredSpans().isEmpty(), view->result().entities.isEmpty());
    QTest::qWait(50);
    EXPECT_TRUE(w.grab().save(screenshotPath(shot)));
}

TEST_F(Classify, TokenClassificationColoursEntitiesAndShowsTokenProbabilitiesGemma2) {
    MainWindow& w = open(kGemma2TokCls);
    checkTokenView(w, model(kGemma2TokCls), "classify-tokens-gemma2");
}

TEST_F(Classify, TokenClassificationColoursEntitiesAndShowsTokenProbabilitiesQwen2) {
    MainWindow& w = open(kQwen2TokCls);
    checkTokenView(w, model(kQwen2TokCls), "classify-tokens");
}

// The entity colours in the dark theme: light text on darker tints, tags still readable.
TEST_F(Classify, TheTokenViewInTheDarkTheme) {
    MainWindow& w = open(kGemma2TokCls, "dark");
    auto* view = w.classifyTab()->tokenView();
    view->setText("John Smith flew from Paris to Berlin with Anna Karenina, and Tom stayed in Rome.");
    ASSERT_TRUE(runAndWait(w.classifyTab(), [&] { view->classify(); }));
    EXPECT_FALSE(view->result().tokenLabels.isEmpty());
    screenshot("classify-tokens-dark");
}

TEST_F(Classify, QuestionAnsweringHighlightsTheBestAnswerAndListsTheNextBest) {
    MainWindow& w = open(kQa);
    ClassifyTab* tab = w.classifyTab();
    auto* view = tab->answerView();
    ASSERT_EQ(tab->currentView(), view);
    const QString question = "Who divided the light from the darkness?";
    const QString context =
        "Zoë 🙂 read: In the beginning God created the heaven and the earth. And the earth was without form, and void; and "
        "darkness was upon the face of the deep. And God said, Let there be light: and there was light. And God "
        "saw the light, that it was good: and God divided the light from the darkness. And God called the light "
        "Day, and the darkness he called Night.";
    view->setQuestion(question);
    view->setContext(context);
    ASSERT_TRUE(runAndWait(tab, [&] { QTest::mouseClick(view->findChild<QPushButton*>("answerButton"), Qt::LeftButton); }));

    const auto lm = loadDirect(model(kQa));
    const wp::QuestionAnswering core = wp::answer_question(lm->model(), lm->tokenizer(), question.toStdString(),
                                                           context.toStdString(), wp::ui::ClassifyAnswerView::kAnswers);
    ASSERT_FALSE(core.answers.empty());
    const auto& shown = view->result().answers;
    ASSERT_EQ(shown.size(), static_cast<qsizetype>(core.answers.size())) << str(view->status());
    EXPECT_EQ(view->shownAnswer(), 0);
    EXPECT_EQ(view->highlightedText(), QString::fromStdString(core.answers[0].text));
    QTableWidget* list = view->answerTable();
    ASSERT_EQ(list->rowCount(), static_cast<int>(core.answers.size()));
    for (std::size_t i = 0; i < core.answers.size(); ++i) {
        EXPECT_NEAR(shown[static_cast<int>(i)].score, core.answers[i].score, 1e-9);
        EXPECT_EQ(list->item(static_cast<int>(i), 2)->text(), QString::number(core.answers[i].score, 'f', 4));
        EXPECT_EQ(list->item(static_cast<int>(i), 1)->toolTip(), QString::fromStdString(core.answers[i].text));
    }
    screenshot("classify-answer");

    // Clicking a runner-up highlights it instead.
    ASSERT_GE(list->rowCount(), 3);
    const QRect r = list->visualItemRect(list->item(2, 1));
    QTest::mouseClick(list->viewport(), Qt::LeftButton, {}, r.center());
    EXPECT_EQ(view->shownAnswer(), 2);
    EXPECT_EQ(view->highlightedText(), QString::fromStdString(core.answers[2].text));
    screenshot("classify-answer-runner-up");

    // An edited context drops the highlight, which no longer fits it.
    view->findChild<QPlainTextEdit*>("contextInput")->appendPlainText("And the evening and the morning were the first day.");
    EXPECT_TRUE(view->highlightedText().isEmpty());
    EXPECT_EQ(list->rowCount(), 0);
}

TEST_F(Classify, TheAttentionTabWorksForAHeadModel) {
    MainWindow& w = open(kGemma2TokCls);
    QSignalSpy ready(&w, &MainWindow::analysisReady);
    w.analyze("And God said, Let there be light: and there was light.");
    ASSERT_TRUE(ready.wait(20000));
    const auto& data = w.maskView()->data();
    ASSERT_GT(data.positions(), 5);
    ASSERT_FALSE(data.layers.empty());
    for (std::size_t l = 0; l < data.layers.size(); ++l) EXPECT_TRUE(data.hasAttention(static_cast<int>(l))) << l;
    EXPECT_FALSE(data.cacheSteps.empty());
}

}  // namespace

int main(int argc, char** argv) { return gui_test::runGuiTests(argc, argv, gui_test::testScreenSize()); }
