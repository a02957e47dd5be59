// The model library and Get Models in the app: the library lists the Hugging Face cache and added
// folders (with why a model does not open) and opens a model; Get Models searches a fake hub
// (tests/hub/fake_hub.py through HF_ENDPOINT), shows a repo's files, downloads one with progress,
// and the result opens. Screenshots of both dialogs go to WP_SCREENSHOT_DIR.
#include <gtest/gtest.h>
#include <QCryptographicHash>
#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QLabel>
#include <QProcess>
#include <QProgressBar>
#include <QPushButton>
#include <QSignalSpy>
#include <QTabWidget>
#include <QTableWidget>
#include <QTemporaryDir>
#include <QTest>
#include <memory>

#include "gui_test_support.h"
#include "main_window.h"
#include "widgets/compare_view.h"
#include "widgets/get_models_dialog.h"
#include "widgets/model_library_dialog.h"

namespace {

using namespace gui_test;
using wp::ui::MainWindow;

bool copyFiles(const QString& from, const QString& to) {
    QDir().mkpath(to);
    for (const QFileInfo& f : QDir(from).entryInfoList(QDir::Files))
        if (!QFile::copy(f.filePath(), to + "/" + f.fileName())) return false;
    return true;
}

// Each test: its own Hugging Face home, library file and app data, all in a temporary folder.
class Library : public testing::Test {
protected:
    void SetUp() override {
        GUI_TEST_REQUIRE_MODELS("fixtures/tiny-gemma2");
        ASSERT_TRUE(dir_.isValid());
        qputenv("HF_HOME", path("hf").toUtf8());
        qputenv("XDG_CONFIG_HOME", path("config").toUtf8());
        for (const char* v : {"HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_TOKEN", "HF_TOKEN_PATH", "HF_ENDPOINT"}) qunsetenv(v);
        // LM Studio's and Ollama's folders: this test's own (empty unless a test fills them).
        qputenv("WP_LMSTUDIO_MODELS", path("lmstudio").toUtf8());
        qputenv("OLLAMA_MODELS", path("ollama").toUtf8());
    }
    void TearDown() override {
        window_.reset();
        if (hub_) {
            hub_->terminate();
            hub_->waitForFinished(5000);
        }
    }

    QString path(const QString& name) const { return dir_.path() + "/" + name; }

    MainWindow& open() {
        wp::ui::AppOptions o;
        o.modelPath = sharedDir() + "/models/windowpane-demo-gemma2";
        o.dataDir = path("data");
        o.settingsFile = path("settings.ini");
        window_ = std::make_unique<MainWindow>(o);
        window_->resize(1200, 740);
        window_->show();
        return *window_;
    }

    // A snapshot of `fixture` in the hub cache as huggingface_hub lays it out.
    QString cache(const QString& repoFolder, const QString& fixture) {
        const QString repo = path("hf/hub/" + repoFolder), commit = "0123456789abcdef0123456789abcdef01234567";
        const QString snap = repo + "/snapshots/" + commit;
        QDir().mkpath(repo + "/blobs");
        QDir().mkpath(snap);
        QDir().mkpath(repo + "/refs");
        for (const QFileInfo& f : QDir(sharedDir() + "/" + fixture).entryInfoList(QDir::Files)) {
            const QString blob = "blob-" + f.fileName();
            EXPECT_TRUE(QFile::copy(f.filePath(), repo + "/blobs/" + blob));
            EXPECT_TRUE(QFile::link("../../blobs/" + blob, snap + "/" + f.fileName()));
        }
        QFile ref(repo + "/refs/main");
        EXPECT_TRUE(ref.open(QIODevice::WriteOnly));
        ref.write(commit.toUtf8());
        return snap;
    }

    // tests/hub/fake_hub.py on `root`; sets HF_ENDPOINT.
    bool startHub(const QString& root, const QStringList& extra) {
        hub_ = std::make_unique<QProcess>();
        hub_->start(QStringLiteral("python3"), QStringList{WP_FAKE_HUB, "--root", root} + extra);
        if (!hub_->waitForStarted(10000)) return false;
        QByteArray line;
        if (!waitFor([&] { line += hub_->readAllStandardOutput(); return line.contains('\n'); }, 20000)) return false;
        const QList<QByteArray> parts = line.trimmed().split(' ');
        if (parts.size() != 2 || parts[0] != "PORT") return false;
        qputenv("HF_ENDPOINT", "http://127.0.0.1:" + parts[1]);
        return true;
    }

private:
    QTemporaryDir dir_;
    std::unique_ptr<MainWindow> window_;
    std::unique_ptr<QProcess> hub_;
};

TEST_F(Library, ListsTheCacheAndAddedFoldersAndOpensAModel) {
    const QString snap = cache("models--acme--tiny-gemma2", "fixtures/tiny-gemma2");
    QDir().mkpath(path("config/windowpane"));
    QFile lib(path("config/windowpane/library.json"));
    ASSERT_TRUE(lib.open(QIODevice::WriteOnly));
    // A classifier (the Classify tab opens it) and a family Windowpane does not run.
    QDir().mkpath(path("llama"));
    QFile llama(path("llama/config.json"));
    ASSERT_TRUE(llama.open(QIODevice::WriteOnly));
    llama.write(R"({"model_type": "llama", "architectures": ["LlamaForCausalLM"]})");
    llama.close();
    lib.write(QStringLiteral(R"({"folders": ["%1", "%2"]})").arg(sharedDir() + "/heads/tiny-qwen2-seqcls", path("llama")).toUtf8());
    lib.close();

    MainWindow& w = open();
    ASSERT_TRUE(waitFor([&] { return !w.isLoading() && !w.modelCard().path.isEmpty(); }, 20000));
    wp::ui::ModelLibraryDialog* d = w.showLibrary();
    ASSERT_TRUE(waitFor([&] { return d->entries().size() == 3; }, 10000));
    const auto& e = d->entries();
    EXPECT_EQ(e[0].name, "acme/tiny-gemma2");
    EXPECT_TRUE(e[0].supported) << e[0].why.toStdString();
    EXPECT_EQ(e[0].family, "gemma2");
    EXPECT_EQ(e[0].head, "chat");
    EXPECT_GT(e[0].parameters, 0);
    EXPECT_TRUE(e[1].supported) << e[1].why.toStdString();
    EXPECT_EQ(e[1].head, "classification");
    EXPECT_FALSE(e[2].supported);
    EXPECT_TRUE(e[2].why.contains("llama")) << e[2].why.toStdString();
    EXPECT_EQ(d->table()->item(0, 0)->text(), "acme/tiny-gemma2");
    EXPECT_TRUE(d->table()->item(2, 0)->toolTip().contains("cannot open"));
    // The compare view offers the library's chat models too, not the classifier.
    EXPECT_TRUE(waitFor([&] { return w.libraryModels().contains(snap); }, 5000));
    EXPECT_FALSE(w.libraryModels().contains(e[1].dir));
    auto* tabs = w.findChild<QTabWidget*>();
    ASSERT_NE(tabs, nullptr);
    tabs->setCurrentWidget(w.compareView());
    EXPECT_TRUE(w.compareView()->candidateLabels(0).contains("acme/tiny-gemma2"));
    QTest::qWait(50);
    EXPECT_TRUE(d->grab().save(screenshotPath("model-library")));

    // The unsupported row cannot be opened; the supported one opens with the Open button.
    QPushButton* openButton = nullptr;
    for (QPushButton* b : d->findChildren<QPushButton*>())
        if (b->text() == "Open") openButton = b;
    ASSERT_NE(openButton, nullptr);
    d->table()->selectRow(2);
    EXPECT_FALSE(openButton->isEnabled());
    d->table()->selectRow(0);
    EXPECT_TRUE(openButton->isEnabled());
    openButton->click();
    ASSERT_TRUE(waitFor([&] { return !w.isLoading() && w.modelCard().path == snap; }, 20000)) << w.lastError().toStdString();
    EXPECT_EQ(w.modelCard().family, "gemma2");
    EXPECT_EQ(w.modelCard().name, "acme/tiny-gemma2");  // the repo, not the snapshot's commit
}

// GGUF files: in an added folder, in LM Studio's folder and as Ollama's blob with its manifest. The
// Ollama model opens under its own name.
TEST_F(Library, ListsGgufFilesOfAddedFoldersLmStudioAndOllamaAndOpensOne) {
    const QString seed = QStringLiteral(WP_GGUF_SEED_DIR "/tiny-gemma2.gguf");
    QDir().mkpath(path("ggufs/sub"));
    ASSERT_TRUE(QFile::copy(seed, path("ggufs/sub/mine-Q8_0.gguf")));
    QFile fake(path("ggufs/fake.gguf"));  // a .gguf name without GGUF inside
    ASSERT_TRUE(fake.open(QIODevice::WriteOnly));
    fake.write("not a model");
    fake.close();
    QDir().mkpath(path("lmstudio/acme/tiny-GGUF"));
    ASSERT_TRUE(QFile::copy(seed, path("lmstudio/acme/tiny-GGUF/tiny-Q8_0.gguf")));
    const QString hex(64, 'c');
    const QString blob = path("ollama/blobs/sha256-" + hex);
    QDir().mkpath(path("ollama/blobs"));
    ASSERT_TRUE(QFile::copy(seed, blob));
    QDir().mkpath(path("ollama/manifests/registry.ollama.ai/library/tiny"));
    QFile manifest(path("ollama/manifests/registry.ollama.ai/library/tiny/latest"));
    ASSERT_TRUE(manifest.open(QIODevice::WriteOnly));
    manifest.write(QStringLiteral(R"({"schemaVersion": 2, "layers": [{"mediaType": "application/vnd.ollama.image.model",
        "digest": "sha256:%1", "size": 9312}]})").arg(hex).toUtf8());
    manifest.close();
    QDir().mkpath(path("config/windowpane"));
    QFile lib(path("config/windowpane/library.json"));
    ASSERT_TRUE(lib.open(QIODevice::WriteOnly));
    lib.write(QStringLiteral(R"({"folders": ["%1"]})").arg(path("ggufs")).toUtf8());
    lib.close();

    MainWindow& w = open();
    ASSERT_TRUE(waitFor([&] { return !w.isLoading() && !w.modelCard().path.isEmpty(); }, 20000));
    wp::ui::ModelLibraryDialog* d = w.showLibrary();
    ASSERT_TRUE(waitFor([&] { return d->entries().size() == 4; }, 10000));
    const auto& e = d->entries();
    QStringList names;
    for (const auto& x : e) names << x.name;
    EXPECT_EQ(names, (QStringList{"fake.gguf", "mine-Q8_0.gguf", "tiny-Q8_0.gguf", "tiny:latest"}));
    EXPECT_FALSE(e[0].supported);
    EXPECT_TRUE(e[0].why.contains("not a GGUF file")) << e[0].why.toStdString();
    for (int i = 1; i < 4; ++i) {
        EXPECT_TRUE(e[i].supported) << e[i].why.toStdString();
        EXPECT_TRUE(e[i].gguf);
        EXPECT_EQ(e[i].family, "gemma2");
        EXPECT_EQ(e[i].dtype, "Q8_0");
        EXPECT_EQ(e[i].contextLength, 64);
    }
    EXPECT_EQ(e[1].addedFolder, path("ggufs"));
    EXPECT_EQ(d->table()->item(2, 7)->text(), "LM Studio");
    EXPECT_EQ(d->table()->item(3, 7)->text(), "Ollama");
    EXPECT_EQ(d->table()->item(1, 5)->text(), "64");
    // Remove Folder removes the added folder a file was found in; LM Studio's and Ollama's are not ours.
    QPushButton *openButton = nullptr, *removeButton = nullptr;
    for (QPushButton* b : d->findChildren<QPushButton*>()) {
        if (b->text() == "Open") openButton = b;
        if (b->text() == "Remove Folder") removeButton = b;
    }
    ASSERT_NE(openButton, nullptr);
    ASSERT_NE(removeButton, nullptr);
    d->table()->selectRow(1);
    EXPECT_TRUE(removeButton->isEnabled());
    d->table()->selectRow(0);
    EXPECT_FALSE(openButton->isEnabled());
    d->table()->selectRow(3);
    EXPECT_FALSE(removeButton->isEnabled());
    EXPECT_TRUE(openButton->isEnabled());
    // The compare view offers the Ollama model under its name, not its blob's digest.
    auto* tabs = w.findChild<QTabWidget*>();
    ASSERT_NE(tabs, nullptr);
    tabs->setCurrentWidget(w.compareView());
    EXPECT_TRUE(w.compareView()->candidateLabels(0).contains("tiny:latest")) << w.compareView()->candidateLabels(0).join(", ").toStdString();
    QTest::qWait(50);
    EXPECT_TRUE(d->grab().save(screenshotPath("model-library-gguf")));
    openButton->click();
    ASSERT_TRUE(waitFor([&] { return !w.isLoading() && w.modelCard().path == blob; }, 20000)) << w.lastError().toStdString();
    EXPECT_EQ(w.modelCard().name, "tiny:latest");  // Ollama's name, not the blob's digest
    EXPECT_EQ(w.modelCard().weightConversions, QStringList{"Q8_0 \u2192 q8 (8, repacked)"});
}

TEST_F(Library, GetModelsSearchesDownloadsWithProgressAndOpens) {
    const QString root = path("hubroot/acme/tiny-qwen2");
    ASSERT_TRUE(copyFiles(sharedDir() + "/fixtures/tiny-qwen2", root));
    QFile meta(root + "/.hub.json");
    ASSERT_TRUE(meta.open(QIODevice::WriteOnly));
    meta.write(R"({"downloads": 1234, "likes": 5, "tags": ["transformers", "safetensors", "qwen2", "text-generation"]})");
    meta.close();
    // Slow enough that the progress shows (the weights take a few seconds).
    ASSERT_TRUE(startHub(path("hubroot"), {"--rate", "300000"})) << "python3 and tests/hub/fake_hub.py are needed";

    MainWindow& w = open();
    ASSERT_TRUE(waitFor([&] { return !w.isLoading() && !w.modelCard().path.isEmpty(); }, 20000));
    wp::ui::GetModelsDialog* g = w.showGetModels();
    ASSERT_TRUE(waitFor([&] { return g->results()->rowCount() == 1; }, 10000));
    EXPECT_EQ(g->results()->item(0, 0)->text(), "acme/tiny-qwen2");
    EXPECT_EQ(g->results()->item(0, 1)->text(), "1234");
    g->selectRepo("acme/tiny-qwen2");
    ASSERT_TRUE(waitFor([&] { return g->details().contains("model.safetensors"); }, 10000)) << g->details().toStdString();
    EXPECT_TRUE(g->details().contains("Weights in memory"));
    EXPECT_TRUE(g->details().contains("bf16"));

    QSignalSpy finished(g, &wp::ui::GetModelsDialog::downloadFinished);
    g->downloadSelected();
    ASSERT_EQ(g->downloads()->rowCount(), 1);
    auto* bar = qobject_cast<QProgressBar*>(g->downloads()->cellWidget(0, 1));
    ASSERT_NE(bar, nullptr);
    ASSERT_TRUE(waitFor([&] { return bar->value() > 200 && g->downloads()->item(0, 2)->text().contains("left"); }, 20000))
        << g->downloads()->item(0, 2)->text().toStdString();
    EXPECT_TRUE(g->grab().save(screenshotPath("get-models-downloading")));
    ASSERT_TRUE(waitFor([&] { return finished.count() == 1; }, 60000)) << g->downloads()->item(0, 2)->text().toStdString();
    const QString dir = finished.at(0).at(1).toString();
    EXPECT_TRUE(QFileInfo::exists(dir + "/model.safetensors"));
    EXPECT_EQ(bar->value(), bar->maximum());

    // The row's action opens it; the library lists it.
    auto* action = qobject_cast<QPushButton*>(g->downloads()->cellWidget(0, 3));
    ASSERT_NE(action, nullptr);
    EXPECT_EQ(action->text(), "Open");
    action->click();
    ASSERT_TRUE(waitFor([&] { return !w.isLoading() && w.modelCard().path == dir; }, 20000)) << w.lastError().toStdString();
    EXPECT_EQ(w.modelCard().family, "qwen2");
    EXPECT_TRUE(waitFor([&] { return w.libraryModels().contains(dir); }, 5000));
}

TEST_F(Library, DownloadsPauseResumeAndCancel) {
    const QString root = path("hubroot/acme/tiny-qwen2");
    ASSERT_TRUE(copyFiles(sharedDir() + "/fixtures/tiny-qwen2", root));
    QFile meta(root + "/.hub.json");
    ASSERT_TRUE(meta.open(QIODevice::WriteOnly));
    meta.write(R"({"tags": ["qwen2"]})");
    meta.close();
    ASSERT_TRUE(startHub(path("hubroot"), {"--rate", "100000"})) << "python3 and tests/hub/fake_hub.py are needed";
    const QString blobs = path("hf/hub/models--acme--tiny-qwen2/blobs");
    auto partials = [&] { return QDir(blobs).entryList({"*.incomplete"}, QDir::Files).size(); };

    MainWindow& w = open();
    wp::ui::GetModelsDialog* g = w.showGetModels();
    g->selectRepo("acme/tiny-qwen2");
    ASSERT_TRUE(waitFor([&] { return g->details().contains("model.safetensors"); }, 10000)) << g->details().toStdString();
    g->downloadSelected();
    auto* bar = qobject_cast<QProgressBar*>(g->downloads()->cellWidget(0, 1));
    auto button = [&](int column) { return qobject_cast<QPushButton*>(g->downloads()->cellWidget(0, column)); };
    auto state = [&] { return g->downloads()->item(0, 2)->text(); };
    ASSERT_TRUE(waitFor([&] { return bar->value() > 100 && state().contains("model.safetensors"); }, 20000)) << state().toStdString();

    ASSERT_EQ(button(3)->text(), "Pause");
    button(3)->click();
    ASSERT_TRUE(waitFor([&] { return state().startsWith("Paused"); }, 10000)) << state().toStdString();
    EXPECT_EQ(partials(), 1);  // kept for Resume
    EXPECT_FALSE(QFileInfo::exists(path("hf/hub/models--acme--tiny-qwen2/snapshots")));
    const int paused = bar->value();

    ASSERT_EQ(button(3)->text(), "Resume");
    button(3)->click();
    ASSERT_TRUE(waitFor([&] { return bar->value() > paused + 50 && state().contains("left"); }, 20000)) << state().toStdString();

    ASSERT_EQ(button(4)->text(), "Cancel");
    button(4)->click();
    ASSERT_TRUE(waitFor([&] { return state().startsWith("Cancelled"); }, 10000)) << state().toStdString();
    EXPECT_TRUE(waitFor([&] { return partials() == 0; }, 10000)) << "the partial file stayed";
    EXPECT_FALSE(QFileInfo::exists(path("hf/hub/models--acme--tiny-qwen2/snapshots")));
}

TEST_F(Library, ADownloadLeftByAnEarlierSessionResumes) {
    const QString root = path("hubroot/acme/tiny-qwen2");
    ASSERT_TRUE(copyFiles(sharedDir() + "/fixtures/tiny-qwen2", root));
    // What a session that closed mid-download leaves: the first 300 KB of the weights.
    QFile weights(root + "/model.safetensors");
    ASSERT_TRUE(weights.open(QIODevice::ReadOnly));
    const QByteArray all = weights.readAll();
    const QString blobs = path("hf/hub/models--acme--tiny-qwen2/blobs");
    QDir().mkpath(blobs);
    QFile part(blobs + "/" + QCryptographicHash::hash(all, QCryptographicHash::Sha256).toHex() + ".incomplete");
    ASSERT_TRUE(part.open(QIODevice::WriteOnly));
    part.write(all.left(300000));
    part.close();
    ASSERT_TRUE(startHub(path("hubroot"), {"--log", path("hub.log")})) << "python3 and tests/hub/fake_hub.py are needed";

    MainWindow& w = open();
    wp::ui::GetModelsDialog* g = w.showGetModels();
    ASSERT_TRUE(waitFor([&] { return g->downloads()->rowCount() == 1; }, 10000));
    EXPECT_EQ(g->downloads()->item(0, 0)->text(), "acme/tiny-qwen2");
    EXPECT_TRUE(g->downloads()->item(0, 2)->text().startsWith("Paused")) << g->downloads()->item(0, 2)->text().toStdString();
    QSignalSpy finished(g, &wp::ui::GetModelsDialog::downloadFinished);
    auto* resume = qobject_cast<QPushButton*>(g->downloads()->cellWidget(0, 3));
    ASSERT_NE(resume, nullptr);
    EXPECT_EQ(resume->text(), "Resume");
    resume->click();
    ASSERT_TRUE(waitFor([&] { return finished.count() == 1; }, 30000)) << g->downloads()->item(0, 2)->text().toStdString();
    EXPECT_EQ(g->downloads()->rowCount(), 1);  // the same row
    QFile log(path("hub.log"));
    ASSERT_TRUE(log.open(QIODevice::ReadOnly));
    EXPECT_TRUE(log.readAll().contains("\"range\": \"bytes=300000-\"")) << "the weights were not resumed";
}

}  // namespace

int main(int argc, char** argv) { return gui_test::runGuiTests(argc, argv); }
