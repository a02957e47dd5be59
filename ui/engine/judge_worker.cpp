#include "engine/judge_worker.h"

#include <QDir>
#include <QStringList>
#include <exception>

#include "engine/model_names.h"
#include "wp/error.h"
#include "wp/generate/chat_session.h"
#include "wp/model/model_config.h"
#include "wp/model/task_heads.h"

namespace wp::ui {

JudgeWorker::JudgeWorker() {
    qRegisterMetaType<wp::ui::JudgeCard>();
    qRegisterMetaType<wp::ui::JudgeScore>();
    qRegisterMetaType<wp::ui::ChatTurn>();
    qRegisterMetaType<QList<wp::ui::ChatTurn>>();
}

JudgeWorker::~JudgeWorker() = default;

void JudgeWorker::cancel(quint64 requestId) {
    quint64 prev = cancelUpTo_.load();
    while (prev < requestId && !cancelUpTo_.compare_exchange_weak(prev, requestId)) {
    }
}

QString JudgeWorker::whyNotAJudge(const QString& dir) {
    ModelConfig c;
    try {
        c = ModelConfig::load(QDir::cleanPath(dir).toStdString());
    } catch (const std::exception& e) {
        return QString::fromStdString(e.what());
    }
    const QString arch = c.architecture.empty() ? QString::fromLatin1(head_name(c.head)) : QString::fromStdString(c.architecture);
    if (c.head == Head::CausalLM)
        return QObject::tr("it is a causal language model (%1); a judge is a one-label sequence-classification (reward) "
                           "model")
            .arg(arch);
    if (c.head != Head::SequenceClassification)
        return QObject::tr("it is a %1 model (%2); a judge is a one-label sequence-classification (reward) model")
            .arg(QString::fromLatin1(head_name(c.head)), arch);
    if (c.labels.size() != 1) {
        QStringList labels;
        for (const std::string& l : c.labels) labels << QString::fromStdString(l);
        return QObject::tr("it is a classifier with %1 labels (%2); a judge gives one score, so it needs a one-label "
                           "(reward) model")
            .arg(c.labels.size())
            .arg(labels.join(QStringLiteral(", ")));
    }
    return {};
}

void JudgeWorker::loadJudge(quint64 requestId, const QString& path) {
    model_.reset();  // freed first: the old judge and the new one need not fit in memory together
    if (requestId <= cancelUpTo_.load()) return;  // another judge (or none) was chosen since
    const QString key = QDir::cleanPath(path);
    if (const QString why = whyNotAJudge(key); !why.isEmpty()) {
        emit error(requestId, why);
        return;
    }
    try {
        auto lm = LoadedModel::load(key.toStdString(), [&](double f) { emit loadProgress(requestId, f); });
        const ModelConfig& c = lm->model().config();
        JudgeCard card;
        card.path = key;
        card.name = modelDisplayName(key);
        card.family = QString::fromLatin1(family_name(c.family));
        card.architecture = QString::fromStdString(c.architecture);
        card.label = c.labels.empty() ? QString() : QString::fromStdString(c.labels.front());
        card.parameters = lm->model().parameter_count();
        card.contextLength = c.max_position_embeddings;
        model_ = std::move(lm);
        emit judgeLoaded(requestId, card);
    } catch (const std::exception& e) {
        emit error(requestId, QString::fromStdString(e.what()));
    }
}

void JudgeWorker::unloadJudge() { model_.reset(); }

void JudgeWorker::judge(quint64 requestId, const QList<ChatTurn>& conversation) {
    if (requestId <= cancelUpTo_.load()) return;  // Stop or a new prompt came first: nobody waits for it
    if (!model_) {
        emit error(requestId, tr("No judge is loaded."));
        return;
    }
    try {
        std::vector<ChatMessage> messages;
        for (const ChatTurn& t : conversation) messages.push_back({t.role.toStdString(), t.content.toStdString()});
        // The template already writes <bos>, as apply_chat_template(tokenize=True) gives it.
        const std::vector<int> ids = model_->tokenizer().encode(model_->render(messages, false), false);
        const int context = model_->model().config().max_position_embeddings;
        if (ids.empty()) throw Error(tr("The conversation has no tokens.").toStdString());
        if (context > 0 && static_cast<qint64>(ids.size()) > context)
            throw Error(tr("The conversation is %1 tokens, longer than the judge's context of %2.")
                                         .arg(ids.size())
                                         .arg(context)
                                         .toStdString());
        const SequenceClassification r = classify_sequence(model_->model(), ids);
        JudgeScore s;
        s.reward = r.logits.empty() ? 0 : r.logits.front();
        s.score = r.score;
        s.tokens = static_cast<int>(ids.size());
        emit judged(requestId, s);
    } catch (const std::exception& e) {
        emit error(requestId, QString::fromStdString(e.what()));
    }
}

}  // namespace wp::ui
