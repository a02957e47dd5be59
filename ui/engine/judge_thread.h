// The thread of the compare view's JudgeWorker, apart from the panes' workers.
#pragma once

#include "engine/judge_worker.h"
#include "engine/threaded_worker.h"

namespace wp::ui {

class JudgeThread : public ThreadedWorker<JudgeWorker> {
public:
    using ThreadedWorker::ThreadedWorker;
};

}  // namespace wp::ui
