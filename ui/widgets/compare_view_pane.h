// One pane of the compare view: its worker, model, run and judgement, and its widgets. Shared
// by compare_view.cpp and compare_view_judge.cpp (the judge's part of the view).
#pragma once

#include <QComboBox>
#include <QLabel>
#include <QString>
#include <QStringList>
#include <QTextBrowser>
#include <QVector>

#include "engine/types.h"
#include "engine/worker_thread.h"
#include "widgets/compare_view.h"
#include "widgets/mask_view.h"
#include "widgets/reply_parting.h"

namespace wp::ui {

struct CompareView::Pane {
    explicit Pane(int index) : slot(index), worker(QStringLiteral("compare-%1").arg(index)) {}

    int slot = 0;
    WorkerThread worker;
    ModelCard card;
    QString path;
    quint64 loadId = 0, runId = 0, tokenizeId = 0;
    bool runRemote = false;  // runId is RemoteModels' worker's
    QString text;
    QStringList pieces;
    ReplyStats stats;
    bool running = false;
    bool stopping = false;  // Stop all pressed: the tokens still queued for this run are dropped
    QString failure;        // the run's error, when it ended in one
    QString stopReason;
    quint64 judgeId = 0;    // the pending judgement's request on the judge's worker
    bool ran = false;       // its reply belongs to the last run (runPrompt_)
    Judgement judgement;
    QString verdictText;    // the verdict as plain text
    QVector<ReplyToken> replyTokens;  // the reply's tokens as they streamed in
    struct PartsFrom {
        int slot = 0;   // the other pane
        int token = 0;  // the first token index where the replies differ
        bool operator==(const PartsFrom&) const = default;
    };
    QVector<PartsFrom> partings;  // earliest first

    QComboBox* chooser = nullptr;
    QLabel* title = nullptr;
    QTextBrowser* output = nullptr;
    QLabel* verdict = nullptr;  // the judge's score, and a badge on the best pane
    QLabel* parting = nullptr;  // where its reply first parts from another pane's
    QLabel* statsLabel = nullptr;
    QLabel* tokens = nullptr;
    MaskView* mask = nullptr;
    QLabel* remoteNote = nullptr;  // instead of the mask for a remote model: why there is none
};

}  // namespace wp::ui
