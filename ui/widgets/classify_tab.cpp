#include "widgets/classify_tab.h"

#include <QLabel>
#include <QStackedWidget>
#include <QVBoxLayout>

#include "widgets/classify_answer_view.h"
#include "widgets/classify_sequence_view.h"
#include "widgets/classify_token_view.h"

namespace wp::ui {

ClassifyTab::ClassifyTab(WorkerThread& worker, QWidget* parent) : QWidget(parent) {
    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(6, 6, 6, 6);
    header_ = new QLabel(this);
    header_->setObjectName("classifyHeader");
    header_->setTextFormat(Qt::RichText);
    header_->setWordWrap(true);  // a long folder or label list wraps instead of widening the window
    layout->addWidget(header_);
    stack_ = new QStackedWidget(this);
    none_ = new QLabel(tr("This model generates text: use the Chat tab. The Classify tab runs task-head models "
                          "(sequence classification, token classification, question answering)."),
                       stack_);
    none_->setWordWrap(true);
    none_->setAlignment(Qt::AlignCenter);
    stack_->addWidget(none_);
    sequence_ = new ClassifySequenceView(worker, stack_);
    sequence_->setObjectName("classifySequence");
    stack_->addWidget(sequence_);
    tokens_ = new ClassifyTokenView(worker, stack_);
    tokens_->setObjectName("classifyTokens");
    stack_->addWidget(tokens_);
    answers_ = new ClassifyAnswerView(worker, stack_);
    answers_->setObjectName("classifyAnswers");
    stack_->addWidget(answers_);
    layout->addWidget(stack_, 1);

    connect(sequence_, &ClassifySequenceView::resultShown, this, &ClassifyTab::resultShown);
    connect(tokens_, &ClassifyTokenView::resultShown, this, &ClassifyTab::resultShown);
    connect(answers_, &ClassifyAnswerView::resultShown, this, &ClassifyTab::resultShown);
    setModel({});
}

void ClassifyTab::setModel(const ModelCard& card) {
    QString task;
    if (card.head == QLatin1String("sequence-classification")) {
        task = card.labels.size() == 1 ? tr("reward model (one score per text)")
                                       : tr("sequence classification, %1 labels").arg(card.labels.size());
        sequence_->setModel(card);
        stack_->setCurrentWidget(sequence_);
    } else if (card.head == QLatin1String("token-classification")) {
        task = tr("token classification, %1 labels").arg(card.labels.size());
        tokens_->setModel(card);
        stack_->setCurrentWidget(tokens_);
    } else if (card.head == QLatin1String("question-answering")) {
        task = tr("extractive question answering");
        answers_->setModel(card);
        stack_->setCurrentWidget(answers_);
    } else {
        stack_->setCurrentWidget(none_);
    }
    header_->setText(card.path.isEmpty() || task.isEmpty()
                         ? QString()
                         : tr("<b>%1</b> &nbsp; %2 \u00b7 %3").arg(card.name.toHtmlEscaped(), card.architecture.toHtmlEscaped(), task));
}

QWidget* ClassifyTab::currentView() const { return stack_->currentWidget(); }

bool ClassifyTab::isBusy() const { return sequence_->isBusy() || tokens_->isBusy() || answers_->isBusy(); }

}  // namespace wp::ui
