// One HubWorker together with the QThread it lives on (as WorkerThread holds an InferenceWorker).
// Destruction cancels the running download and waits for the thread.
#pragma once

#include <QMetaObject>
#include <QString>
#include <QThread>
#include <utility>

#include "engine/hub_worker.h"

namespace wp::ui {

class HubThread {
public:
    explicit HubThread(const QString& threadName);
    ~HubThread();
    HubThread(const HubThread&) = delete;
    HubThread& operator=(const HubThread&) = delete;

    HubWorker* worker() const { return worker_; }
    quint64 nextRequestId() { return nextRequestId_++; }  // GUI thread only

    template <class... Params, class... Args>
    void post(void (HubWorker::*slot)(Params...), Args&&... args) {
        QMetaObject::invokeMethod(
            worker_, [w = worker_, slot, ... a = std::forward<Args>(args)] { (w->*slot)(a...); }, Qt::QueuedConnection);
    }

private:
    QThread thread_;
    HubWorker* worker_ = nullptr;  // lives on thread_, deleted there
    quint64 nextRequestId_ = 1;
};

}  // namespace wp::ui
