// Remote models in the app (offscreen, 1366 x 768), against tests/ui/fake_openai.py: Add Endpoint
// (a 401 shown in the dialog, the key never in the settings file, the endpoint kept across a
// restart), the library's remote rows, a local and a remote model streaming side by side in the
// compare view (screenshots at the test screen's size and a laptop's), the chat with a remote model
// (logprobs in the token view, a busy server's countdown, a cut stream kept and marked in the store,
// a 401 leaving the user's message, a message sent while the key is still being read), and the
// Attention tab saying why it has nothing.
#include <gtest/gtest.h>

#include <QFile>
#include <QLabel>
#include <QLineEdit>
#include <QListWidget>
#include <QPushButton>
#include <QSignalSpy>
#include <QTabWidget>
#include <QTableWidget>
#include <QTemporaryDir>
#include <QTest>
#include <QTextBrowser>
#include <memory>
#include <utility>

#include "engine/remote_model_ref.h"
#include "gui_test_support.h"
#include "main_window.h"
#include "remote_test_support.h"
#include "widgets/add_endpoint_dialog.h"
#include "widgets/compare_view.h"
#include "widgets/message_widget.h"
#include "widgets/model_library_dialog.h"
#include "widgets/settings_panel.h"

namespace {

using namespace gui_test;
using wp::ui::MainWindow;

const char* const kDemo = "models/windowpane-demo-gemma2";
const QString kKey = QStringLiteral("sk-remote-test-7c1f");

class RemoteGui : public testing::Test {
protected:
    void SetUp() override {
        GUI_TEST_REQUIRE_MODELS(kDemo);
        ASSERT_TRUE(dir_.isValid());
        // A keychain entry of this test's own (where a secret store runs), removed with the endpoint.
        qputenv("WP_KEYCHAIN_SERVICE", QStringLiteral("windowpane-test-%1").arg(QCoreApplication::applicationPid()).toUtf8());
        ASSERT_TRUE(server_.start({"--api-key", kKey, "--pace", "0.12"})) << "fake_openai.py did not start";
    }
    void TearDown() override { window_.reset(); }

    QString settingsFile() const { return dir_.path() + "/settings.ini"; }

    MainWindow& open(QSize size = {1366, 768}, std::shared_ptr<wp::ui::KeyStore> keyStore = nullptr) {
        window_.reset();
        wp::ui::AppOptions o;
        o.modelPath = sharedDir() + "/" + kDemo;
        o.dataDir = dir_.path() + "/data";
        o.settingsFile = settingsFile();
        o.keyStore = std::move(keyStore);
        window_ = std::make_unique<MainWindow>(o);
        window_->resize(size);
        window_->show();
        return *window_;
    }

    // Adds the fake server through the dialog as a user would: first without the key (the 401 is
    // shown), then with it. Returns the dialog's status.
    QString addEndpoint(MainWindow& w) {
        wp::ui::AddEndpointDialog* d = w.showAddEndpoint();
        d->urlField()->setText(QStringLiteral("127.0.0.1:%1").arg(server_.port()));  // no scheme, no /v1
        d->keyField()->clear();
        d->connectToServer();
        EXPECT_TRUE(waitFor([&] { return !d->isConnecting(); }));
        EXPECT_TRUE(d->statusText().contains("401")) << d->statusText().toStdString();
        d->grab().save(screenshotPath("gui-add-endpoint-401"));
        d->keyField()->setText(kKey);
        d->connectToServer();
        EXPECT_TRUE(waitFor([&] { return !d->isConnecting(); }));
        EXPECT_TRUE(d->listedModels().contains("vllm+paced")) << d->statusText().toStdString();
        d->addEndpoint();
        // The secret store answers (the dialog closes), or it does not (the dialog says the key
        // lives for this session only).
        EXPECT_TRUE(waitFor([&] { return !d->isVisible() || d->statusText().contains("this session only"); }, 30000));
        const QString status = d->statusText();
        // Under tests/ui/with_secret_service.sh a real Secret Service runs: the key must go there.
        if (realSecretStore()) { EXPECT_FALSE(d->isVisible()) << status.toStdString(); }
        if (d->isVisible()) d->grab().save(screenshotPath("gui-add-endpoint-session-key"));
        d->close();
        return status;
    }

    QString remote(const QString& id) const { return wp::ui::remoteModelPath(server_.base(), id); }
    static bool realSecretStore() { return qgetenv("WP_SECRET_SERVICE") == "1"; }

    QTemporaryDir dir_;
    remote_test::FakeServer server_;
    std::unique_ptr<MainWindow> window_;
};

TEST_F(RemoteGui, EndpointIsAddedListedKeptAcrossRestartAndItsKeyNeverInSettings) {
    MainWindow& w = open();
    ASSERT_TRUE(waitFor([&] { return !w.isLoading() && !w.modelCard().path.isEmpty(); }));
    addEndpoint(w);
    ASSERT_EQ(w.remoteModels().endpoints().size(), 1);
    EXPECT_EQ(w.remoteModels().endpoints()[0].url, server_.base());
    EXPECT_EQ(w.remoteModels().key(server_.base()), kKey);  // in the store or in memory

    wp::ui::ModelLibraryDialog* lib = w.showLibrary();
    ASSERT_TRUE(waitFor([&] {
        for (const auto& e : lib->entries())
            if (e.dir == remote("vllm")) return true;
        return false;
    }));
    lib->grab().save(screenshotPath("gui-library-remote"));
    lib->close();

    QFile settings(settingsFile());
    ASSERT_TRUE(settings.open(QIODevice::ReadOnly));
    const QByteArray text = settings.readAll();
    EXPECT_TRUE(text.contains(server_.base().toUtf8()));
    EXPECT_FALSE(text.contains(kKey.toUtf8())) << "the API key is in the settings file";

    MainWindow& again = open();  // a restart
    ASSERT_EQ(again.remoteModels().endpoints().size(), 1);
    EXPECT_TRUE(again.remoteModels().endpoints()[0].models.contains("vllm"));
    // From a real secret store the key comes back; without one it lived for the session only.
    if (realSecretStore()) {
        EXPECT_TRUE(waitFor([&] { return again.remoteModels().key(server_.base()) == kKey; }));
    }
    again.remoteModels().removeEndpoint(server_.base());  // deletes its key
    EXPECT_TRUE(again.remoteModels().endpoints().isEmpty());
    EXPECT_TRUE(again.remoteModels().key(server_.base()).isEmpty());
}

TEST_F(RemoteGui, LocalAndRemoteModelsStreamSideBySideInCompare) {
    MainWindow& w = open();
    ASSERT_TRUE(waitFor([&] { return !w.isLoading() && !w.modelCard().path.isEmpty(); }));
    addEndpoint(w);
    auto* tabs = w.findChild<QTabWidget*>("mainTabs");
    ASSERT_NE(tabs, nullptr);
    wp::ui::CompareView* cv = w.compareView();
    tabs->setCurrentWidget(cv);
    const QString label = wp::ui::remoteModelLabel(*wp::ui::parseRemoteModelPath(remote("vllm+paced")));
    EXPECT_TRUE(cv->candidateLabels(1).contains(label));

    cv->setModel(0, sharedDir() + "/" + kDemo);
    cv->setModel(1, remote("vllm+paced"));
    ASSERT_TRUE(waitFor([&] { return cv->loadedCount() == 2 && !cv->isLoading(); }));
    EXPECT_TRUE(cv->card(1).isRemote());
    cv->setPrompt("Why is the sky blue?");
    cv->setMaxTokens(48);
    QSignalSpy done(cv, &wp::ui::CompareView::allFinished);
    cv->run();
    // Mid-stream: both panes have text and the remote one is still coming.
    ASSERT_TRUE(waitFor([&] { return cv->replyText(1).size() > 12 && !cv->replyText(0).isEmpty(); }));
    w.grab().save(screenshotPath("gui-compare-remote-streaming"));
    ASSERT_TRUE(done.wait(120000));
    const remote_test::Recorded rec = remote_test::readRecorded("vllm_chat_stream.sse");
    EXPECT_EQ(cv->replyText(1), rec.text);
    EXPECT_FALSE(cv->replyText(0).isEmpty());
    EXPECT_EQ(cv->replyTokens(1).size(), rec.tokens.size());
    QTest::qWait(50);
    w.grab().save(screenshotPath("gui-compare-remote"));
    // A laptop's screen.
    w.resize(1280, 720);
    QTest::qWait(100);
    w.grab().save(screenshotPath("gui-compare-remote-1280x720"));
    // The remote pane says why it has no mask; Divergence offers only the local model.
    auto* note = cv->findChild<QLabel*>("compareRemoteNote1");
    ASSERT_NE(note, nullptr);
    EXPECT_TRUE(note->isVisible());
    EXPECT_TRUE(note->text().contains("remote server"));
}

TEST_F(RemoteGui, ChatWithARemoteModelShowsLogprobsWaitsOnABusyServerAndKeepsACutReply) {
    MainWindow& w = open();
    ASSERT_TRUE(waitFor([&] { return !w.isLoading() && !w.modelCard().path.isEmpty(); }));
    addEndpoint(w);

    // llama-server's stream: the token view has its probabilities.
    w.openModel(remote("llama-server"));
    ASSERT_TRUE(w.modelCard().isRemote());
    w.sendMessage("Why is the sky blue?");
    ASSERT_TRUE(waitFor([&] { return !w.isGenerating(); }, 60000));
    const remote_test::Recorded rec = remote_test::readRecorded("llama_server_chat_stream.sse");
    QList<wp::ui::MessageWidget*> msgs = w.messageWidgets();
    ASSERT_GE(msgs.size(), 2);
    wp::ui::MessageWidget* reply = msgs.last();
    EXPECT_EQ(reply->message().content, rec.text);
    ASSERT_EQ(reply->message().tokens.size(), rec.tokens.size());
    EXPECT_NEAR(reply->message().tokens[2].probability, rec.tokens[2].probability, 1e-5);
    reply->setShowTokens(true);
    EXPECT_TRUE(reply->tokenTooltipAt(0).contains(rec.tokens[0].alternatives.value(1)));

    // A busy server: the status counts down, then the reply comes.
    w.openModel(remote("vllm+busy2"));
    auto* status = w.findChild<QLabel*>("replyStatus");
    ASSERT_NE(status, nullptr);
    bool countdown = false;
    w.sendMessage("And at sunset?");
    waitFor([&] {
        countdown |= status->text().contains("trying again");
        return !w.isGenerating();
    }, 60000);
    EXPECT_TRUE(countdown);
    EXPECT_EQ(w.messageWidgets().last()->message().content, remote_test::readRecorded("vllm_chat_stream.sse").text);

    // A stream cut in the middle: the part that came is kept, marked, and saved marked.
    w.openModel(remote("vllm+cut"));
    w.sendMessage("Say it again.");
    ASSERT_TRUE(waitFor([&] { return !w.isGenerating(); }, 60000));
    const auto path = w.store().activePath(w.currentConversation());
    ASSERT_GE(path.size(), 2);
    EXPECT_EQ(path[path.size() - 2].content, "Say it again.");  // the user's message stays
    EXPECT_EQ(path.last().role, "assistant");
    EXPECT_FALSE(path.last().content.isEmpty());
    EXPECT_FALSE(path.last().stats.value("incomplete").toString().isEmpty());
    EXPECT_EQ(path.last().stats.value("stop_reason").toString(), "incomplete");
    wp::ui::MessageWidget* cut = w.messageWidgets().last();
    EXPECT_FALSE(cut->message().incomplete.isEmpty());
    EXPECT_TRUE(cut->body()->toPlainText().contains("incomplete"));
    QTest::qWait(200);  // the new message widgets laid out and scrolled to
    w.grab().save(screenshotPath("gui-chat-remote-incomplete"));

    // Attention has nothing for a remote model, and says why.
    w.analyze("The sky is blue.");
    auto* analyzeStatus = w.findChild<QLabel*>("analyzeStatus");
    ASSERT_NE(analyzeStatus, nullptr);
    EXPECT_TRUE(analyzeStatus->text().contains("remote server")) << analyzeStatus->text().toStdString();
    w.grab().save(screenshotPath("gui-attention-remote"));
}

TEST_F(RemoteGui, WrongKeyIsAnErrorInThePaneAndTheMessageStays) {
    MainWindow& w = open();
    ASSERT_TRUE(waitFor([&] { return !w.isLoading() && !w.modelCard().path.isEmpty(); }));
    w.remoteModels().addEndpoint(server_.base(), {"vllm"}, QStringLiteral("sk-wrong"));
    w.openModel(remote("vllm"));
    w.sendMessage("Hello there");
    ASSERT_TRUE(waitFor([&] { return !w.isGenerating(); }, 60000));
    EXPECT_TRUE(w.lastError().contains("401")) << w.lastError().toStdString();
    EXPECT_TRUE(w.lastError().contains("API key")) << w.lastError().toStdString();
    const auto path = w.store().activePath(w.currentConversation());
    ASSERT_FALSE(path.isEmpty());
    EXPECT_EQ(path.last().content, "Hello there");
    w.remoteModels().removeEndpoint(server_.base());
}

TEST_F(RemoteGui, AMessageSentWhileTheKeyIsReadWaitsForItAndIsAnswered) {
    wp::ui::AppSettings(settingsFile()).setRemoteEndpoints({{server_.base(), {"vllm"}}});  // added before a restart
    auto store = std::make_shared<remote_test::SlowKeyStore>();
    store->entries.insert("remote-endpoint " + server_.base(), kKey);
    MainWindow& w = open({1366, 768}, store);
    ASSERT_TRUE(waitFor([&] { return !w.isLoading() && !w.modelCard().path.isEmpty(); }));
    ASSERT_EQ(store->reads.size(), 1);
    w.openModel(remote("vllm"));
    w.sendMessage("Why is the sky blue?");
    auto* status = w.findChild<QLabel*>("replyStatus");
    ASSERT_NE(status, nullptr);
    EXPECT_TRUE(status->text().contains("Reading the key")) << status->text().toStdString();
    QTest::qWait(300);
    EXPECT_TRUE(w.isGenerating());
    EXPECT_TRUE(server_.requests().isEmpty()) << "sent before its key was read";
    store->answerReads();
    ASSERT_TRUE(waitFor([&] { return !w.isGenerating(); }, 60000));
    EXPECT_TRUE(w.lastError().isEmpty()) << w.lastError().toStdString();  // sent keyless, a 401
    EXPECT_EQ(w.messageWidgets().last()->message().content, remote_test::readRecorded("vllm_chat_stream.sse").text);
}

}  // namespace

int main(int argc, char** argv) { return gui_test::runGuiTests(argc, argv, gui_test::testScreenSize()); }
