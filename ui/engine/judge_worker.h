// The compare view's judge: a one-label sequence-classification (reward) model that scores whole
// conversations. Lives on its own QThread (JudgeThread), apart from the panes' InferenceWorkers,
// so judging never waits behind a pane's generation nor holds one up. Requests are tagged with ids
// as InferenceWorker's are; cancel(id) drops that request and every earlier one still queued.
#pragma once

#include <QList>
#include <QMetaType>
#include <QObject>
#include <QString>
#include <atomic>
#include <memory>

#include "engine/types.h"

namespace wp {
class LoadedModel;
}

namespace wp::ui {

// What the judge bar shows about the loaded judge.
struct JudgeCard {
    QString path;
    QString name;
    QString family;
    QString architecture;
    QString label;  // its one label's name (id2label)
    qint64 parameters = 0;
    int contextLength = 0;
};

// One conversation's judgement: the reward head's raw logit and its sigmoid, as transformers'
// text-classification pipeline reports a one-label model.
struct JudgeScore {
    double reward = 0;
    double score = 0;
    int tokens = 0;  // of the rendered conversation
};

class JudgeWorker : public QObject {
    Q_OBJECT
public:
    JudgeWorker();
    ~JudgeWorker() override;

    // Thread-safe: request `id` and every earlier one are dropped if they have not started (one
    // judgement is a single forward pass, so a running one finishes and its result is ignored).
    void cancel(quint64 requestId);

    // Why the model in `dir` (its config.json alone) cannot judge, as "it is …"; empty when it can.
    // Reads no weights, so a large causal LM picked by mistake is refused at once.
    static QString whyNotAJudge(const QString& dir);

public slots:
    // Replaces the judge with the model in `path` (the old one is freed first); emits
    // loadProgress, then judgeLoaded or error.
    void loadJudge(quint64 requestId, const QString& path);
    void unloadJudge();
    // Scores `conversation` rendered with the judge's chat template (no generation prompt), as
    // transformers' apply_chat_template(tokenize=True) feeds a reward model; emits judged or error.
    void judge(quint64 requestId, const QList<wp::ui::ChatTurn>& conversation);

signals:
    void loadProgress(quint64 requestId, double fraction);
    void judgeLoaded(quint64 requestId, const wp::ui::JudgeCard& card);
    void judged(quint64 requestId, const wp::ui::JudgeScore& score);
    void error(quint64 requestId, const QString& message);

private:
    std::unique_ptr<LoadedModel> model_;
    std::atomic<quint64> cancelUpTo_{0};
};

}  // namespace wp::ui

Q_DECLARE_METATYPE(wp::ui::JudgeCard)
Q_DECLARE_METATYPE(wp::ui::JudgeScore)
