// What the GUI test programs share: where the shared fixture models and the screenshots are, waiting
// on the event loop, skipping (or under CI failing) without fixtures, and an offscreen main().
// Each program defines WP_SHARED_DIR and WP_SCREENSHOT_DIR (tests/CMakeLists.txt).
#pragma once

#include <gtest/gtest.h>

#include <QApplication>
#include <QElapsedTimer>
#include <QFile>
#include <QFileInfo>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QSize>
#include <QStandardPaths>
#include <QString>
#include <QTemporaryDir>
#include <QTest>
#include <cstdio>
#include <initializer_list>

namespace gui_test {

// The shared fixture models: WP_SHARED_DIR in the environment, else the build's.
inline QString sharedDir() {
    const QByteArray env = qgetenv("WP_SHARED_DIR");
    return env.isEmpty() ? QStringLiteral(WP_SHARED_DIR) : QString::fromUtf8(env);
}

inline QString screenshotPath(const QString& name) { return QStringLiteral(WP_SCREENSHOT_DIR "/") + name + ".png"; }

// The offscreen screen: 1366 x 768 unless WP_TEST_SCREEN says otherwise ("1920x1080").
inline QSize testScreenSize() {
    const QByteArray env = qgetenv("WP_TEST_SCREEN");
    const QList<QByteArray> wh = (env.isEmpty() ? QByteArray("1366x768") : env).split('x');
    return {wh.value(0).toInt(), wh.value(1).toInt()};
}

// Runs the event loop until `pred` holds or `ms` have passed; whether it holds.
template <class Pred>
bool waitFor(Pred pred, int ms = 30000) {
    QElapsedTimer t;
    t.start();
    while (!pred() && t.elapsed() < ms) QTest::qWait(10);
    return pred();
}

// The first of `models` (folders under sharedDir()) without a config.json; empty when all are there.
inline QString missingModel(std::initializer_list<const char*> models) {
    for (const char* m : models)
        if (!QFileInfo::exists(sharedDir() + "/" + m + "/config.json")) return QString::fromUtf8(m);
    return {};
}

// Runs the tests under QApplication in Qt's test mode. Offscreen (the default) gets one screen of
// `screen`'s size, which that platform plugin reads from a JSON file named in its arguments (an
// empty `screen`: the plugin's own).
inline int runGuiTests(int argc, char** argv, QSize screen = {}) {
    QTemporaryDir platformDir;
    const QByteArray platform = qgetenv("QT_QPA_PLATFORM");
    if ((platform.isEmpty() || platform == "offscreen") && !screen.isValid()) {
        qputenv("QT_QPA_PLATFORM", "offscreen");
    } else if (platform.isEmpty() || platform == "offscreen") {
        const QJsonObject s{{"name", "screen"}, {"x", 0}, {"y", 0}, {"width", screen.width()}, {"height", screen.height()}};
        QFile config(platformDir.filePath("offscreen.json"));
        if (!config.open(QIODevice::WriteOnly) ||
            config.write(QJsonDocument(QJsonObject{{"screens", QJsonArray{s}}}).toJson()) < 0) {
            fprintf(stderr, "cannot write %s\n", qPrintable(config.fileName()));
            return 1;
        }
        config.close();
        qputenv("QT_QPA_PLATFORM", "offscreen:configfile=" + config.fileName().toUtf8());
    }
    QStandardPaths::setTestModeEnabled(true);
    QApplication app(argc, argv);
    testing::InitGoogleTest(&argc, argv);
    return RUN_ALL_TESTS();
}

}  // namespace gui_test

// In a test's SetUp: skips the test when one of the shared fixture models is missing, and fails it
// instead when CI is set (a CI run must not pass by skipping everything).
#define GUI_TEST_REQUIRE_MODELS(...)                                                                         \
    do {                                                                                                      \
        if (const QString missing = gui_test::missingModel({__VA_ARGS__}); !missing.isEmpty()) {             \
            if (!qEnvironmentVariableIsEmpty("CI"))                                                           \
                FAIL() << "shared fixture " << missing.toStdString() << " missing (CI is set)";               \
            GTEST_SKIP() << "shared fixtures not found at " << gui_test::sharedDir().toStdString();           \
        }                                                                                                     \
    } while (0)
