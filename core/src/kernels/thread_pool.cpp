#include "wp/kernels/thread_pool.h"

#include <algorithm>
#include <chrono>

#if defined(__x86_64__)
#include <immintrin.h>
#define WP_PAUSE() _mm_pause()
#else
#define WP_PAUSE() std::this_thread::yield()
#endif

namespace wp {

ThreadPool::ThreadPool(int threads) {
    for (int i = 1; i < std::max(1, threads); ++i) workers_.emplace_back([this, i] { worker_loop(i); });
}

ThreadPool::~ThreadPool() {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        stop_ = true;
        generation_.fetch_add(1);
    }
    wake_.notify_all();
    for (auto& t : workers_) t.join();
}

void ThreadPool::range(int part, std::int64_t& b, std::int64_t& e) const {
    const std::int64_t parts = size();
    const std::int64_t blocks = (n_ + grain_ - 1) / grain_;
    b = std::min(n_, blocks * part / parts * grain_);
    e = std::min(n_, blocks * (part + 1) / parts * grain_);
}

void ThreadPool::run(std::int64_t n, std::int64_t grain, Call call, void* ctx) {
    call_ = call;
    ctx_ = ctx;
    n_ = n;
    grain_ = std::max<std::int64_t>(1, grain);
    pending_.store(static_cast<int>(workers_.size()), std::memory_order_relaxed);
    {
        std::lock_guard<std::mutex> lock(mutex_);  // pairs with the sleepers' wait
        generation_.fetch_add(1, std::memory_order_release);
    }
    wake_.notify_all();
    std::int64_t b, e;
    range(0, b, e);
    if (b < e) call_(ctx_, b, e);
    // Spin, but yield now and then: on a loaded machine a worker may share this core, and
    // pure spinning would keep it from finishing its part.
    for (int spins = 0; pending_.load(std::memory_order_acquire) != 0; ++spins) {
        if (spins % 64 == 63) std::this_thread::yield();
        else WP_PAUSE();
    }
}

void ThreadPool::worker_loop(int index) {
    std::uint64_t seen = 0;
    for (;;) {
        // Spin for a short while (the next job usually follows within microseconds), then sleep.
        const auto spin_until = std::chrono::steady_clock::now() + std::chrono::microseconds(200);
        std::uint64_t g;
        int spins = 0;
        while ((g = generation_.load(std::memory_order_acquire)) == seen) {
            if (++spins % 64 == 0) std::this_thread::yield();
            else WP_PAUSE();
            if (spins % 256 == 0 && std::chrono::steady_clock::now() > spin_until) {
                std::unique_lock<std::mutex> lock(mutex_);
                wake_.wait(lock, [&] { return generation_.load(std::memory_order_acquire) != seen; });
            }
        }
        seen = g;
        if (stop_.load()) return;
        std::int64_t b, e;
        range(index, b, e);
        if (b < e) call_(ctx_, b, e);
        pending_.fetch_sub(1, std::memory_order_acq_rel);
    }
}

}  // namespace wp
