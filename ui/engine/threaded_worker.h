// A worker QObject together with the QThread it lives on. The GUI side owns this object; the
// worker is created here, moved to the thread and deleted there when the thread finishes.
// Destruction cancels every request handed out and waits for the thread (a model load in progress
// is not interruptible, so it finishes first). WorkerThread, JudgeThread and HubThread are these.
#pragma once

#include <QMetaObject>
#include <QString>
#include <QThread>
#include <limits>
#include <utility>

namespace wp::ui {

template <class Worker>
class ThreadedWorker {
public:
    explicit ThreadedWorker(const QString& threadName) : worker_(new Worker) {
        worker_->moveToThread(&thread_);
        QObject::connect(&thread_, &QThread::finished, worker_, &QObject::deleteLater);
        thread_.setObjectName(threadName);
        thread_.start();
    }
    ~ThreadedWorker() {
        if constexpr (requires(Worker& w) { w.cancel(quint64{}); }) {
            worker_->cancel(std::numeric_limits<quint64>::max());
        } else {  // HubWorker: the running download stops, queued ones are dropped
            for (quint64 id = 1; id < nextRequestId_; ++id) worker_->cancelDownload(id);
        }
        thread_.quit();
        thread_.wait();
    }
    ThreadedWorker(const ThreadedWorker&) = delete;
    ThreadedWorker& operator=(const ThreadedWorker&) = delete;

    // For connecting the worker's result signals; call its slots through post().
    Worker* worker() const { return worker_; }

    // Ids for this worker's requests, increasing: cancel(id) stops that request and every earlier
    // one, so all requests to one worker must take their ids from here. GUI thread only.
    quint64 nextRequestId() { return nextRequestId_++; }

    // Thread-safe: stops request `id` (and every earlier one) before its next step.
    void cancel(quint64 id)
        requires requires(Worker& w) { w.cancel(id); }
    {
        worker_->cancel(id);
    }

    // Calls the worker slot `slot` with `args` on the worker's thread, after the calls posted
    // before it: post(&InferenceWorker::loadModel, id, path, precision).
    template <class... Params, class... Args>
    void post(void (Worker::*slot)(Params...), Args&&... args) {
        QMetaObject::invokeMethod(
            worker_, [w = worker_, slot, ... a = std::forward<Args>(args)] { (w->*slot)(a...); },
            Qt::QueuedConnection);
    }

private:
    QThread thread_;
    Worker* worker_ = nullptr;  // lives on thread_, deleted there
    quint64 nextRequestId_ = 1;
};

}  // namespace wp::ui
