// windowpane: the desktop app.
#include <QApplication>
#include <QCommandLineParser>
#include <QDir>
#include <QFileInfo>
#include <QIcon>

#include "main_window.h"
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
        QCommandLineOption model("model", "Open the model folder DIR (config.json + safetensors + tokenizer).", "DIR");
        QCommandLineOption dataDir("data-dir",
                                   "Keep conversations and settings in DIR instead of the user's directories.", "DIR");
        parser.addOption(model);
        parser.addOption(dataDir);
        parser.addPositionalArgument("model-dir", "Same as --model.", "[DIR]");
        parser.process(core);
        options.modelPath = parser.value(model);
        if (options.modelPath.isEmpty() && !parser.positionalArguments().isEmpty())
            options.modelPath = parser.positionalArguments().first();
        if (!options.modelPath.isEmpty()) {
            if (!QFileInfo(options.modelPath).isDir()) {
                fprintf(stderr, "windowpane: %s is not a folder\n", qPrintable(options.modelPath));
                return 2;
            }
            options.modelPath = QDir(options.modelPath).absolutePath();
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
    return app.exec();
}
