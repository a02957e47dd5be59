// One InferenceWorker together with the QThread it lives on. The GUI side owns this object; the
// worker is created here, moved to the thread and deleted there when the thread finishes.
// Destruction cancels every request and waits for the thread (a model load in progress is not
// interruptible, so it finishes first).
#pragma once

#include <QMetaObject>
#include <QString>
#include <QThread>
#include <utility>

#include "engine/inference_worker.h"

namespace wp::ui {

class WorkerThread {
public:
    explicit WorkerThread(const QString& threadName);
    ~WorkerThread();
    WorkerThread(const WorkerThread&) = delete;
    WorkerThread& operator=(const WorkerThread&) = delete;

    // For connecting the worker's result signals; call its slots through post().
    InferenceWorker* worker() const { return worker_; }

    // Ids for this worker's requests, increasing: cancel(id) stops that request and every earlier
    // one, so all requests to one worker must take their ids from here. GUI thread only.
    quint64 nextRequestId() { return nextRequestId_++; }

    // Thread-safe: stops request `id` (and every earlier one) before its next token.
    void cancel(quint64 id) { worker_->cancel(id); }

    // Calls the worker slot `slot` with `args` on the worker's thread, after the calls posted
    // before it: post(&InferenceWorker::loadModel, id, path, precision).
    template <class... Params, class... Args>
    void post(void (InferenceWorker::*slot)(Params...), Args&&... args) {
        QMetaObject::invokeMethod(
            worker_, [w = worker_, slot, ... a = std::forward<Args>(args)] { (w->*slot)(a...); },
            Qt::QueuedConnection);
    }

private:
    QThread thread_;
    InferenceWorker* worker_ = nullptr;  // lives on thread_, deleted there
    quint64 nextRequestId_ = 1;
};

}  // namespace wp::ui
