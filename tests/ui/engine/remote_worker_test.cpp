// The remote backend against recorded vLLM and llama-server streams served by tests/ui/fake_openai.py:
// the SSE reader on every split of the bytes, tokens and logprobs as the streams state them, the
// request body from the sampling settings, retries on 429 and on refused fields, a cut stream kept
// and marked, errors (401, 500, unreachable, an error inside the stream, not JSON), Stop, a line with
// no end, big model lists, a request waiting for its key's read. Also the endpoint address's
// normalisation.
#include <gtest/gtest.h>

#include <QCoreApplication>
#include <QFile>
#include <QTcpServer>
#include <QTemporaryDir>
#include <utility>

#include "../remote_test_support.h"
#include "engine/openai_chat.h"
#include "engine/remote_model_ref.h"
#include "engine/remote_models.h"
#include "engine/sse_parser.h"

namespace {

using namespace remote_test;
using wp::ui::GenerationSettings;
using wp::ui::remoteModelPath;

QByteArray recordedBytes(const char* name) {
    QFile f(QStringLiteral(WP_REMOTE_DATA "/") + name);
    return f.open(QIODevice::ReadOnly) ? f.readAll() : QByteArray();
}

TEST(SseParser, EverySplitOfTheBytesGivesTheSameEvents) {
    for (const char* name : {"vllm_chat_stream.sse", "llama_server_chat_stream.sse"}) {
        const QByteArray bytes = recordedBytes(name);
        ASSERT_FALSE(bytes.isEmpty()) << name;
        wp::ui::SseParser whole;
        const QList<wp::ui::SseEvent> expected = whole.feed(bytes);
        ASSERT_EQ(expected.size(), bytes.count("\n\n")) << name;  // one event per blank line
        EXPECT_FALSE(whole.midEvent());
        for (int step : {1, 2, 3, 5, 7, 64, 1000}) {
            wp::ui::SseParser parser;
            QList<wp::ui::SseEvent> got;
            for (qsizetype i = 0; i < bytes.size(); i += step) got += parser.feed(bytes.mid(i, step));
            ASSERT_EQ(got.size(), expected.size()) << name << " step " << step;
            for (int e = 0; e < got.size(); ++e) EXPECT_EQ(got[e].data, expected[e].data);
        }
    }
}

TEST(SseParser, ReadsCrLfAndCrLinesCommentsFieldsAndMultiLineData) {
    wp::ui::SseParser p;
    // "\r\n" split between two feeds must not end a second line.
    QList<wp::ui::SseEvent> e = p.feed(": keep-alive\r\n\r\ndata: {\"a\":1}\r");
    EXPECT_TRUE(e.isEmpty());
    e = p.feed("\n\r\nevent: ping\rdata:x\rdata: y\r\rid: 7\nretry: 10\n\nerror: {\"code\":500}\n\n");
    ASSERT_EQ(e.size(), 3);
    EXPECT_EQ(e[0].data, "{\"a\":1}");
    EXPECT_EQ(e[1].event, "ping");
    EXPECT_EQ(e[1].data, "x\ny");
    EXPECT_EQ(e[2].event, "error");
    EXPECT_EQ(e[2].data, "{\"code\":500}");
    p.feed("data: {\"cut");
    EXPECT_TRUE(p.midEvent());
}

TEST(SseParser, ALineThatNeverEndsStopsTheParserAtTheCap) {
    wp::ui::SseParser p;
    EXPECT_EQ(p.feed("data: {\"a\":1}\n\n").size(), 1);
    const QByteArray chunk(1 << 20, 'a');
    p.feed("data: ");
    for (qsizetype sent = 0; sent <= wp::ui::SseParser::kMaxEventBytes; sent += chunk.size())
        EXPECT_TRUE(p.feed(chunk).isEmpty());
    EXPECT_TRUE(p.overflowed());
    EXPECT_TRUE(p.feed("\n\ndata: x\n\n").isEmpty());  // nothing more is read
    // The data lines of one event count together.
    wp::ui::SseParser lines;
    const QByteArray line = "data: " + QByteArray(64 * 1024, 'b') + "\n";
    for (int i = 0; i < 80 && !lines.overflowed(); ++i) EXPECT_TRUE(lines.feed(line).isEmpty());
    EXPECT_TRUE(lines.overflowed());
}

TEST(EndpointUrl, NormalisesToTheV1Base) {
    QString why;
    EXPECT_EQ(wp::ui::normalizeEndpointUrl("http://127.0.0.1:8080", &why), "http://127.0.0.1:8080/v1");
    EXPECT_EQ(wp::ui::normalizeEndpointUrl(" https://host/v1/ ", &why), "https://host/v1");
    EXPECT_EQ(wp::ui::normalizeEndpointUrl("localhost:8080", &why), "http://localhost:8080/v1");
    EXPECT_EQ(wp::ui::normalizeEndpointUrl("https://host/proxy/v1/chat/completions", &why), "https://host/proxy/v1");
    EXPECT_EQ(wp::ui::normalizeEndpointUrl("https://user:secret@host/v1", &why), "https://host/v1");  // no key in settings
    EXPECT_TRUE(wp::ui::normalizeEndpointUrl("ftp://host", &why).isEmpty());
    EXPECT_FALSE(why.isEmpty());
    EXPECT_TRUE(wp::ui::normalizeEndpointUrl("", &why).isEmpty());
    const QString path = remoteModelPath("http://h:1/v1", "org/model#1");
    const auto ref = wp::ui::parseRemoteModelPath(path);
    ASSERT_TRUE(ref.has_value());
    EXPECT_EQ(ref->baseUrl, "http://h:1/v1");
    EXPECT_EQ(ref->model, "org/model#1");
}

class Remote : public testing::Test {
protected:
    void SetUp() override { ASSERT_TRUE(server_.start()) << "tests/ui/fake_openai.py did not start (python3)"; }
    QString model(const QString& id) const { return remoteModelPath(server_.base(), id); }

    FakeServer server_;
    wp::ui::RemoteThread thread_{QStringLiteral("remote-test")};
    Collector collector_{thread_};
};

// The tokens of `reply` are the recorded logprobs entries, one for one.
void expectRecordedTokens(const Reply& reply, const Recorded& rec) {
    ASSERT_EQ(reply.tokens.size(), rec.tokens.size());
    for (int i = 0; i < rec.tokens.size(); ++i) {
        const wp::ui::TokenInfo& t = reply.tokens[i];
        EXPECT_EQ(t.text, rec.tokens[i].text) << i;
        EXPECT_NEAR(t.probability, rec.tokens[i].probability, 1e-6) << i;
        EXPECT_EQ(t.id, rec.tokens[i].id) << i;
        ASSERT_EQ(t.top.size(), rec.tokens[i].alternatives.size()) << i;
        for (int a = 0; a < t.top.size(); ++a) {
            EXPECT_EQ(t.top[a].text, rec.tokens[i].alternatives[a]);
            EXPECT_NEAR(t.top[a].probability, rec.tokens[i].alternativeProbabilities[a], 1e-6);
        }
    }
}

TEST_F(Remote, VllmStreamGivesItsTokensAndLogprobsAndTheSettingsReachTheRequest) {
    const Recorded rec = readRecorded("vllm_chat_stream.sse");
    ASSERT_GT(rec.tokens.size(), 5);
    GenerationSettings s;
    s.temperature = 0.7;
    s.topK = 20;
    s.topP = 0.9;
    s.minP = 0.1;
    s.seed = 42;
    s.maxNewTokens = 64;
    const Reply r = collector_.generate(model("vllm"), s, QString());
    ASSERT_TRUE(r.error.isEmpty()) << r.error.toStdString();
    expectRecordedTokens(r, rec);  // the chunk of two tokens is two tokens
    EXPECT_EQ(r.text, rec.text);
    EXPECT_EQ(r.finishedText, rec.text);
    EXPECT_EQ(r.stats.stopReason, "eos");
    EXPECT_TRUE(r.stats.incomplete.isEmpty());
    EXPECT_EQ(r.stats.promptTokens, rec.promptTokens);
    EXPECT_EQ(r.stats.generatedTokens, rec.tokens.size());

    const QJsonArray requests = server_.requests();
    ASSERT_EQ(requests.size(), 1);
    const QJsonObject body = requests[0].toObject();
    EXPECT_EQ(body.value("model").toString(), "vllm");
    EXPECT_TRUE(body.value("stream").toBool());
    EXPECT_TRUE(body.value("logprobs").toBool());
    EXPECT_EQ(body.value("top_logprobs").toInt(), 5);
    EXPECT_DOUBLE_EQ(body.value("temperature").toDouble(), s.temperature);
    EXPECT_DOUBLE_EQ(body.value("top_p").toDouble(), s.topP);
    EXPECT_EQ(body.value("top_k").toInt(), s.topK);
    EXPECT_DOUBLE_EQ(body.value("min_p").toDouble(), s.minP);
    EXPECT_EQ(body.value("seed").toInt(), s.seed);
    EXPECT_EQ(body.value("max_tokens").toInt(), s.maxNewTokens);
    const QJsonArray messages = body.value("messages").toArray();
    ASSERT_EQ(messages.size(), 1);
    EXPECT_EQ(messages[0].toObject().value("role").toString(), "user");
    EXPECT_EQ(messages[0].toObject().value("content").toString(), "Why is the sky blue?");
}

TEST_F(Remote, GreedyIsTemperatureZeroWithoutTheSamplingKnobs) {
    GenerationSettings s;
    s.greedy = true;
    ASSERT_TRUE(collector_.generate(model("vllm"), s).error.isEmpty());
    const QJsonObject body = server_.requests().last().toObject();
    EXPECT_EQ(body.value("temperature").toDouble(-1), 0.0);
    EXPECT_FALSE(body.contains("top_k"));
    EXPECT_FALSE(body.contains("top_p"));
    EXPECT_FALSE(body.contains("seed"));  // -1: none asked for
}

TEST_F(Remote, LlamaServerStreamKeepsTokenIds) {
    const Recorded rec = readRecorded("llama_server_chat_stream.sse");
    ASSERT_GT(rec.tokens.size(), 5);
    ASSERT_GE(rec.tokens[0].id, 0);
    const Reply r = collector_.generate(model("llama-server"));
    ASSERT_TRUE(r.error.isEmpty()) << r.error.toStdString();
    expectRecordedTokens(r, rec);
    EXPECT_EQ(r.text, rec.text);
    EXPECT_EQ(r.stats.stopReason, "eos");
    EXPECT_EQ(r.stats.promptTokens, rec.promptTokens);
}

TEST_F(Remote, SlowBytesAndCrLfWithCommentsReadTheSameAsTheWholeStream) {
    for (const char* stream : {"vllm", "llama-server"}) {
        const Recorded rec = readRecorded(QString(stream) == "vllm" ? "vllm_chat_stream.sse" : "llama_server_chat_stream.sse");
        for (const char* fault : {"+slow", "+crlf"}) {
            const Reply r = collector_.generate(model(QString(stream) + fault));
            ASSERT_TRUE(r.error.isEmpty()) << stream << fault << ": " << r.error.toStdString();
            expectRecordedTokens(r, rec);
            EXPECT_EQ(r.text, rec.text) << stream << fault;
            EXPECT_EQ(r.stats.stopReason, "eos");
        }
    }
}

TEST_F(Remote, CutStreamKeepsThePartialReplyMarkedIncomplete) {
    const Recorded rec = readRecorded("vllm_chat_stream.sse");
    const Reply r = collector_.generate(model("vllm+cut"));
    EXPECT_TRUE(r.error.isEmpty()) << r.error.toStdString();
    EXPECT_EQ(r.stats.stopReason, "incomplete");
    EXPECT_FALSE(r.stats.incomplete.isEmpty());
    EXPECT_FALSE(r.finishedText.isEmpty());
    EXPECT_LT(r.finishedText.size(), rec.text.size());
    EXPECT_TRUE(rec.text.startsWith(r.finishedText));
    EXPECT_EQ(r.finishedText, r.text);  // what was shown is what is kept
}

TEST_F(Remote, AnErrorInsideTheStreamEndsTheReplyIncompleteWithTheServersMessage) {
    for (const char* name : {"vllm-error", "llama-server-error"}) {
        const Recorded rec = readRecorded(QString(name) == "vllm-error" ? "vllm_error_midstream.sse" : "llama_server_error_midstream.sse");
        ASSERT_FALSE(rec.errorMessage.isEmpty());
        const Reply r = collector_.generate(model(name));
        EXPECT_TRUE(r.error.isEmpty()) << name;
        EXPECT_EQ(r.stats.stopReason, "incomplete") << name;
        EXPECT_TRUE(r.stats.incomplete.contains(rec.errorMessage)) << r.stats.incomplete.toStdString();
        EXPECT_EQ(r.finishedText, rec.text) << name;  // every token before the error
    }
}

TEST_F(Remote, BusyServerIsWaitedOnAsRetryAfterSaysThenAnswers) {
    const Recorded rec = readRecorded("vllm_chat_stream.sse");
    const Reply r = collector_.generate(model("vllm+busy2"));
    ASSERT_TRUE(r.error.isEmpty()) << r.error.toStdString();
    EXPECT_EQ(r.text, rec.text);
    ASSERT_FALSE(r.retrySeconds.isEmpty());
    EXPECT_EQ(r.retrySeconds.first(), 1);  // Retry-After: 1
    EXPECT_EQ(r.retryAttempts.first(), 1);
    EXPECT_EQ(r.retryAttempts.last(), 2);
    int sent = 0;
    for (const QJsonValue& v : server_.requests()) sent += v.toObject().value("model").toString() == "vllm+busy2";
    EXPECT_EQ(sent, 3);
}

TEST_F(Remote, BusyServerGivesUpAfterTheBoundedRetries) {
    const Reply r = collector_.generate(model("vllm+busy9"));
    EXPECT_TRUE(r.error.contains("429")) << r.error.toStdString();
    EXPECT_EQ(r.retryAttempts.last(), wp::ui::RemoteWorker::kMaxRetries);
    EXPECT_EQ(server_.requests().size(), wp::ui::RemoteWorker::kMaxRetries + 1);
}

TEST_F(Remote, RefusedTopKAndLogprobsAreSentAgainWithout) {
    GenerationSettings s;  // sampling: top_k and min_p are sent
    const Reply r = collector_.generate(model("vllm+no-top-k"), s);
    ASSERT_TRUE(r.error.isEmpty()) << r.error.toStdString();
    QJsonArray req = server_.requests();
    ASSERT_EQ(req.size(), 2);
    EXPECT_TRUE(req[0].toObject().contains("top_k"));
    EXPECT_FALSE(req[1].toObject().contains("top_k"));
    EXPECT_FALSE(req[1].toObject().contains("min_p"));
    EXPECT_TRUE(req[1].toObject().value("logprobs").toBool());

    const Recorded rec = readRecorded("vllm_chat_stream.sse");
    const Reply n = collector_.generate(model("vllm+no-logprobs"), s);
    ASSERT_TRUE(n.error.isEmpty()) << n.error.toStdString();
    req = server_.requests();
    ASSERT_EQ(req.size(), 4);
    EXPECT_TRUE(req[2].toObject().value("logprobs").toBool());
    EXPECT_FALSE(req[3].toObject().contains("logprobs"));
    EXPECT_FALSE(req[3].toObject().contains("top_logprobs"));
    EXPECT_EQ(n.text, rec.text);
}

TEST_F(Remote, ServerFailureAndUnknownModelAreErrors) {
    const Reply r = collector_.generate(model("vllm+500"));
    EXPECT_TRUE(r.error.contains("500")) << r.error.toStdString();
    EXPECT_TRUE(r.error.contains("The model crashed.")) << r.error.toStdString();
    const Reply u = collector_.generate(model("no-such-model"));
    EXPECT_TRUE(u.error.contains("404")) << u.error.toStdString();
}

TEST_F(Remote, UnreachableServerIsAnError) {
    QTcpServer probe;  // a port nobody listens on once closed
    ASSERT_TRUE(probe.listen(QHostAddress::LocalHost));
    const int port = probe.serverPort();
    probe.close();
    const QString base = QStringLiteral("http://127.0.0.1:%1/v1").arg(port);
    const Reply r = collector_.generate(remoteModelPath(base, "m"));
    EXPECT_TRUE(r.error.startsWith("Cannot reach")) << r.error.toStdString();
    QString why;
    EXPECT_TRUE(collector_.listModels(base, {}, &why).isEmpty());
    EXPECT_TRUE(why.startsWith("Cannot reach")) << why.toStdString();
}

TEST_F(Remote, ListsModelsAndSaysWhenTheAddressIsNoApi) {
    QString why;
    const QStringList models = collector_.listModels(server_.base(), {}, &why);
    EXPECT_TRUE(why.isEmpty()) << why.toStdString();
    EXPECT_TRUE(models.contains("vllm"));
    EXPECT_TRUE(models.contains("llama-server"));
    const QString html = wp::ui::normalizeEndpointUrl(QStringLiteral("http://127.0.0.1:%1/html").arg(server_.port()));
    EXPECT_TRUE(collector_.listModels(html, {}, &why).isEmpty());
    EXPECT_TRUE(why.contains("not JSON")) << why.toStdString();
}

TEST_F(Remote, ALineWithNoEndEndsTheStreamKeepingThePartialReplyMarkedCut) {
    const Recorded rec = readRecorded("vllm_chat_stream.sse");
    const Reply r = collector_.generate(model("vllm+endless-line"));  // the server holds the connection open
    EXPECT_TRUE(r.error.isEmpty()) << r.error.toStdString();
    EXPECT_EQ(r.stats.stopReason, "incomplete");
    EXPECT_TRUE(r.stats.incomplete.contains("4 MB")) << r.stats.incomplete.toStdString();
    EXPECT_FALSE(r.finishedText.isEmpty());
    EXPECT_TRUE(rec.text.startsWith(r.finishedText));
    EXPECT_EQ(r.finishedText, r.text);
}

TEST_F(Remote, ABigModelListIsReadAndATooLargeOneSaysSo) {
    const QString root = QStringLiteral("http://127.0.0.1:%1").arg(server_.port());
    QString why;
    const QStringList big = collector_.listModels(root + "/big/v1", {}, &why);  // about 2 MB
    EXPECT_TRUE(why.isEmpty()) << why.toStdString();
    EXPECT_GT(big.size(), 20000);
    EXPECT_TRUE(big.contains("catalogue/model-019999"));
    EXPECT_TRUE(collector_.listModels(root + "/huge/v1", {}, &why).isEmpty());  // about 34 MB
    EXPECT_TRUE(why.contains("model list is too large (34 MB")) << why.toStdString();
}

TEST_F(Remote, StopEndsTheReplyWithWhatCameSoFar) {
    const quint64 id = collector_.start(model("vllm+paced"));
    ASSERT_TRUE(spin([&] { return collector_.reply(id).tokens.size() >= 2 || collector_.reply(id).ended; }));
    thread_.cancel(id);
    const Reply r = collector_.wait(id);
    EXPECT_TRUE(r.error.isEmpty()) << r.error.toStdString();
    EXPECT_EQ(r.stats.stopReason, "cancelled");
    EXPECT_FALSE(r.finishedText.isEmpty());
    EXPECT_LT(r.finishedText.size(), readRecorded("vllm_chat_stream.sse").text.size());
}

class RemoteWithKey : public Remote {
protected:
    void SetUp() override { ASSERT_TRUE(server_.start({"--api-key", "sk-test-123"})); }
};

TEST_F(RemoteWithKey, MissingOrWrongKeySaysSoAndTheRightOneWorks) {
    const Reply none = collector_.generate(model("vllm"));
    EXPECT_TRUE(none.error.contains("401")) << none.error.toStdString();
    EXPECT_TRUE(none.error.contains("none is set")) << none.error.toStdString();
    const Reply wrong = collector_.generate(model("vllm"), {}, "sk-wrong");
    EXPECT_TRUE(wrong.error.contains("401"));
    EXPECT_TRUE(wrong.error.contains("key is wrong")) << wrong.error.toStdString();
    const Reply right = collector_.generate(model("vllm"), {}, "sk-test-123");
    EXPECT_TRUE(right.error.isEmpty()) << right.error.toStdString();
    EXPECT_EQ(right.text, readRecorded("vllm_chat_stream.sse").text);
    QString why;
    EXPECT_TRUE(collector_.listModels(server_.base(), {}, &why).isEmpty());
    EXPECT_TRUE(why.contains("401")) << why.toStdString();
    EXPECT_FALSE(collector_.listModels(server_.base(), "sk-test-123", &why).isEmpty());
}

// The app's endpoints (settings in a temporary file) holding the fake server, its key in `store`.
struct Endpoints {
    Endpoints(const QString& base, const QString& key) {
        wp::ui::AppSettings(file()).setRemoteEndpoints({{base, {"vllm", "vllm+paced"}}});
        store->entries.insert("remote-endpoint " + base, key);
    }
    QString file() const { return dir.path() + "/settings.ini"; }
    QTemporaryDir dir;
    std::shared_ptr<SlowKeyStore> store = std::make_shared<SlowKeyStore>();
};

TEST_F(RemoteWithKey, ARequestSentWhileTheKeyIsReadWaitsForItAndCarriesIt) {
    Endpoints e(server_.base(), "sk-test-123");
    wp::ui::AppSettings settings(e.file());
    wp::ui::RemoteModels models(settings, e.store);  // starts reading the key
    Collector collector(models.thread());
    ASSERT_EQ(e.store->reads.size(), 1);
    EXPECT_TRUE(models.keyPending(server_.base()));
    const quint64 id = models.thread().nextRequestId();
    models.generate(id, model("vllm"), {{"user", "Why is the sky blue?"}}, {});
    spin([] { return false; }, 300);
    EXPECT_TRUE(server_.requests().isEmpty()) << "sent before its key was read";
    EXPECT_FALSE(collector.reply(id).ended);
    e.store->answerReads();
    EXPECT_FALSE(models.keyPending(server_.base()));
    const Reply r = collector.wait(id);
    EXPECT_TRUE(r.error.isEmpty()) << r.error.toStdString();  // sent keyless, it would get a 401
    EXPECT_EQ(r.text, readRecorded("vllm_chat_stream.sse").text);
}

TEST_F(RemoteWithKey, StopWhileTheKeyIsReadEndsTheRequestUnsent) {
    Endpoints e(server_.base(), "sk-test-123");
    wp::ui::AppSettings settings(e.file());
    wp::ui::RemoteModels models(settings, e.store);
    Collector collector(models.thread());
    const quint64 id = models.thread().nextRequestId();
    models.generate(id, model("vllm"), {{"user", "Hi"}}, {});
    models.cancel(id);
    const Reply r = collector.wait(id);
    EXPECT_TRUE(r.error.isEmpty()) << r.error.toStdString();
    EXPECT_EQ(r.stats.stopReason, "cancelled");
    e.store->answerReads();  // nothing waits on it any more: nothing is sent
    spin([] { return false; }, 200);
    EXPECT_TRUE(server_.requests().isEmpty());
}

TEST_F(RemoteWithKey, AKeyReadEndingAfterItsEndpointWasRemovedIsDropped) {
    Endpoints e(server_.base(), "sk-test-123");
    wp::ui::AppSettings settings(e.file());
    wp::ui::RemoteModels models(settings, e.store);
    models.removeEndpoint(server_.base());
    EXPECT_FALSE(models.keyPending(server_.base()));
    e.store->entries.insert("remote-endpoint " + server_.base(), "sk-test-123");  // a read that missed the delete
    e.store->answerReads();
    EXPECT_TRUE(models.key(server_.base()).isEmpty());
}

// A keyring that never answers (its unlock prompt left open): the request ends with that, unsent,
// once the read's time is up; the next request reads again and goes with the key.
TEST_F(RemoteWithKey, AKeyReadThatNeverEndsFailsTheRequestUnsent) {
    qputenv("WP_KEY_READ_TIMEOUT_MS", "300");
    Endpoints e(server_.base(), "sk-test-123");
    wp::ui::AppSettings settings(e.file());
    wp::ui::RemoteModels models(settings, e.store);
    qunsetenv("WP_KEY_READ_TIMEOUT_MS");
    Collector collector(models.thread());
    const quint64 id = models.thread().nextRequestId();
    models.generate(id, model("vllm"), {{"user", "Hi"}}, {});
    const Reply r = collector.wait(id);
    EXPECT_TRUE(r.error.contains("did not answer")) << r.error.toStdString();
    EXPECT_TRUE(server_.requests().isEmpty());
    e.store->reads.clear();  // that read never ends
    const quint64 again = models.thread().nextRequestId();
    models.generate(again, model("vllm"), {{"user", "Hi"}}, {});
    EXPECT_TRUE(models.keyPending(server_.base()));
    e.store->answerReads();
    const Reply ok = collector.wait(again);
    EXPECT_TRUE(ok.error.isEmpty()) << ok.error.toStdString();
}

// A store that refuses (access denied): the request ends with its reason, not a keyless 401.
TEST_F(RemoteWithKey, AKeyReadRefusedFailsTheRequestWithItsReason) {
    Endpoints e(server_.base(), "sk-test-123");
    e.store->error = "access denied by the user";
    wp::ui::AppSettings settings(e.file());
    wp::ui::RemoteModels models(settings, e.store);
    Collector collector(models.thread());
    const quint64 id = models.thread().nextRequestId();
    models.generate(id, model("vllm"), {{"user", "Hi"}}, {});
    e.store->answerReads();
    const Reply r = collector.wait(id);
    EXPECT_TRUE(r.error.contains("access denied by the user")) << r.error.toStdString();
    EXPECT_TRUE(server_.requests().isEmpty());
}

// Removing the endpoint while a request waits for its key ends the request unsent.
TEST_F(RemoteWithKey, RemovingTheEndpointEndsItsWaitingRequestsUnsent) {
    Endpoints e(server_.base(), "sk-test-123");
    wp::ui::AppSettings settings(e.file());
    wp::ui::RemoteModels models(settings, e.store);
    Collector collector(models.thread());
    const quint64 id = models.thread().nextRequestId();
    models.generate(id, model("vllm"), {{"user", "Hi"}}, {});
    models.removeEndpoint(server_.base());
    const Reply r = collector.wait(id);
    EXPECT_TRUE(r.error.contains("was removed")) << r.error.toStdString();
    e.store->answerReads();
    spin([] { return false; }, 200);
    EXPECT_TRUE(server_.requests().isEmpty());
}

}  // namespace

int main(int argc, char** argv) {
    QCoreApplication app(argc, argv);
    testing::InitGoogleTest(&argc, argv);
    return RUN_ALL_TESTS();
}
