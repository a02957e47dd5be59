// The Classify tab, shown instead of chat for a task-head model (ModelCard::head): what the head
// is, then the view for its task — labels with probability bars (sequence classification),
// entities in the text (token classification), or answers in a context (question answering).
// The model runs on the main window's worker.
#pragma once

#include <QWidget>

#include "engine/types.h"

class QLabel;
class QStackedWidget;

namespace wp::ui {

class ClassifyAnswerView;
class ClassifySequenceView;
class ClassifyTokenView;
class WorkerThread;

class ClassifyTab : public QWidget {
    Q_OBJECT
public:
    explicit ClassifyTab(WorkerThread& worker, QWidget* parent = nullptr);

    // Shows the view for `card`'s head (a causal LM: a note that there is nothing to classify).
    void setModel(const ModelCard& card);
    bool isBusy() const;

    ClassifySequenceView* sequenceView() const { return sequence_; }
    ClassifyTokenView* tokenView() const { return tokens_; }
    ClassifyAnswerView* answerView() const { return answers_; }
    QWidget* currentView() const;

signals:
    void resultShown();

private:
    QLabel* header_ = nullptr;
    QStackedWidget* stack_ = nullptr;
    QLabel* none_ = nullptr;
    ClassifySequenceView* sequence_ = nullptr;
    ClassifyTokenView* tokens_ = nullptr;
    ClassifyAnswerView* answers_ = nullptr;
};

}  // namespace wp::ui
