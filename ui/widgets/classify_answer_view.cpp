#include "widgets/classify_answer_view.h"

#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QHeaderView>
#include <QPlainTextEdit>
#include <QTableWidget>
#include <QTextBlock>
#include <QVBoxLayout>

#include "widgets/label_colors.h"

namespace wp::ui {

namespace {

QString quoted(const QString& s) {
    QString t = s.simplified();
    if (t.size() > 80) t = t.left(79) + QStringLiteral("\u2026");
    return QStringLiteral("\u201c%1\u201d").arg(t);
}

}  // namespace

ClassifyAnswerView::ClassifyAnswerView(WorkerThread& worker, QWidget* parent) : ClassifyViewBase(worker, parent) {
    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(0, 0, 0, 0);
    auto* qrow = new QHBoxLayout;
    qrow->addWidget(new QLabel(tr("Question:"), this));
    question_ = new QLineEdit(this);
    question_->setObjectName("questionInput");
    question_->setPlaceholderText(tr("What to find in the context (Enter answers)"));
    connect(question_, &QLineEdit::returnPressed, this, &ClassifyAnswerView::answer);
    qrow->addWidget(question_, 1);
    layout->addLayout(qrow);

    layout->addWidget(new QLabel(tr("Context:"), this));
    context_ = makeInput("contextInput", tr("The text that holds the answer (Ctrl+Enter answers)"));
    // An edited context no longer matches the answers' places.
    connect(context_, &QPlainTextEdit::textChanged, this, [this] {
        if (settingContext_ || result_.answers.isEmpty()) return;
        context_->setExtraSelections({});
        shown_ = -1;
        list_->setRowCount(0);
        best_->clear();
        result_ = {};
        status_->setText(tr("The context changed: answer again."));
    });
    layout->addWidget(context_, 3);

    layout->addLayout(makeRunRow(tr("Answer"), tr("Answering\u2026"), "answerButton",
                                 tr("Find the answer in the context (Enter in the question, Ctrl+Enter in the context)")));

    best_ = new QLabel(this);
    best_->setObjectName("bestAnswer");
    best_->setTextFormat(Qt::RichText);
    best_->setWordWrap(true);
    best_->setTextInteractionFlags(Qt::TextSelectableByMouse);
    QFont big = best_->font();
    big.setPointSizeF(big.pointSizeF() * 1.25);
    best_->setFont(big);
    layout->addWidget(best_);

    list_ = new QTableWidget(0, 4, this);
    list_->setObjectName("answerTable");
    list_->setHorizontalHeaderLabels({tr("#"), tr("Span of the context"), tr("Score"), tr("Tokens")});
    list_->horizontalHeader()->setSectionResizeMode(QHeaderView::ResizeToContents);
    list_->horizontalHeader()->setSectionResizeMode(1, QHeaderView::Stretch);  // long spans are elided
    list_->verticalHeader()->setVisible(false);
    list_->verticalHeader()->setDefaultSectionSize(list_->fontMetrics().height() + 8);
    list_->setEditTriggers(QAbstractItemView::NoEditTriggers);
    list_->setSelectionBehavior(QAbstractItemView::SelectRows);
    list_->setSelectionMode(QAbstractItemView::SingleSelection);
    list_->setWordWrap(false);
    list_->setToolTip(tr("Click a span to highlight it in the context"));
    connect(list_, &QTableWidget::currentCellChanged, this, [this](int row) {
        if (row >= 0) showAnswer(row);
    });
    layout->addWidget(list_, 2);

    showReplies(&InferenceWorker::answered, [this](const AnswerResult& r) { show(r); });
}

void ClassifyAnswerView::setModel(const ModelCard& card) {
    setModelPath(card.path);
    show({});
    status_->setText(tr("Ask a question about the context; the answer is a span of it."));
}

void ClassifyAnswerView::setQuestion(const QString& question) { question_->setText(question); }
void ClassifyAnswerView::setContext(const QString& context) { context_->setPlainText(context); }

void ClassifyAnswerView::answer() {
    if (isBusy()) return;
    QString problem;
    if (question_->text().trimmed().isEmpty()) problem = tr("Type a question.");
    else if (context_->toPlainText().trimmed().isEmpty()) problem = tr("Paste a context to find the answer in.");
    if (cannotRun(problem)) return;
    post(&InferenceWorker::answer, question_->text(), context_->toPlainText(), kAnswers);
}

void ClassifyAnswerView::busyChanged(bool busy) {
    // The answers' offsets are into the text sent: no edits until they are shown.
    question_->setReadOnly(busy);
    context_->setReadOnly(busy);
}

void ClassifyAnswerView::show(const AnswerResult& r) {
    result_ = r;
    shown_ = -1;
    context_->setExtraSelections({});
    const QSignalBlocker block(list_);
    list_->setRowCount(0);
    best_->clear();
    if (r.context.isEmpty()) return;
    // The context as the answers count it (the same unless it held a lone surrogate).
    if (r.context != context_->toPlainText()) {
        settingContext_ = true;
        context_->setPlainText(r.context);
        settingContext_ = false;
    }
    list_->setRowCount(static_cast<int>(r.answers.size()));
    for (int i = 0; i < r.answers.size(); ++i) {
        const AnswerInfo& a = r.answers[i];
        auto* span = new QTableWidgetItem(quoted(a.text));
        span->setToolTip(a.text);
        list_->setItem(i, 0, new QTableWidgetItem(QString::number(i + 1)));
        list_->setItem(i, 1, span);
        list_->setItem(i, 2, new QTableWidgetItem(QString::number(a.score, 'f', 4)));
        list_->setItem(i, 3, new QTableWidgetItem(a.startToken == a.endToken ? QString::number(a.startToken)
                                                                              : QStringLiteral("%1\u2013%2").arg(a.startToken).arg(a.endToken)));
    }
    if (r.answers.isEmpty()) {
        status_->setText(tr("No span of the context was found."));
        return;
    }
    list_->setCurrentCell(0, 1);
    showAnswer(0);
    status_->setText(tr("%1 tokens for the question and the context; the best %2 spans are listed.").arg(r.tokens).arg(r.answers.size()));
}

void ClassifyAnswerView::showAnswer(int i) {
    if (i < 0 || i >= result_.answers.size()) return;
    shown_ = i;
    const AnswerInfo& a = result_.answers[i];
    QTextEdit::ExtraSelection sel;
    sel.cursor = QTextCursor(context_->document());
    sel.cursor.setPosition(a.begin);
    sel.cursor.setPosition(a.end, QTextCursor::KeepAnchor);
    sel.format.setBackground(groupBackground(i == 0 ? 2 : 1, palette()));  // green for the best, orange for others
    sel.format.setFontWeight(QFont::Bold);
    context_->setExtraSelections({sel});
    // Scroll the span into view without moving the user's own cursor far: put it there.
    QTextCursor c(context_->document());
    c.setPosition(a.begin);
    context_->setTextCursor(c);
    context_->ensureCursorVisible();
    if (list_->currentRow() != i) {
        const QSignalBlocker block(list_);
        list_->setCurrentCell(i, 1);
    }
    best_->setText(i == 0 ? tr("Answer: <b>%1</b> &nbsp;<span style='font-size:small'>score %2</span>")
                                .arg(quoted(a.text).toHtmlEscaped())
                                .arg(a.score, 0, 'f', 4)
                          : tr("Span %1 of %2: <b>%3</b> &nbsp;<span style='font-size:small'>score %4</span>")
                                .arg(i + 1)
                                .arg(result_.answers.size())
                                .arg(quoted(a.text).toHtmlEscaped())
                                .arg(a.score, 0, 'f', 4));
}

QString ClassifyAnswerView::highlightedText() const {
    const auto sels = context_->extraSelections();
    return sels.isEmpty() ? QString() : sels.first().cursor.selectedText();
}

}  // namespace wp::ui
