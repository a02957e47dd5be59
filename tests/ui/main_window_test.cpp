// The real desktop app driven under QT_QPA_PLATFORM=offscreen: chat with a fixture model, stop,
// persistence across restarts, a broken model folder, GUI responsiveness while tokens stream, the
// window on a small screen, and screenshots for people to look at.
//
// The offscreen screen is 1366 x 768 unless WP_TEST_SCREEN says otherwise ("1920x1080"). Each test
// keeps its conversations and settings in a temporary directory; Qt's test mode keeps anything
// that would still reach the user's standard paths out of them.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <QApplication>
#include <QDir>
#include <QDockWidget>
#include <QElapsedTimer>
#include <QFile>
#include <QLabel>
#include <QLineEdit>
#include <QMenu>
#include <QMimeData>
#include <QPlainTextEdit>
#include <QScreen>
#include <QSettings>
#include <QSignalSpy>
#include <QSpinBox>
#include <QTabWidget>
#include <QTemporaryDir>
#include <QTest>
#include <QTextBrowser>
#include <QTimer>
#include <cmath>
#include <memory>

#include "gui_test_support.h"
#include "main_window.h"
#include "widgets/attention_tab.h"
#include "widgets/compare_view.h"
#include "widgets/head_summary_grid.h"
#include "widgets/lens_grid.h"
#include "wp/generate/chat_session.h"
#include "widgets/mask_view.h"
#include "widgets/message_widget.h"
#include "widgets/settings_panel.h"

namespace {

using namespace gui_test;
using wp::ui::MainWindow;

// Model folders under the shared directory.
const char* const kDemo = "models/windowpane-demo-gemma2";
const char* const kTinyGemma2 = "fixtures/tiny-gemma2";
const char* const kTinyQwen2 = "fixtures/tiny-qwen2";

std::string str(const QRect& r) {
    return QStringLiteral("%1,%2 %3x%4").arg(r.x()).arg(r.y()).arg(r.width()).arg(r.height()).toStdString();
}

bool waitForModel(MainWindow& w, int ms = 20000) {
    return waitFor([&] { return !w.isLoading() && !w.modelCard().path.isEmpty(); }, ms);
}

bool waitForReply(MainWindow& w, int ms = 60000) {
    QElapsedTimer t;
    t.start();
    while (w.isGenerating() && t.elapsed() < ms) QTest::qWait(5);
    return !w.isGenerating();
}

void setMaxTokens(MainWindow& w, int n, bool greedy = true) {
    auto s = w.settingsPanel()->settings();
    s.maxNewTokens = n;
    s.greedy = greedy;
    w.settingsPanel()->setSettings(s);
}

// Each test: the shared fixture models, and a directory of its own for the app's data and settings
// (a window opened again in the same test finds what the previous one left there).
class Gui : public testing::Test {
protected:
    void SetUp() override {
        GUI_TEST_REQUIRE_MODELS(kTinyGemma2);
        ASSERT_TRUE(dir_.isValid());
    }

    QString tempPath(const QString& name) const { return dir_.path() + "/" + name; }
    QString settingsFile() const { return tempPath("settings.ini"); }

    wp::ui::AppOptions options(const QString& model) const {
        wp::ui::AppOptions o;
        o.modelPath = model;
        o.dataDir = tempPath("data");
        o.settingsFile = settingsFile();
        return o;
    }

    enum Visibility { kShown, kHidden };

    // A main window on the shared model folder `model`, at `size` (empty: the size it picks
    // itself). A window opened before in the same test is destroyed first, as when the app quits.
    MainWindow& open(const QString& model, QSize size = {}, Visibility visibility = kShown) {
        return openPath(sharedDir() + "/" + model, size, visibility);
    }
    // The same for any path (empty: the model the app picks by itself).
    MainWindow& openPath(const QString& path, QSize size = {}, Visibility visibility = kShown) {
        window_.reset();
        window_ = std::make_unique<MainWindow>(options(path));
        if (size.isValid()) window_->resize(size);
        if (visibility == kShown) window_->show();
        return *window_;
    }

    void TearDown() override { window_.reset(); }

private:
    QTemporaryDir dir_;
    std::unique_ptr<MainWindow> window_;
};

TEST_F(Gui, ChatStreamsPersistsAndComesBackAfterRestart) {
    qint64 conv = 0;
    QString reply;
    {
        MainWindow& w = open(kDemo, {1100, 760});
        ASSERT_TRUE(waitForModel(w)) << w.lastError().toStdString();
        EXPECT_EQ(w.modelCard().family, "gemma2");
        EXPECT_FALSE(w.modelCard().systemRoleSupported);  // Gemma's template rejects system turns
        setMaxTokens(w, 40);
        QSignalSpy tokens(&w, &MainWindow::tokenArrived);
        QSignalSpy done(&w, &MainWindow::replyFinished);
        w.sendMessage("Who made the light?");
        ASSERT_TRUE(waitForReply(w));
        ASSERT_EQ(done.count(), 1);
        EXPECT_GE(tokens.count(), 2) << "the reply should stream token by token";
        reply = done.first().first().toString();
        EXPECT_FALSE(reply.isEmpty());
        conv = w.currentConversation();
        ASSERT_GT(conv, 0);
        const auto path = w.store().activePath(conv);
        ASSERT_EQ(path.size(), 2) << w.store().lastError().toStdString() << " / " << w.lastError().toStdString();
        EXPECT_EQ(path[0].content, "Who made the light?");
        EXPECT_EQ(path[1].content, reply);
        EXPECT_GT(path[1].stats.value("tokens").toArray().size(), 0);
        QTest::qWait(100);
        w.grab().save(screenshotPath("gui-chat"));
    }
    // Restart: the conversation is back, with both messages shown.
    MainWindow& w2 = open(kDemo);
    ASSERT_TRUE(waitForModel(w2));
    EXPECT_EQ(w2.currentConversation(), conv);
    const auto widgets = w2.messageWidgets();
    ASSERT_EQ(widgets.size(), 2);
    EXPECT_EQ(widgets[1]->message().content, reply);
}

TEST_F(Gui, AnUnsentDraftSurvivesClosingTheWindow) {
    {
        MainWindow& w = open(kTinyQwen2);
        ASSERT_TRUE(waitForModel(w));
        auto* input = w.findChild<QPlainTextEdit*>("messageInput");
        ASSERT_NE(input, nullptr);
        input->setPlainText("half a thought");
        w.close();
    }
    MainWindow& w = open(kTinyQwen2, {}, kHidden);
    auto* input = w.findChild<QPlainTextEdit*>("messageInput");
    ASSERT_NE(input, nullptr);
    EXPECT_EQ(input->toPlainText(), "half a thought");
}

TEST_F(Gui, StopEndsTheReplyWithinAToken) {
    // Random weights never stop by themselves.
    MainWindow& w = open(kTinyGemma2);
    ASSERT_TRUE(waitForModel(w));
    setMaxTokens(w, 100000);
    int seen = 0;
    int atStop = -1;
    QObject::connect(&w, &MainWindow::tokenArrived, [&] {
        if (++seen == 5) {
            atStop = seen;
            w.stopGeneration();
        }
    });
    w.sendMessage("In the beginning");
    ASSERT_TRUE(waitForReply(w, 20000));
    ASSERT_EQ(atStop, 5);
    const auto path = w.store().activePath(w.currentConversation());
    ASSERT_EQ(path.size(), 2);
    EXPECT_TRUE(path[1].stopped);
    // The reply ends where it stood when Stop was pressed, even though the worker runs ahead.
    EXPECT_EQ(path[1].stats.value("generated_tokens").toInt(), 5);
    EXPECT_EQ(path[1].stats.value("tokens").toArray().size(), 5);
    EXPECT_EQ(seen, 5) << "tokens kept arriving after Stop";
    EXPECT_EQ(path[1].stats.value("stop_reason").toString(), "cancelled");
}

TEST_F(Gui, BrokenModelFolderShowsAnErrorAndTheAppKeepsChatting) {
    MainWindow& w = open(kTinyQwen2);
    ASSERT_TRUE(waitForModel(w));
    const QString good = w.modelCard().path;
    const QString broken = tempPath("broken");
    QDir().mkpath(broken);
    QFile cfg(broken + "/config.json");
    ASSERT_TRUE(cfg.open(QIODevice::WriteOnly));
    cfg.write("{\"model_type\": \"mamba\"}");
    cfg.close();
    QSignalSpy failed(&w, &MainWindow::modelFailed);
    w.openModel(broken);
    ASSERT_TRUE(failed.wait(10000));
    EXPECT_THAT(failed.first().first().toString().toStdString(), testing::HasSubstr("unknown model_type \"mamba\""));
    EXPECT_THAT(w.lastError().toStdString(), testing::HasSubstr("still using"));
    EXPECT_EQ(w.modelCard().path, good);
    setMaxTokens(w, 5);
    QSignalSpy done(&w, &MainWindow::replyFinished);
    w.sendMessage("Hello");
    ASSERT_TRUE(waitForReply(w));
    EXPECT_EQ(done.count(), 1);
}

TEST_F(Gui, EventLoopStaysResponsiveWhileTokensStream) {
    MainWindow& w = open(kTinyGemma2, {1000, 700});
    ASSERT_TRUE(waitForModel(w));
    setMaxTokens(w, 600);
    // A probe timer fires every 5 ms on the GUI thread; a gap means the event loop was blocked.
    QElapsedTimer clock;
    qint64 last = -1, worst = 0;
    int tokens = 0;
    QTimer probe;
    probe.setInterval(5);
    QObject::connect(&probe, &QTimer::timeout, [&] {
        const qint64 now = clock.elapsed();
        if (last >= 0 && tokens > 0) worst = std::max(worst, now - last);
        last = now;
    });
    QObject::connect(&w, &MainWindow::tokenArrived, [&] { ++tokens; });
    clock.start();
    probe.start();
    w.sendMessage("In the beginning God created the heaven and the earth.");
    ASSERT_TRUE(waitForReply(w, 60000));
    probe.stop();
    EXPECT_GE(tokens, 100);
    EXPECT_LT(worst, 50) << "the GUI thread was blocked for " << worst << " ms while " << tokens << " tokens streamed";
}

TEST_F(Gui, RegenerateAndEditBranchInsteadOfDeleting) {
    MainWindow& w = open(kDemo);
    ASSERT_TRUE(waitForModel(w));
    setMaxTokens(w, 12, false);  // sampled: a regenerated reply differs
    w.sendMessage("Who made the light?");
    ASSERT_TRUE(waitForReply(w));
    w.sendMessage("And the sea?");
    ASSERT_TRUE(waitForReply(w));
    const qint64 conv = w.currentConversation();
    auto path = w.store().activePath(conv);
    ASSERT_EQ(path.size(), 4);

    // Regenerate the first reply: a sibling appears, the old branch (with its follow-up) stays.
    auto widgets = w.messageWidgets();
    ASSERT_EQ(widgets.size(), 4);
    emit widgets[1]->regenerateRequested(widgets[1]->message().id);
    // While the new version streams, the view shows the question being answered again and the
    // streaming reply, not the old branch.
    {
        const auto during = w.messageWidgets();
        ASSERT_EQ(during.size(), 2);
        EXPECT_EQ(during[0]->message().content, "Who made the light?");
        EXPECT_TRUE(during[1]->message().streaming);
    }
    ASSERT_TRUE(waitForReply(w));
    path = w.store().activePath(conv);
    ASSERT_EQ(path.size(), 2);
    EXPECT_EQ(w.store().siblings(path[1].id).size(), 2);
    widgets = w.messageWidgets();
    ASSERT_EQ(widgets.size(), 2);
    EXPECT_EQ(widgets[1]->message().siblingCount, 2);
    EXPECT_EQ(widgets[1]->message().siblingIndex, 1);

    // ‹ back to the first version: its follow-up turn is still there.
    emit widgets[1]->branchRequested(widgets[1]->message().id, -1);
    QTest::qWait(20);
    path = w.store().activePath(conv);
    ASSERT_EQ(path.size(), 4);
    EXPECT_EQ(path[2].content, "And the sea?");

    // Editing the first user message branches at the root and answers the new text.
    widgets = w.messageWidgets();
    emit widgets[0]->editRequested(widgets[0]->message().id, "Who made the sea?");
    ASSERT_TRUE(waitForReply(w));
    path = w.store().activePath(conv);
    ASSERT_EQ(path.size(), 2);
    EXPECT_EQ(path[0].content, "Who made the sea?");
    EXPECT_EQ(w.store().siblings(path[0].id).size(), 2);
    EXPECT_EQ(w.store().allMessages(conv).size(), 7);  // nothing was deleted

    // Export contains the active branch.
    EXPECT_THAT(w.store().exportMarkdown(conv).toStdString(), testing::HasSubstr("Who made the sea?"));
}

TEST_F(Gui, ModelsLoadInTheChosenPrecision) {
    {
        MainWindow& w = open(kDemo, {}, kHidden);
        ASSERT_TRUE(waitForModel(w));
        EXPECT_EQ(w.modelCard().precision, "bf16");  // automatic: the file's weights are bf16
    }
    QSettings(settingsFile(), QSettings::IniFormat).setValue("models/precision", "q8");
    MainWindow& w = open(kDemo, {}, kHidden);
    ASSERT_TRUE(waitForModel(w));
    EXPECT_EQ(w.modelCard().precision, "q8");
    setMaxTokens(w, 8);
    w.sendMessage("Who made the light?");
    ASSERT_TRUE(waitForReply(w));
    EXPECT_EQ(w.store().activePath(w.currentConversation()).size(), 2);
}

TEST_F(Gui, AttentionTabShowsTheConversationsMasksAttentionAndCache) {
    MainWindow& w = open(kDemo, {1300, 850});
    ASSERT_TRUE(waitForModel(w));
    setMaxTokens(w, 40);
    w.sendMessage("Who made the light? Tell me about the heaven and the earth and the sea.");
    ASSERT_TRUE(waitForReply(w));
    QSignalSpy ready(&w, &MainWindow::analysisReady);
    w.analyze();
    ASSERT_TRUE(ready.wait(20000));
    wp::ui::MaskView* mv = w.maskView();
    const auto& data = mv->data();
    const int T = data.positions();
    ASSERT_GT(T, 40) << "the conversation is longer than the 32-token window";
    ASSERT_EQ(data.layers.size(), 6u);
    EXPECT_EQ(data.layers[0].window, 32);
    EXPECT_EQ(data.layers[1].window, 0);
    for (int l = 0; l < 6; ++l) EXPECT_TRUE(data.hasAttention(l)) << l;
    // The last cache step: sliding layers hold exactly the last 32 positions, global ones all.
    ASSERT_FALSE(data.cacheSteps.empty());
    const auto& last = data.cacheSteps.back();
    EXPECT_EQ(last.length, T);
    EXPECT_EQ(last.held[0].size(), 32u);
    EXPECT_EQ(last.held[1].size(), static_cast<std::size_t>(T));
    EXPECT_EQ(*std::min_element(last.held[0].begin(), last.held[0].end()), T - 32);
    // Hover text says why a cell is masked.
    EXPECT_THAT(mv->describeCell(0, T - 1, 0).toStdString(), testing::HasSubstr("window"));
    EXPECT_THAT(mv->describeCell(1, 3, 5).toStdString(), testing::HasSubstr("future"));
    // The recorded probabilities of a row sum to one and vanish where the mask forbids.
    double sum = 0;
    const std::vector<float>& att = data.attention[0];
    for (int k = 0; k < T; ++k) {
        const float p = att[static_cast<std::size_t>(T - 1) * T + k];  // head 0, last query
        sum += p;
        if (!data.layers[0].allows(T - 1, k)) {
            EXPECT_EQ(p, 0.0f);
        }
    }
    EXPECT_NEAR(sum, 1.0, 1e-4);

    mv->setMode(wp::ui::MaskView::Mode::Mask);
    mv->setSmallMultiples(true);
    mv->fitToView();
    QTest::qWait(30);
    w.grab().save(screenshotPath("gui-mask-all-layers"));
    mv->setSmallMultiples(false);
    mv->setLayer(0);
    mv->setMode(wp::ui::MaskView::Mode::Attention);
    mv->fitToView();
    QTest::qWait(30);
    w.grab().save(screenshotPath("gui-attention-layer0"));
    mv->setMode(wp::ui::MaskView::Mode::Cache);
    mv->setCacheStep(static_cast<int>(data.cacheSteps.size()) - 1);
    mv->fitToView();
    QTest::qWait(30);
    w.grab().save(screenshotPath("gui-cache"));
    EXPECT_TRUE(mv->exportSvg(screenshotPath("gui-cache").replace(".png", ".svg")));
}

TEST_F(Gui, CompareViewStreamsTwoModelsInParallelAndStopsAll) {
    MainWindow& w = open(kDemo, {1500, 950});
    ASSERT_TRUE(waitForModel(w));
    wp::ui::CompareView* cv = w.compareView();
    QSignalSpy loaded(cv, &wp::ui::CompareView::modelLoaded);
    cv->setModel(0, sharedDir() + "/" + kDemo);
    cv->setModel(1, sharedDir() + "/" + kTinyQwen2);
    QElapsedTimer t;
    t.start();
    while (cv->loadedCount() < 2 && t.elapsed() < 20000) QTest::qWait(10);
    ASSERT_EQ(cv->loadedCount(), 2);
    EXPECT_EQ(cv->card(0).family, "gemma2");
    EXPECT_EQ(cv->card(1).family, "qwen2");
    cv->setPrompt("And God said, Let there be light");
    QSignalSpy done(cv, &wp::ui::CompareView::allFinished);
    cv->run();
    EXPECT_TRUE(cv->isRunning());
    ASSERT_TRUE(done.wait(60000));
    EXPECT_FALSE(cv->replyText(0).isEmpty());
    EXPECT_FALSE(cv->replyText(1).isEmpty());
    // Each tokenizer's own split of the prompt.
    EXPECT_FALSE(cv->tokenPieces(0).isEmpty());
    EXPECT_FALSE(cv->tokenPieces(1).isEmpty());
    EXPECT_NE(cv->tokenPieces(0), cv->tokenPieces(1));
    QWidget* tabs = w.findChild<QWidget*>("mainTabs");
    ASSERT_NE(tabs, nullptr);
    static_cast<QTabWidget*>(tabs)->setCurrentWidget(cv);
    cv->setMaskLayer(0);
    QTest::qWait(50);
    w.grab().save(screenshotPath("gui-compare"));

    // Stop all: a run of up to 100,000 tokens on both ends promptly.
    cv->setPrompt("In the beginning");
    cv->setMaxTokens(100000);
    done.clear();
    cv->run();
    QTest::qWait(100);
    ASSERT_TRUE(cv->isRunning());
    QElapsedTimer stop;
    stop.start();
    cv->stopAll();
    if (done.isEmpty()) {
        ASSERT_TRUE(done.wait(10000));
    }
    EXPECT_LT(stop.elapsed(), 2000);
    EXPECT_FALSE(cv->isRunning());
}

TEST_F(Gui, Screenshots) {
    MainWindow& w = open(kDemo, {1200, 800});
    ASSERT_TRUE(waitForModel(w));
    setMaxTokens(w, 400, false);
    // Mid-reply: grab while tokens are streaming.
    bool grabbed = false;
    QObject::connect(&w, &MainWindow::tokenArrived, [&] {
        static int n = 0;
        if (++n == 25 && !grabbed) {
            grabbed = true;
            w.messageWidgets().last()->flushRender();
            w.grab().save(screenshotPath("gui-streaming"));
        }
    });
    w.sendMessage("Tell me about the sea and the ships.");
    ASSERT_TRUE(waitForReply(w));
    QTest::qWait(100);
    // Token view with probabilities.
    auto widgets = w.messageWidgets();
    ASSERT_FALSE(widgets.isEmpty());
    widgets.last()->setShowTokens(true);
    QTest::qWait(50);
    const QString tip = widgets.last()->tokenTooltipAt(1);
    EXPECT_THAT(tip.toStdString(), testing::HasSubstr("p = "));
    w.grab().save(screenshotPath("gui-model-card-and-settings"));
    EXPECT_TRUE(QFileInfo::exists(screenshotPath("gui-model-card-and-settings")));
}

// The window opens inside the screen's available geometry with both docks wholly on screen and
// every part given at least the room it asks for, and stays so after a reply, on the attention
// tab and on the compare tab (where three mask views would not fit side by side).
TEST_F(Gui, OpensInsideTheScreenWithEveryDockVisible) {
    const QRect available = QGuiApplication::primaryScreen()->availableGeometry();
    if (QGuiApplication::platformName() == "offscreen") {
        EXPECT_EQ(available.size(), testScreenSize());
    }
    MainWindow& w = open(kDemo);
    ASSERT_TRUE(waitForModel(w));
    auto* tabs = w.findChild<QTabWidget*>("mainTabs");
    ASSERT_NE(tabs, nullptr);
    const auto docks = w.findChildren<QDockWidget*>();
    ASSERT_EQ(docks.size(), 2);

    auto expectInside = [&](const char* when) {
        SCOPED_TRACE(when);
        QTest::qWait(20);
        EXPECT_TRUE(available.contains(w.frameGeometry()))
            << "window " << str(w.frameGeometry()) << " on a screen of " << str(available);
        EXPECT_LE(w.minimumSizeHint().width(), available.width());
        EXPECT_LE(w.minimumSizeHint().height(), available.height());
        for (QDockWidget* dock : docks) {
            SCOPED_TRACE(dock->objectName().toStdString());
            EXPECT_TRUE(dock->isVisible());
            const QRect onScreen(dock->mapToGlobal(QPoint(0, 0)), dock->size());
            EXPECT_FALSE(onScreen.isEmpty());
            EXPECT_TRUE(available.contains(onScreen)) << str(onScreen);
            const QSize wanted = dock->widget()->minimumSizeHint();
            EXPECT_GE(dock->widget()->width(), wanted.width());
            EXPECT_GE(dock->widget()->height(), wanted.height());
        }
    };
    expectInside("with the model loaded");
    const QSize size = testScreenSize();
    w.grab().save(screenshotPath(QStringLiteral("gui-window-%1x%2").arg(size.width()).arg(size.height())));

    setMaxTokens(w, 24);
    w.sendMessage("Who made the light? Tell me about the heaven and the earth and the sea.");
    ASSERT_TRUE(waitForReply(w));
    expectInside("after a reply");
    QSignalSpy ready(&w, &MainWindow::analysisReady);
    w.analyze();
    ASSERT_TRUE(ready.wait(20000));
    expectInside("on the attention tab");
    tabs->setCurrentWidget(w.compareView());
    expectInside("on the compare tab");
}

// A GGUF file dropped on the window opens (a text file does not), its card says what each tensor
// type became, and it comes back from the recent models and at the next start.
TEST_F(Gui, ADroppedGgufFileOpensAndItsCardShowsTheConversions) {
    const QString gguf = tempPath("tiny-gemma2.gguf"), text = tempPath("notes.txt");
    ASSERT_TRUE(QFile::copy(QStringLiteral(WP_GGUF_SEED_DIR "/tiny-gemma2.gguf"), gguf));
    QFile notes(text);
    ASSERT_TRUE(notes.open(QIODevice::WriteOnly));
    notes.write("not a model");
    notes.close();
    MainWindow& w = open(kTinyGemma2);
    ASSERT_TRUE(waitForModel(w));
    EXPECT_TRUE(w.modelCard().weightConversions.isEmpty());  // a model folder: nothing converted from GGUF

    auto drag = [&](const QString& file) {
        QMimeData data;
        data.setUrls({QUrl::fromLocalFile(file)});
        QDragEnterEvent enter(QPoint(50, 50), Qt::CopyAction, &data, Qt::LeftButton, Qt::NoModifier);
        QApplication::sendEvent(&w, &enter);
        if (!enter.isAccepted()) return false;
        QDropEvent drop(QPointF(50, 50), Qt::CopyAction, &data, Qt::LeftButton, Qt::NoModifier);
        QApplication::sendEvent(&w, &drop);
        return true;
    };
    EXPECT_FALSE(drag(text));
    ASSERT_TRUE(drag(gguf));
    ASSERT_TRUE(waitFor([&] { return !w.isLoading() && w.modelCard().path == gguf; }, 20000)) << w.lastError().toStdString();
    const wp::ui::ModelCard& card = w.modelCard();
    EXPECT_EQ(card.name, "tiny-gemma2.gguf");
    EXPECT_EQ(card.family, "gemma2");
    EXPECT_TRUE(card.singleFile);
    EXPECT_EQ(card.weightConversions, QStringList{"Q8_0 \u2192 q8 (8, repacked)"});
    auto* label = w.findChild<QLabel*>("modelCard");
    ASSERT_NE(label, nullptr);
    EXPECT_THAT(label->text().toStdString(), testing::HasSubstr("Q8_0&nbsp;\u2192&nbsp;q8&nbsp;(8,&nbsp;repacked)"));
    EXPECT_THAT(label->text().toStdString(), testing::HasSubstr("built-in (the file has none)"));
    QTest::qWait(50);
    EXPECT_TRUE(w.grab().save(screenshotPath("gui-gguf-card")));

    // The recent models list it by its path.
    QMenu* recent = nullptr;
    for (QMenu* m : w.findChildren<QMenu*>())
        if (m->title() == "Recent Models") recent = m;
    ASSERT_NE(recent, nullptr);
    ASSERT_FALSE(recent->actions().isEmpty());
    EXPECT_EQ(recent->actions().first()->text(), gguf);

    // At the next start (no model named) the last model, the GGUF file, opens again.
    MainWindow& w2 = openPath(QString());
    ASSERT_TRUE(waitForModel(w2));
    EXPECT_EQ(w2.modelCard().path, gguf);
}

// Size, position and dock layout are saved when the window closes and come back at the next start.
TEST_F(Gui, SizePositionAndDockLayoutComeBackAfterRestart) {
    const QRect available = QGuiApplication::primaryScreen()->availableGeometry();
    const QRect placed(available.topLeft() + QPoint(40, 30), QSize(1200, 650));
    QRect saved;
    {
        MainWindow& w = open(kTinyQwen2);
        ASSERT_TRUE(waitForModel(w));
        w.setGeometry(placed);
        auto* modelDock = w.findChild<QDockWidget*>("modelDock");
        auto* settingsDock = w.findChild<QDockWidget*>("settingsDock");
        ASSERT_TRUE(modelDock && settingsDock);
        w.addDockWidget(Qt::LeftDockWidgetArea, modelDock);
        settingsDock->close();
        QTest::qWait(20);
        saved = w.geometry();
        ASSERT_EQ(saved.size(), placed.size());
        w.close();
    }
    MainWindow& w = open(kTinyQwen2);
    QTest::qWait(20);
    EXPECT_EQ(w.geometry(), saved) << str(w.geometry()) << " instead of " << str(saved);
    auto* modelDock = w.findChild<QDockWidget*>("modelDock");
    auto* settingsDock = w.findChild<QDockWidget*>("settingsDock");
    ASSERT_TRUE(modelDock && settingsDock);
    EXPECT_EQ(w.dockWidgetArea(modelDock), Qt::LeftDockWidgetArea);
    EXPECT_TRUE(modelDock->isVisible());
    EXPECT_FALSE(settingsDock->isVisible());
}

// A window left larger than the screen (or saved on a bigger one) opens inside the screen.
TEST_F(Gui, ASavedSizeLargerThanTheScreenIsNotRestored) {
    const QRect available = QGuiApplication::primaryScreen()->availableGeometry();
    {
        MainWindow& w = open(kTinyQwen2);
        w.setGeometry(QRect(available.topLeft(), available.size() * 1.5));
        QTest::qWait(20);
        w.close();
    }
    MainWindow& w = open(kTinyQwen2);
    QTest::qWait(20);
    EXPECT_TRUE(available.contains(w.frameGeometry()))
        << "window " << str(w.frameGeometry()) << " on a screen of " << str(available);
}

// The attention tab's other two views on the demo model: the logit lens's output row is the
// model's own most probable next token at every position of its window, and a click on a head of
// the head summary opens that layer and head in the attention view.
TEST_F(Gui, LogitLensAndHeadSummaryOpenTheClickedHead) {
    using wp::ui::AttentionTab;
    MainWindow& w = open(kDemo);
    ASSERT_TRUE(waitForModel(w));
    auto* tab = w.findChild<AttentionTab*>();
    auto* tabs = static_cast<QTabWidget*>(w.findChild<QWidget*>("mainTabs"));
    ASSERT_TRUE(tab && tabs);
    tabs->setCurrentWidget(tab);
    const QString text = QStringLiteral(
        "In the beginning God created the heaven and the earth. And the earth was without form, and void; and "
        "darkness was upon the face of the deep. And the Spirit of God moved upon the face of the waters.");
    tab->findChild<QLineEdit*>("analyzeText")->setText(text);
    auto* status = tab->findChild<QLabel*>("analyzeStatus");

    // The lens runs by itself when its view is shown for a new text: the last 48 positions.
    QSignalSpy lensReady(tab, &AttentionTab::lensReady);
    tab->showView(AttentionTab::View::Lens);
    EXPECT_TRUE(tab->isBusy());
    ASSERT_TRUE(lensReady.wait(60000));
    const wp::ui::LensViewData& lens = tab->lensGrid()->data();
    ASSERT_FALSE(lens.empty()) << status->text().toStdString();
    const int T = lens.positions();
    ASSERT_GT(T, 48);
    EXPECT_EQ(lens.layers, 6);
    EXPECT_EQ(lens.count, 48);
    EXPECT_EQ(lens.first, T - 48);

    // The model's own logits, in the app's precision, from core directly.
    wp::LoadOptions options;
    options.precision = wp::parse_precision(w.modelCard().precision.toStdString());
    auto lm = wp::LoadedModel::load((sharedDir() + "/" + kDemo).toStdString(), {}, options);
    const std::vector<int> ids = lm->tokenizer().encode(text.toStdString(), true);
    ASSERT_EQ(ids, lens.ids);
    auto ctx = lm->model().new_context();
    const std::span<const float> logits = lm->model().forward(*ctx, ids, wp::LogitsMode::All);
    const int V = lm->model().config().vocab_size;
    int compared = 0;
    for (int c = 0; c < lens.count; ++c) {
        const float* row = logits.data() + static_cast<std::size_t>(lens.first + c) * V;
        const int best = static_cast<int>(std::max_element(row, row + V) - row);
        float second = -INFINITY;
        for (int v = 0; v < V; ++v)
            if (v != best) second = std::max(second, row[v]);
        if (row[best] - second < 1e-4f) continue;  // a near tie may fall either way between two passes
        EXPECT_EQ(lens.id(lens.layers - 1, c), best) << "position " << lens.first + c;
        EXPECT_EQ(tab->lensGrid()->cellText(lens.layers - 1, c), lens.pieces.value(best));
        ++compared;
    }
    EXPECT_GT(compared, 40);
    EXPECT_THAT(tab->lensGrid()->describeCell(lens.layers - 1, 0).toStdString(), testing::HasSubstr("Output"));
    EXPECT_THAT(tab->lensGrid()->describeCell(2, 5).toStdString(), testing::HasSubstr("Entropy"));
    EXPECT_FALSE(tab->findChild<QWidget*>("analyzeStop")->isVisible());
    QTest::qWait(30);
    w.grab().save(screenshotPath("gui-logit-lens"));

    // Another window of positions: the first ones.
    lensReady.clear();
    tab->lensGrid()->findChild<QSpinBox*>("lensFirst")->setValue(0);
    ASSERT_TRUE(lensReady.wait(60000));
    EXPECT_EQ(tab->lensGrid()->data().first, 0);
    EXPECT_EQ(tab->lensGrid()->data().count, 48);

    // The head summary: every layer and head of the same text.
    QSignalSpy headsReady(tab, &AttentionTab::headSummaryReady);
    tab->showView(AttentionTab::View::Heads);
    ASSERT_TRUE(headsReady.wait(60000));
    wp::ui::HeadSummaryGrid* grid = tab->headSummaryGrid();
    const wp::ui::HeadSummaryData& heads = grid->data();
    ASSERT_FALSE(heads.empty()) << status->text().toStdString();
    EXPECT_EQ(heads.layers, 6);
    EXPECT_EQ(heads.heads, 4);
    EXPECT_EQ(heads.positions, T);
    using Metric = wp::ui::HeadSummaryData::Metric;
    EXPECT_TRUE(std::isfinite(heads.value(0, 0, Metric::WindowUsed)));  // sliding
    EXPECT_TRUE(std::isnan(heads.value(1, 0, Metric::WindowUsed)));     // global
    EXPECT_THAT(grid->describeCell(3, 2).toStdString(), testing::HasSubstr("Mean distance"));
    QTest::qWait(30);
    w.grab().save(screenshotPath("gui-head-summary"));
    grid->setMetric(Metric::FirstToken);
    QTest::qWait(30);
    w.grab().save(screenshotPath("gui-head-summary-first-token"));

    // A click on layer 3, head 2: the attention view of that head (the attention is computed first).
    QSignalSpy analysisReady(tab, &AttentionTab::analysisReady);
    QTest::mouseClick(grid->canvas(), Qt::LeftButton, {}, grid->cellRect(3, 2).center());
    EXPECT_EQ(tab->view(), AttentionTab::View::Mask);
    ASSERT_TRUE(analysisReady.wait(60000));
    wp::ui::MaskView* mv = w.maskView();
    EXPECT_EQ(mv->mode(), wp::ui::MaskView::Mode::Attention);
    EXPECT_EQ(mv->layer(), 3);
    EXPECT_EQ(mv->head(), 2);
    // The summary's first-token share is that head's column 0, as the attention view has it.
    double first = 0;
    for (int q = 1; q < T; ++q) first += mv->data().probability(3, 2, q, 0);
    EXPECT_NEAR(first / (T - 1), heads.value(3, 2, Metric::FirstToken), 1e-4);
    QTest::qWait(30);
    w.grab().save(screenshotPath("gui-head-clicked-attention"));

    // With the attention there, a click switches at once.
    tab->showView(AttentionTab::View::Heads);
    QTest::mouseClick(grid->canvas(), Qt::LeftButton, {}, grid->cellRect(0, 1).center());
    EXPECT_EQ(tab->view(), AttentionTab::View::Mask);
    EXPECT_FALSE(tab->isAnalyzing());
    EXPECT_EQ(mv->layer(), 0);
    EXPECT_EQ(mv->head(), 1);

    // Stop: the request ends, the tab is idle, and the next one runs.
    tab->findChild<QLineEdit*>("analyzeText")->setText(QStringLiteral("And God said, Let there be light: and there was light."));
    tab->summarizeHeads(QStringLiteral("And God said, Let there be light: and there was light."));
    EXPECT_TRUE(tab->findChild<QWidget*>("analyzeStop")->isVisible());
    tab->stop();
    EXPECT_FALSE(tab->isBusy());
    EXPECT_FALSE(tab->findChild<QWidget*>("analyzeStop")->isVisible());
    headsReady.clear();
    tab->summarizeHeads(QStringLiteral("And God said, Let there be light: and there was light."));
    ASSERT_TRUE(headsReady.wait(60000));
    EXPECT_FALSE(grid->data().empty()) << status->text().toStdString();
}

// A task-head model has no language-model head: the lens says so instead of showing a grid.
TEST_F(Gui, LogitLensOfATaskHeadModelSaysWhyThereIsNone) {
    GUI_TEST_REQUIRE_MODELS("heads/tiny-qwen2-seqcls");
    MainWindow& w = open("heads/tiny-qwen2-seqcls");
    ASSERT_TRUE(waitForModel(w));
    auto* tab = w.findChild<wp::ui::AttentionTab*>();
    ASSERT_NE(tab, nullptr);
    QSignalSpy lensReady(tab, &wp::ui::AttentionTab::lensReady);
    tab->runLens(QStringLiteral("And God said, Let there be light"));
    ASSERT_TRUE(lensReady.wait(30000));
    EXPECT_TRUE(tab->lensGrid()->data().empty());
    EXPECT_THAT(tab->findChild<QLabel*>("analyzeStatus")->text().toStdString(), testing::HasSubstr("no logit lens"));
}

// The compare view's "Use current conversation" takes the chat's open conversation.
TEST_F(Gui, TheDivergenceTextCanBeTheChatsConversation) {
    MainWindow& w = open(kDemo, {1366, 768});
    ASSERT_TRUE(waitForModel(w)) << w.lastError().toStdString();
    setMaxTokens(w, 12);
    w.sendMessage("Who made the light?");
    ASSERT_TRUE(waitForReply(w));
    const auto path = w.store().activePath(w.currentConversation());
    ASSERT_EQ(path.size(), 2);
    auto* tabs = w.findChild<QTabWidget*>("mainTabs");
    ASSERT_NE(tabs, nullptr);
    tabs->setCurrentWidget(w.compareView());
    EXPECT_EQ(w.compareView()->conversationText(),
              QStringLiteral("Who made the light?\n\n") + path[1].content.trimmed());
}

}  // namespace

int main(int argc, char** argv) { return gui_test::runGuiTests(argc, argv, gui_test::testScreenSize()); }

