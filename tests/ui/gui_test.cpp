// The real desktop app driven under QT_QPA_PLATFORM=offscreen: chat with a fixture model, stop,
// persistence across restarts, a broken model folder, GUI responsiveness while tokens stream, and
// screenshots for people to look at.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <QApplication>
#include <QDir>
#include <QElapsedTimer>
#include <QFile>
#include <QJsonArray>
#include <QLabel>
#include <QPlainTextEdit>
#include <QSignalSpy>
#include <QTemporaryDir>
#include <QTest>
#include <QTimer>
#include <QTextBrowser>

#include "main_window.h"
#include "widgets/message_widget.h"
#include "widgets/settings_panel.h"

namespace {

using wp::ui::MainWindow;

QString sharedDir() {
    const QByteArray env = qgetenv("WP_SHARED_DIR");
    return env.isEmpty() ? QStringLiteral(WP_SHARED_DIR) : QString::fromUtf8(env);
}

#define REQUIRE_FIXTURES()                                                                          \
    do {                                                                                            \
        if (!QFileInfo::exists(sharedDir() + "/fixtures/tiny-gemma2/config.json")) {                \
            if (!qEnvironmentVariableIsEmpty("CI")) FAIL() << "shared fixtures missing (CI is set)"; \
            GTEST_SKIP() << "shared fixtures not found at " << sharedDir().toStdString();         \
        }                                                                                           \
    } while (0)

QString screenshotPath(const QString& name) { return QStringLiteral(WP_SCREENSHOT_DIR "/") + name + ".png"; }

struct App {
    QTemporaryDir dir;
    wp::ui::AppOptions options(const QString& model) {
        wp::ui::AppOptions o;
        o.modelPath = model;
        o.dataDir = dir.path() + "/data";
        o.settingsFile = dir.path() + "/settings.ini";
        return o;
    }
};

bool waitForModel(MainWindow& w, int ms = 20000) {
    QElapsedTimer t;
    t.start();
    while ((w.isLoading() || w.modelCard().path.isEmpty()) && t.elapsed() < ms) QTest::qWait(10);
    return !w.modelCard().path.isEmpty() && !w.isLoading();
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

TEST(Gui, ChatStreamsPersistsAndComesBackAfterRestart) {
    REQUIRE_FIXTURES();
    App app;
    const QString demo = sharedDir() + "/models/windowpane-demo-gemma2";
    qint64 conv = 0;
    QString reply;
    {
        MainWindow w(app.options(demo));
        w.resize(1100, 760);
        w.show();
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
    MainWindow w2(app.options(demo));
    w2.show();
    ASSERT_TRUE(waitForModel(w2));
    EXPECT_EQ(w2.currentConversation(), conv);
    const auto widgets = w2.messageWidgets();
    ASSERT_EQ(widgets.size(), 2);
    EXPECT_EQ(widgets[1]->message().content, reply);
}

TEST(Gui, StopEndsTheReplyWithinAToken) {
    REQUIRE_FIXTURES();
    App app;
    // Random weights never stop by themselves.
    MainWindow w(app.options(sharedDir() + "/fixtures/tiny-gemma2"));
    w.show();
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

TEST(Gui, BrokenModelFolderShowsAnErrorAndTheAppKeepsChatting) {
    REQUIRE_FIXTURES();
    App app;
    MainWindow w(app.options(sharedDir() + "/fixtures/tiny-qwen2"));
    w.show();
    ASSERT_TRUE(waitForModel(w));
    const QString good = w.modelCard().path;
    const QString broken = app.dir.path() + "/broken";
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

TEST(Gui, EventLoopStaysResponsiveWhileTokensStream) {
    REQUIRE_FIXTURES();
    App app;
    MainWindow w(app.options(sharedDir() + "/fixtures/tiny-gemma2"));
    w.resize(1000, 700);
    w.show();
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

TEST(Gui, Screenshots) {
    REQUIRE_FIXTURES();
    App app;
    MainWindow w(app.options(sharedDir() + "/models/windowpane-demo-gemma2"));
    w.resize(1200, 800);
    w.show();
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

}  // namespace

int main(int argc, char** argv) {
    qputenv("QT_QPA_PLATFORM", qgetenv("QT_QPA_PLATFORM").isEmpty() ? QByteArray("offscreen") : qgetenv("QT_QPA_PLATFORM"));
    QApplication app(argc, argv);
    testing::InitGoogleTest(&argc, argv);
    return RUN_ALL_TESTS();
}
