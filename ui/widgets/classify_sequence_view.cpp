#include "widgets/classify_sequence_view.h"

#include <QHBoxLayout>
#include <QLabel>
#include <QPlainTextEdit>
#include <QScrollArea>
#include <QVBoxLayout>
#include <algorithm>
#include <numeric>

#include "widgets/probability_bars.h"

namespace wp::ui {

namespace {

// Beyond this many labels the bars are sorted by probability and only the best are drawn.
constexpr int kMaxBars = 30;

}  // namespace

ClassifySequenceView::ClassifySequenceView(WorkerThread& worker, QWidget* parent) : ClassifyViewBase(worker, parent) {
    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(0, 0, 0, 0);
    input_ = makeInput("classifyInput", tr("Text to classify (Ctrl+Enter classifies)"));
    input_->setMaximumHeight(150);
    layout->addWidget(input_);
    layout->addLayout(
        makeRunRow(tr("Classify"), tr("Classifying\u2026"), "classifyButton", tr("Classify the text (Ctrl+Enter)")));

    summary_ = new QLabel(this);
    summary_->setObjectName("classifySummary");
    summary_->setTextFormat(Qt::RichText);
    summary_->setWordWrap(true);
    QFont big = summary_->font();
    big.setPointSizeF(big.pointSizeF() * 1.35);
    summary_->setFont(big);
    layout->addWidget(summary_);

    auto* scroll = new QScrollArea(this);
    scroll->setWidgetResizable(true);
    scroll->setFrameShape(QFrame::NoFrame);
    auto* host = new QWidget(scroll);
    auto* hostLayout = new QVBoxLayout(host);
    hostLayout->setContentsMargins(0, 0, 0, 0);
    bars_ = new ProbabilityBars(host);
    bars_->setObjectName("classifyBars");
    hostLayout->addWidget(bars_);
    details_ = new QLabel(host);
    details_->setObjectName("classifyDetails");
    details_->setWordWrap(true);
    details_->setTextInteractionFlags(Qt::TextSelectableByMouse);
    hostLayout->addWidget(details_);
    hostLayout->addStretch();
    scroll->setWidget(host);
    layout->addWidget(scroll, 1);

    showReplies(&InferenceWorker::classified, [this](const ClassifyResult& r) { show(r); });
}

void ClassifySequenceView::setModel(const ModelCard& card) {
    setModelPath(card.path);
    result_ = {};
    summary_->clear();
    details_->clear();
    bars_->setRows({}, -1);
    status_->setText(card.labels.size() == 1
                         ? tr("A reward model: it scores a text with one number.")
                         : tr("Labels: %1").arg(card.labels.join(", ")));
}

void ClassifySequenceView::setText(const QString& text) { input_->setPlainText(text); }
QString ClassifySequenceView::text() const { return input_->toPlainText(); }
QString ClassifySequenceView::summary() const { return summary_->text(); }

void ClassifySequenceView::classify() {
    if (isBusy() || cannotRun(text().trimmed().isEmpty() ? tr("Type a text to classify.") : QString())) return;
    post(&InferenceWorker::classify, text());
}

void ClassifySequenceView::show(const ClassifyResult& r) {
    result_ = r;
    const int n = static_cast<int>(r.labels.size());
    QVector<ProbabilityBars::Row> rows;
    if (n == 1 && r.logits.size() == 1) {
        // One label: a softmax would be 1 for every text, so the reward itself is the result.
        const double reward = r.logits[0], sigmoid = r.scores.value(0);
        summary_->setText(tr("Reward <b>%1</b> &nbsp;<span style='font-size:small'>(raw logit of %2) \u00b7 "
                             "sigmoid %3</span>")
                              .arg(reward, 0, 'f', 4)
                              .arg(r.labels[0].toHtmlEscaped())
                              .arg(sigmoid, 0, 'f', 4));
        rows.push_back({tr("sigmoid(reward)"), sigmoid, QString::number(sigmoid, 'f', 4)});
        bars_->setRows(rows, 0);
    } else {
        std::vector<int> order(static_cast<std::size_t>(r.scores.size()));
        std::iota(order.begin(), order.end(), 0);
        if (order.size() > 10)  // many labels: the likely ones first
            std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return r.scores[a] > r.scores[b]; });
        int highlighted = -1;
        for (int i : order) {
            if (rows.size() == kMaxBars) break;
            if (i == r.best) highlighted = static_cast<int>(rows.size());
            rows.push_back({r.labels.value(i, QString::number(i)), r.scores[i],
                            QStringLiteral("%1%").arg(100.0 * r.scores[i], 0, 'f', 1)});
        }
        bars_->setRows(rows, highlighted);
        summary_->setText(tr("<b>%1</b> &nbsp;<span style='font-size:small'>%2%</span>")
                              .arg(r.labels.value(r.best).toHtmlEscaped())
                              .arg(100.0 * r.scores.value(r.best), 0, 'f', 1));
    }
    QStringList logits;
    for (int i = 0; i < r.logits.size(); ++i)
        logits << QStringLiteral("%1 %2").arg(r.labels.value(i, QString::number(i))).arg(r.logits[i], 0, 'f', 4);
    QString details = tr("Logits: %1").arg(logits.join(QStringLiteral(" \u00b7 ")));
    if (n > kMaxBars) details += tr("\nThe %1 most probable of %2 labels are drawn.").arg(kMaxBars).arg(n);
    details_->setText(details);
    status_->setText(tr("%1 tokens; the head read token %2 (the last that is not padding).").arg(r.tokens).arg(r.pooledIndex));
}

}  // namespace wp::ui
