// The thread of the RemoteWorker: one for the app (RemoteModels owns it); the chat and every
// compare pane send their remote requests through it, each with its own request id.
#pragma once

#include "engine/remote_worker.h"
#include "engine/threaded_worker.h"

namespace wp::ui {

class RemoteThread : public ThreadedWorker<RemoteWorker> {
public:
    using ThreadedWorker::ThreadedWorker;
};

}  // namespace wp::ui
