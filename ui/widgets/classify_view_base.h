// What the Classify tab's three views share: the worker and the loaded model's path, the one
// request in flight (a reply to any other is stale), and the Run button with its status line.
#pragma once

#include <QWidget>
#include <utility>

#include "engine/worker_thread.h"

class QHBoxLayout;
class QLabel;
class QPlainTextEdit;
class QPushButton;

namespace wp::ui {

class ClassifyViewBase : public QWidget {
    Q_OBJECT
public:
    bool isBusy() const { return request_ != 0; }
    QString status() const;

signals:
    // The result of a run, or the reason there is none, is on screen.
    void resultShown();

protected:
    ClassifyViewBase(WorkerThread& worker, QWidget* parent);

    // The view's run: what the Run button and Ctrl+Enter in the watched input do.
    virtual void submit() = 0;
    // After the busy state changes: a view whose inputs must not change meanwhile locks them.
    virtual void busyChanged(bool /*busy*/) {}

    // The Run button (its texts when idle and when busy) and the status line beside it.
    QHBoxLayout* makeRunRow(const QString& idle, const QString& busy, const QString& objectName,
                            const QString& toolTip);
    // The view's text input: Ctrl+Enter in it runs.
    QPlainTextEdit* makeInput(const QString& objectName, const QString& placeholder);
    // A new model: a result still on its way belongs to the previous one and is dropped.
    void setModelPath(const QString& path);
    // Shows why the view cannot run (no model loaded, else `problem` when not empty) and emits
    // resultShown; false when it can run.
    bool cannotRun(const QString& problem);
    // Runs `slot`(request id, model path, args...) on the worker as the view's request.
    template <class... Params, class... Args>
    void post(void (InferenceWorker::*slot)(Params...), Args&&... args) {
        request_ = worker_.nextRequestId();
        setBusy(true);
        worker_.post(slot, request_, modelPath_, std::forward<Args>(args)...);
    }
    // Hands the worker's `signal` for the current request to `show`, then emits resultShown.
    template <class Result, class Show>
    void showReplies(void (InferenceWorker::*signal)(quint64, const Result&), Show show) {
        connect(worker_.worker(), signal, this, [this, show](quint64 id, const Result& r) {
            if (id != request_) return;
            setBusy(false);
            show(r);
            emit resultShown();
        });
    }

    bool eventFilter(QObject* o, QEvent* e) override;

    QLabel* status_ = nullptr;

private:
    void setBusy(bool busy);

    WorkerThread& worker_;
    QString modelPath_;
    quint64 request_ = 0;
    QPlainTextEdit* submitInput_ = nullptr;  // makeInput's
    QPushButton* run_ = nullptr;
    QString idleText_, busyText_;
};

}  // namespace wp::ui
