// The compare view's judge: a reward model scores each pane's prompt and reply once a run ends,
// and the best reply is marked.
#include <algorithm>

#include <QDir>

#include "engine/model_names.h"
#include "widgets/compare_view.h"
#include "widgets/compare_view_pane.h"
#include "widgets/judge_bar.h"

namespace wp::ui {

// ---- the judge -----------------------------------------------------------------------------

void CompareView::setJudgeCandidates(const QStringList& paths) { judgeBar_->setCandidates(paths); }

QStringList CompareView::judgeLabels() const { return judgeBar_->labels(); }

QString CompareView::judgeStatus() const { return judgeBar_->statusText(); }

void CompareView::setJudge(const QString& path) {
    if (!path.isEmpty() && judgeLoadId_ == 0 && QDir::cleanPath(path) == judgeCard_.path) return;  // already the judge
    cancelJudgements();  // a new judge, or none: the old judge's scores go
    if (judgeLoadId_) judge_.cancel(judgeLoadId_);  // a load not started yet is skipped
    judgeCard_ = {};
    if (path.isEmpty()) {
        judgeLoadId_ = 0;  // a load still running is ignored when it ends
        judge_.post(&JudgeWorker::unloadJudge);
        judgeBar_->setState(JudgeBar::State::None, {});
        updateButtons();
        return;
    }
    judgeLoadingPath_ = QDir::cleanPath(path);
    judgeLoadId_ = judge_.nextRequestId();
    judgeBar_->showChosen(judgeLoadingPath_);
    judgeBar_->setState(JudgeBar::State::Loading, tr("Loading %1\u2026").arg(modelDisplayName(judgeLoadingPath_)));
    judge_.post(&JudgeWorker::loadJudge, judgeLoadId_, judgeLoadingPath_);
    updateButtons();
}

bool CompareView::isJudging() const {
    for (const auto& p : panes_)
        if (p->judgeId) return true;
    return false;
}

CompareView::Judgement CompareView::judgement(int slot) const {
    return slot >= 0 && slot < kMaxModels ? panes_[slot]->judgement : Judgement{};
}

QString CompareView::judgementText(int slot) const {
    return slot >= 0 && slot < kMaxModels ? panes_[slot]->verdictText : QString();
}

int CompareView::bestSlot() const {
    // Best of two or more, once every judgement is in: a lone score is no comparison.
    if (isJudging()) return -1;
    int best = -1, scored = 0;
    for (int i = 0; i < kMaxModels; ++i) {
        const Judgement& j = panes_[i]->judgement;
        if (j.state != Judgement::State::Scored) continue;
        ++scored;
        if (best < 0 || j.reward > panes_[best]->judgement.reward) best = i;
    }
    return scored >= 2 ? best : -1;
}

// Sends every reply of the last run to the judge, each pane's own conversation: its prompt and
// its reply, rendered with the judge's template on the judge's worker.
void CompareView::judgeReplies() {
    cancelJudgements();
    if (judgeCard_.path.isEmpty() || judgeLoadId_ != 0 || runStopped_ || runPrompt_.isEmpty()) return;
    bool any = false;
    for (auto& pp : panes_) {
        Pane& p = *pp;
        if (!p.ran || p.card.path.isEmpty()) continue;
        any = true;
        Judgement& j = p.judgement;
        j = {};
        if (!p.failure.isEmpty()) {
            j.state = Judgement::State::Skipped;
            j.message = tr("the reply ended in an error");
        } else if (p.stopReason == "cancelled") {
            j.state = Judgement::State::Skipped;
            j.message = tr("the reply was stopped");
        } else if (p.stopReason == "incomplete") {
            j.state = Judgement::State::Skipped;
            j.message = tr("the reply is incomplete");
        } else if (p.text.trimmed().isEmpty()) {
            j.state = Judgement::State::Skipped;
            j.message = tr("the reply is empty");
        } else {
            j.state = Judgement::State::Pending;
            p.judgeId = judge_.nextRequestId();
            const QList<ChatTurn> conversation = {{"user", runPrompt_}, {"assistant", p.text}};
            judge_.post(&JudgeWorker::judge, p.judgeId, conversation);
        }
        showJudgement(p);
    }
    if (any && !isJudging()) onJudgementDone();  // every pane skipped: nothing to wait for
    updateButtons();
}

void CompareView::cancelJudgements() {
    quint64 last = 0;
    for (auto& p : panes_) {
        last = std::max(last, p->judgeId);
        p->judgeId = 0;
        clearJudgement(*p);
    }
    if (last) judge_.cancel(last);  // it and every earlier request: their late results are dropped
    updateButtons();
}

void CompareView::clearJudgement(Pane& p) {
    p.judgement = {};
    showJudgement(p);
}

void CompareView::onJudgementDone() {
    for (auto& p : panes_) showJudgement(*p);  // the best is known once the last one is in
    updateButtons();
    if (!isJudging()) emit judgingFinished();
}

void CompareView::showJudgement(Pane& p) {
    const Judgement& j = p.judgement;
    const bool best = j.state == Judgement::State::Scored && bestSlot() == p.slot;
    QString html, tip;
    switch (j.state) {
        case Judgement::State::None:
            p.verdictText.clear();
            break;
        case Judgement::State::Pending:
            p.verdictText = tr("Judging\u2026");
            html = QStringLiteral("<span style='color:#808080'>%1</span>").arg(p.verdictText.toHtmlEscaped());
            break;
        case Judgement::State::Scored: {
            const QString reward = QString::number(j.reward, 'f', 3), score = QString::number(j.score, 'f', 3);
            p.verdictText = tr("reward %1 (%2)").arg(reward, score) + (best ? tr("  \u2605 best") : QString());
            html = tr("Judge: <b>reward %1</b> (%2)").arg(reward, score);
            if (best)
                html += QStringLiteral(" &nbsp;<span style='background-color:#2e8b57; color:white; font-weight:bold'>"
                                       "&nbsp;%1&nbsp;</span>")
                            .arg(tr("\u2605 best"));
            tip = tr("%1's reward logit %2 and its sigmoid %3, over the %4 tokens of this prompt and reply as its chat "
                     "template renders them")
                      .arg(judgeCard_.name)
                      .arg(j.reward, 0, 'g', 7)
                      .arg(j.score, 0, 'g', 7)
                      .arg(j.tokens);
            break;
        }
        case Judgement::State::Skipped:
            p.verdictText = tr("Not judged: %1").arg(j.message);
            html = QStringLiteral("<i>%1</i>").arg(p.verdictText.toHtmlEscaped());
            break;
        case Judgement::State::Failed:
            p.verdictText = tr("The judge failed: %1").arg(j.message);
            html = QStringLiteral("<span style='color:#c0392b'>%1</span>").arg(p.verdictText.toHtmlEscaped());
            break;
    }
    p.verdict->setText(html);
    p.verdict->setToolTip(tip.isEmpty() ? p.verdictText : tip);
    p.verdict->setVisible(j.state != Judgement::State::None);
    p.verdict->setStyleSheet(best ? QStringLiteral("QLabel { background-color: rgba(46,139,87,0.16); padding: 2px; }") : QString());
    // The best reply's frame in the same green as its badge.
    p.output->setStyleSheet(best ? QStringLiteral("QTextBrowser { border: 2px solid #2e8b57; }") : QString());
}

}  // namespace wp::ui
