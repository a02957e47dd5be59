// The Classify tab for a question-answering model: a question and a context; the best answer is
// highlighted in the context, and the next-best spans are listed with their scores (choosing one
// highlights it instead).
#pragma once

#include "engine/classify_types.h"
#include "engine/types.h"
#include "widgets/classify_view_base.h"

class QLabel;
class QLineEdit;
class QTableWidget;
class QPlainTextEdit;

namespace wp::ui {

class ClassifyAnswerView : public ClassifyViewBase {
    Q_OBJECT
public:
    static constexpr int kAnswers = 6;  // the best and five runners-up

    explicit ClassifyAnswerView(WorkerThread& worker, QWidget* parent = nullptr);

    void setModel(const ModelCard& card);
    void setQuestion(const QString& question);
    void setContext(const QString& context);
    void answer();  // Answer, Enter in the question, Ctrl+Enter in the context; emits resultShown

    const AnswerResult& result() const { return result_; }
    // Highlights answer `i` of the result in the context (as clicking it in the list does).
    void showAnswer(int i);
    int shownAnswer() const { return shown_; }
    QString highlightedText() const;  // the context's highlighted characters
    QTableWidget* answerTable() const { return list_; }

private:
    void submit() override { answer(); }
    void busyChanged(bool busy) override;
    void show(const AnswerResult& r);

    AnswerResult result_;
    int shown_ = -1;
    bool settingContext_ = false;  // the context is set by the view: its highlight stays
    QLineEdit* question_ = nullptr;
    QPlainTextEdit* context_ = nullptr;
    QLabel* best_ = nullptr;
    QTableWidget* list_ = nullptr;  // the answers, best first
};

}  // namespace wp::ui
