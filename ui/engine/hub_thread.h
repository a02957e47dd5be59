// The thread of a HubWorker: the main window has two (browsing the hub, and downloads).
#pragma once

#include "engine/hub_worker.h"
#include "engine/threaded_worker.h"

namespace wp::ui {

class HubThread : public ThreadedWorker<HubWorker> {
public:
    using ThreadedWorker::ThreadedWorker;
};

}  // namespace wp::ui
