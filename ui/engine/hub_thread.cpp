#include "engine/hub_thread.h"

namespace wp::ui {

HubThread::HubThread(const QString& threadName) : worker_(new HubWorker) {
    worker_->moveToThread(&thread_);
    QObject::connect(&thread_, &QThread::finished, worker_, &QObject::deleteLater);
    thread_.setObjectName(threadName);
    thread_.start();
}

HubThread::~HubThread() {
    // Every id handed out so far: the running download stops, queued ones are dropped.
    for (quint64 id = 1; id < nextRequestId_; ++id) worker_->cancelDownload(id);
    thread_.quit();
    thread_.wait();
}

}  // namespace wp::ui
