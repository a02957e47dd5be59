// The Classify tab for a sequence-classification model: a text, and each label with a bar of its
// probability (the softmax over the labels), the arg-max highlighted. A model with one label (a
// reward model) shows its raw logit, the reward, and the sigmoid of it instead.
#pragma once

#include <QWidget>

#include "engine/classify_types.h"
#include "engine/types.h"

class QLabel;
class QPlainTextEdit;
class QPushButton;

namespace wp::ui {

class ProbabilityBars;
class WorkerThread;

class ClassifySequenceView : public QWidget {
    Q_OBJECT
public:
    explicit ClassifySequenceView(WorkerThread& worker, QWidget* parent = nullptr);

    void setModel(const ModelCard& card);
    void setText(const QString& text);
    QString text() const;
    // Classifies the text on the worker (Classify, Ctrl+Enter); emits resultShown when the result
    // or the reason there is none is on screen.
    void classify();
    bool isBusy() const { return request_ != 0; }

    const ClassifyResult& result() const { return result_; }
    QString summary() const;  // the headline: the winning label, or the reward
    QString status() const;
    ProbabilityBars* bars() const { return bars_; }

signals:
    void resultShown();

protected:
    bool eventFilter(QObject* o, QEvent* e) override;

private:
    void show(const ClassifyResult& r);
    void setBusy(bool busy);

    WorkerThread& worker_;
    QString modelPath_;
    quint64 request_ = 0;
    ClassifyResult result_;
    QPlainTextEdit* input_ = nullptr;
    QPushButton* run_ = nullptr;
    QLabel* status_ = nullptr;
    QLabel* summary_ = nullptr;
    ProbabilityBars* bars_ = nullptr;
    QLabel* details_ = nullptr;
};

}  // namespace wp::ui
