// The thread of an InferenceWorker: the main window has one, every compare pane its own.
#pragma once

#include "engine/inference_worker.h"
#include "engine/threaded_worker.h"

namespace wp::ui {

class WorkerThread : public ThreadedWorker<InferenceWorker> {
public:
    using ThreadedWorker::ThreadedWorker;
};

}  // namespace wp::ui
