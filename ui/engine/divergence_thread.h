// The thread of the compare view's DivergenceWorker, apart from the panes' workers and the judge's.
#pragma once

#include "engine/divergence_worker.h"
#include "engine/threaded_worker.h"

namespace wp::ui {

class DivergenceThread : public ThreadedWorker<DivergenceWorker> {
public:
    using ThreadedWorker::ThreadedWorker;
};

}  // namespace wp::ui
