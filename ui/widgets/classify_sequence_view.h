// The Classify tab for a sequence-classification model: a text, and each label with a bar of its
// probability (the softmax over the labels), the arg-max highlighted. A model with one label (a
// reward model) shows its raw logit, the reward, and the sigmoid of it instead.
#pragma once

#include "engine/classify_types.h"
#include "engine/types.h"
#include "widgets/classify_view_base.h"

class QLabel;
class QPlainTextEdit;

namespace wp::ui {

class ProbabilityBars;

class ClassifySequenceView : public ClassifyViewBase {
    Q_OBJECT
public:
    explicit ClassifySequenceView(WorkerThread& worker, QWidget* parent = nullptr);

    void setModel(const ModelCard& card);
    void setText(const QString& text);
    QString text() const;
    // Classifies the text on the worker (Classify, Ctrl+Enter); emits resultShown when the result
    // or the reason there is none is on screen.
    void classify();

    const ClassifyResult& result() const { return result_; }
    QString summary() const;  // the headline: the winning label, or the reward
    ProbabilityBars* bars() const { return bars_; }

private:
    void submit() override { classify(); }
    void show(const ClassifyResult& r);

    ClassifyResult result_;
    QPlainTextEdit* input_ = nullptr;
    QLabel* summary_ = nullptr;
    ProbabilityBars* bars_ = nullptr;
    QLabel* details_ = nullptr;
};

}  // namespace wp::ui
