// What the remote backend's tests share: the fake OpenAI-compatible server (tests/ui/fake_openai.py,
// python3) as a child process, a recorded stream read back into the tokens it holds (the tests'
// expectations come from the recorded input, never from our own parser), and one reply of a
// RemoteWorker collected from its signals. Each program defines WP_FAKE_OPENAI and WP_REMOTE_DATA.
#pragma once

#include <QCoreApplication>
#include <utility>
#include <QElapsedTimer>
#include <QFile>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QNetworkAccessManager>
#include <QNetworkReply>
#include <QProcess>
#include <QThread>
#include <cmath>
#include <memory>

#include "engine/endpoint_keys.h"
#include "engine/remote_thread.h"

namespace remote_test {

// Runs the event loop until `pred` holds or `ms` pass (a guard against a hang, not a timing check).
template <class Pred>
bool spin(Pred pred, int ms = 60000) {
    QElapsedTimer t;
    t.start();
    while (!pred() && t.elapsed() < ms) {
        QCoreApplication::processEvents(QEventLoop::AllEvents, 20);
        QThread::msleep(2);
    }
    return pred();
}

class FakeServer {
public:
    // Starts tests/ui/fake_openai.py with `args`; false when it does not print its port.
    bool start(const QStringList& args = {}) {
        process_ = std::make_unique<QProcess>();
        process_->setProcessChannelMode(QProcess::ForwardedErrorChannel);
        process_->start(QStringLiteral("python3"), QStringList{WP_FAKE_OPENAI} + args);
        if (!process_->waitForStarted(10000)) return false;
        QByteArray out;
        spin([&] { out += process_->readAllStandardOutput(); return out.contains('\n'); }, 20000);
        const QList<QByteArray> parts = out.trimmed().split(' ');
        if (parts.size() != 2 || parts[0] != "PORT") return false;
        port_ = parts[1].toInt();
        return port_ > 0;
    }
    ~FakeServer() {
        if (process_) {
            process_->kill();
            process_->waitForFinished(5000);
        }
    }
    int port() const { return port_; }
    QString base() const { return QStringLiteral("http://127.0.0.1:%1/v1").arg(port_); }

    // Every chat request's JSON body the server received, in order.
    QJsonArray requests() const {
        QNetworkAccessManager nam;
        QNetworkReply* r = nam.get(QNetworkRequest(QUrl(QStringLiteral("http://127.0.0.1:%1/fake/requests").arg(port_))));
        spin([&] { return r->isFinished(); }, 20000);
        const QJsonArray out = QJsonDocument::fromJson(r->readAll()).array();
        delete r;
        return out;
    }

private:
    std::unique_ptr<QProcess> process_;
    int port_ = 0;
};

// A recorded stream's content as the file states it: each logprobs entry's token, probability
// (exp of its logprob), token id (-1: none) and alternatives; the reply's text; its usage; an error.
struct Recorded {
    struct Token {
        QString text;
        double probability = 0;
        int id = -1;
        QStringList alternatives;
        QList<double> alternativeProbabilities;
    };
    QList<Token> tokens;
    QString text;
    int promptTokens = -1;
    QString errorMessage;
};

inline Recorded readRecorded(const QString& name) {
    Recorded r;
    QFile f(QStringLiteral(WP_REMOTE_DATA "/") + name);
    if (!f.open(QIODevice::ReadOnly)) return r;
    for (const QByteArray& line : f.readAll().split('\n')) {
        const bool error = line.startsWith("error: ");
        if (!line.startsWith("data: ") && !error) continue;
        const QJsonObject o = QJsonDocument::fromJson(line.mid(error ? 7 : 6)).object();
        if (error) r.errorMessage = o.value("message").toString();
        if (o.value("error").isObject()) r.errorMessage = o.value("error").toObject().value("message").toString();
        if (o.contains("usage")) r.promptTokens = o.value("usage").toObject().value("prompt_tokens").toInt();
        for (const QJsonValue& c : o.value("choices").toArray()) {
            r.text += c.toObject().value("delta").toObject().value("content").toString();
            for (const QJsonValue& e : c.toObject().value("logprobs").toObject().value("content").toArray()) {
                Recorded::Token t;
                t.text = e.toObject().value("token").toString();
                t.probability = std::exp(e.toObject().value("logprob").toDouble());
                t.id = e.toObject().value("id").toInt(-1);
                for (const QJsonValue& a : e.toObject().value("top_logprobs").toArray()) {
                    t.alternatives << a.toObject().value("token").toString();
                    t.alternativeProbabilities << std::exp(a.toObject().value("logprob").toDouble());
                }
                r.tokens << t;
            }
        }
    }
    return r;
}

// One generate request's signals, in order.
struct Reply {
    QList<wp::ui::TokenInfo> tokens;
    QString text;  // the tokens' texts joined
    QString finishedText;
    wp::ui::ReplyStats stats;
    QString error;
    QList<int> retrySeconds, retryAttempts;
    bool ended = false;
};

class Collector {
public:
    explicit Collector(wp::ui::RemoteThread& thread) : thread_(thread) {
        wp::ui::RemoteWorker* w = thread.worker();
        QObject::connect(w, &wp::ui::RemoteWorker::tokenText, &context_,
                         [this](quint64 id, const QString& text, const wp::ui::TokenInfo& info) {
                             replies_[id].tokens << info;
                             replies_[id].text += text;
                         });
        QObject::connect(w, &wp::ui::RemoteWorker::finished, &context_,
                         [this](quint64 id, const QString& text, const wp::ui::ReplyStats& s) {
                             replies_[id].finishedText = text;
                             replies_[id].stats = s;
                             replies_[id].ended = true;
                         });
        QObject::connect(w, &wp::ui::RemoteWorker::error, &context_, [this](quint64 id, const QString& m) {
            replies_[id].error = m;
            replies_[id].ended = true;
        });
        QObject::connect(w, &wp::ui::RemoteWorker::retrying, &context_,
                         [this](quint64 id, int seconds, int attempt, int, const QString&) {
                             replies_[id].retrySeconds << seconds;
                             replies_[id].retryAttempts << attempt;
                         });
        QObject::connect(w, &wp::ui::RemoteWorker::modelsListed, &context_, [this](quint64 id, const QStringList& m) {
            models_[id] = m;
            replies_[id].ended = true;
        });
    }

    quint64 start(const QString& modelPath, const wp::ui::GenerationSettings& settings = {}, const QString& key = {},
                  const QList<wp::ui::ChatTurn>& turns = {{"user", "Why is the sky blue?"}}) {
        const quint64 id = thread_.nextRequestId();
        replies_[id] = {};
        thread_.post(&wp::ui::RemoteWorker::generate, id, modelPath, turns, settings, key);
        return id;
    }
    Reply wait(quint64 id) {
        spin([&] { return replies_[id].ended; });
        return replies_[id];
    }
    Reply generate(const QString& modelPath, const wp::ui::GenerationSettings& settings = {}, const QString& key = {}) {
        return wait(start(modelPath, settings, key));
    }
    // GET /models: the ids, or the error in `error`.
    QStringList listModels(const QString& base, const QString& key, QString* error) {
        const quint64 id = thread_.nextRequestId();
        replies_[id] = {};
        thread_.post(&wp::ui::RemoteWorker::listModels, id, base, key);
        spin([&] { return replies_[id].ended; });
        if (error) *error = replies_[id].error;
        return models_.value(id);
    }
    const Reply& reply(quint64 id) { return replies_[id]; }

private:
    wp::ui::RemoteThread& thread_;
    QObject context_;
    QHash<quint64, Reply> replies_;
    QHash<quint64, QStringList> models_;
};

// A secret store whose reads end only when told to (a keychain slow to unlock).
class SlowKeyStore : public wp::ui::KeyStore {
public:
    QHash<QString, QString> entries;
    QList<std::pair<QString, ReadDone>> reads;  // unanswered
    QString error;                                // what reads answer with, when set (a refusal)
    void read(const QString&, const QString& entry, ReadDone done) override { reads.push_back({entry, done}); }
    void write(const QString&, const QString& entry, const QString& key, WriteDone done) override {
        entries.insert(entry, key);
        done(true, {});
    }
    void remove(const QString&, const QString& entry) override { entries.remove(entry); }
    void answerReads() {
        for (const auto& [entry, done] : std::exchange(reads, {}))
            done(error.isEmpty() && entries.contains(entry), error.isEmpty() ? entries.value(entry) : QString(), error);
    }
};

}  // namespace remote_test
