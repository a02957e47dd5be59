#include "wp/model/threads.h"

#include <algorithm>
#include <cblas.h>
#include <mutex>
#include <thread>

namespace wp {

int default_thread_count() { return static_cast<int>(std::max(1u, std::thread::hardware_concurrency())); }

bool set_blas_threads(int threads) {
    static std::once_flag once;
    bool first = false;
    std::call_once(once, [&] {
        openblas_set_num_threads(threads > 0 ? std::min(threads, kMaxThreads) : default_thread_count());
        first = true;
    });
    return first;
}

const char* blas_build_info() { return openblas_get_config(); }

}  // namespace wp
