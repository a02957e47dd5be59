// windowpane: the desktop app.
#include <QApplication>
#include <QCommandLineParser>
#include <QDir>
#include <QFileInfo>
#include <QIcon>
#include <csignal>
#include <cstdio>

#include "engine/model_paths.h"
#include "main_window.h"
#include "widgets/settings_panel.h"
#include "wp/model/threads.h"
#include "wp/version.h"

int main(int argc, char** argv) {
    // Options are read before the GUI starts, so --help and --version work without a display.
    wp::ui::AppOptions options;
    {
        QCoreApplication core(argc, argv);
        QCoreApplication::setApplicationName("windowpane");
        QCoreApplication::setApplicationVersion(WP_VERSION);
        QCommandLineParser parser;
        parser.setApplicationDescription(
            "Chat with Gemma, Gemma2 and Qwen2 models on the CPU and see what every layer attends to.");
        parser.addHelpOption();
        parser.addVersionOption();
        QCommandLineOption model("model",
                                 "Open the model at PATH: a model folder (config.json + safetensors + tokenizer) or a "
                                 "GGUF file (.gguf, or an Ollama blob).",
                                 "PATH");
        QCommandLineOption dataDir("data-dir",
                                   "Keep conversations and settings in DIR instead of the user's directories.", "DIR");
        parser.addOption(model);
        parser.addOption(dataDir);
        parser.addPositionalArgument("model", "Same as --model.", "[PATH]");
        parser.process(core);
        options.modelPath = parser.value(model);
        if (options.modelPath.isEmpty() && !parser.positionalArguments().isEmpty())
            options.modelPath = parser.positionalArguments().first();
        if (!options.modelPath.isEmpty()) {
            if (!QFileInfo(options.modelPath).isDir() && !wp::ui::isGgufFile(options.modelPath)) {
                fprintf(stderr, "windowpane: %s is not a model folder or a GGUF file\n", qPrintable(options.modelPath));
                return 2;
            }
            options.modelPath = QDir::cleanPath(QFileInfo(options.modelPath).absoluteFilePath());
        }
        options.dataDir = parser.value(dataDir);
        if (!options.dataDir.isEmpty()) options.settingsFile = QDir(options.dataDir).filePath("settings.ini");
    }

    wp::set_blas_threads(0);  // one per core, before any model runs
    QApplication app(argc, argv);
    QApplication::setApplicationName("windowpane");
    QApplication::setOrganizationName("windowpane");
    QApplication::setApplicationDisplayName("Windowpane");
    QApplication::setApplicationVersion(WP_VERSION);
    QApplication::setDesktopFileName("windowpane");
    QApplication::setWindowIcon(QIcon::fromTheme("windowpane"));  // installed by the package

    wp::ui::MainWindow window(options);  // sized to fit the screen, or as the user left it
    window.show();

    // Test hooks for the end-to-end crash test (tests/ui/crash_recovery_test.cpp), inert unless set:
    // WP_TEST_SEND=TEXT sends TEXT once the model is ready, asking for a long sampled reply, and
    // says on stderr when the reply streams and ends; WP_TEST_KILL_AFTER_TOKENS=N has the app
    // SIGKILL itself when the window has shown N tokens of it (mid-reply whatever the machine's
    // load: the demo model writes a whole reply faster than another process can be sure to react);
    // WP_TEST_QUIT_WHEN_READY=1 quits once loaded.
    const QString autoSend = qEnvironmentVariable("WP_TEST_SEND");
    const int killAfter = qEnvironmentVariableIntValue("WP_TEST_KILL_AFTER_TOKENS");
    const bool quitWhenReady = qEnvironmentVariable("WP_TEST_QUIT_WHEN_READY") == "1";
    if (!autoSend.isEmpty() || quitWhenReady) {
        QObject::connect(&window, &wp::ui::MainWindow::modelReady, &window, [&window, autoSend, quitWhenReady] {
            if (quitWhenReady) {
                fprintf(stderr, "windowpane: test: ready\n");
                QCoreApplication::quit();
                return;
            }
            wp::ui::GenerationSettings s = window.settingsPanel()->settings();
            s.greedy = false;  // a flat distribution rarely picks the end token: the reply runs long
            s.temperature = 5.0;
            s.topK = 0;
            s.topP = 1.0;
            s.minP = 0.0;
            s.maxNewTokens = 1 << 20;
            window.settingsPanel()->setSettings(s);
            window.sendMessage(autoSend);
        }, Qt::SingleShotConnection);
        QObject::connect(&window, &wp::ui::MainWindow::tokenArrived, &window,
                         [] { fprintf(stderr, "windowpane: test: streaming\n"); }, Qt::SingleShotConnection);
        QObject::connect(&window, &wp::ui::MainWindow::replyFinished, &window,
                         [] { fprintf(stderr, "windowpane: test: reply finished\n"); });
        if (killAfter > 0)
            QObject::connect(&window, &wp::ui::MainWindow::tokenArrived, &window, [killAfter, shown = 0]() mutable {
                if (++shown < killAfter) return;
                fprintf(stderr, "windowpane: test: SIGKILL after %d tokens\n", shown);
                ::raise(SIGKILL);
            });
    }
    return app.exec();
}
