#include "engine/worker_thread.h"

#include <limits>

namespace wp::ui {

WorkerThread::WorkerThread(const QString& threadName) : worker_(new InferenceWorker) {
    worker_->moveToThread(&thread_);
    QObject::connect(&thread_, &QThread::finished, worker_, &QObject::deleteLater);
    thread_.setObjectName(threadName);
    thread_.start();
}

WorkerThread::~WorkerThread() {
    worker_->cancel(std::numeric_limits<quint64>::max());
    thread_.quit();
    thread_.wait();
}

}  // namespace wp::ui
