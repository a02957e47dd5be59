#include "kernels/thread_pool.h"

#include <algorithm>
#include <chrono>
#include <string>

#include "wp/error.h"
#include "wp/model/threads.h"

#if defined(__x86_64__)
#include <immintrin.h>
#define WP_PAUSE() _mm_pause()
#else
#define WP_PAUSE() std::this_thread::yield()
#endif

namespace wp {

ThreadPool::ThreadPool(int threads) {
    if (threads > kMaxThreads)
        throw Error("thread pool: " + std::to_string(threads) + " threads requested, at most " +
                    std::to_string(kMaxThreads));
    regions_ = std::make_unique<Region[]>(static_cast<std::size_t>(std::max(1, threads)));
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

// Streams: a quarter of what is left of a region at a time, by compare-and-swap on its packed
// (front, back) grains: the owner takes from the front, a thread done with its own from the back.
bool ThreadPool::claim(int region, bool front, int slot) {
    std::atomic<std::uint64_t>& range = regions_[static_cast<std::size_t>(region)].grains;
    std::uint64_t r = range.load(std::memory_order_relaxed);
    for (;;) {
        const std::uint64_t f = r & 0xffffffffu, b = r >> 32;
        if (f >= b) return false;
        const std::uint64_t c = std::max<std::uint64_t>(1, (b - f) / 4);
        const std::uint64_t next = front ? (f + c) | (b << 32) : f | ((b - c) << 32);
        if (!range.compare_exchange_weak(r, next, std::memory_order_relaxed)) continue;  // r reloaded
        const std::int64_t g0 = static_cast<std::int64_t>(front ? f : b - c);
        call_(ctx_, g0 * grain_, std::min(n_, (g0 + static_cast<std::int64_t>(c)) * grain_), slot);
        return true;
    }
}

// Even: chunks are handed out in order by an atomic counter, so a thread that runs slower (a
// busy sibling hyperthread, an efficiency core, another process) simply takes fewer of them,
// where a fixed split would make every other thread wait for it. Streams: each thread reads its
// own region front to back, so its weights arrive as one stream, then helps the others from
// their ends, which a slower thread's region leaves to the rest in the same way.
void ThreadPool::work(int slot) {
    if (chunks_ == Chunks::Streams) {
        while (claim(slot, true, slot)) {
        }
        for (int k = 1; k < size(); ++k)
            while (claim((slot + k) % size(), false, slot)) {
            }
        return;
    }
    const std::int64_t chunks = (n_ + chunk_ - 1) / chunk_;
    for (;;) {
        const std::int64_t c = next_.fetch_add(1, std::memory_order_relaxed);
        if (c >= chunks) return;
        call_(ctx_, c * chunk_, std::min(n_, (c + 1) * chunk_), slot);
    }
}

void ThreadPool::run(std::int64_t n, std::int64_t grain, Chunks chunks, Call call, void* ctx) {
    call_ = call;
    ctx_ = ctx;
    n_ = n;
    grain = std::max<std::int64_t>(1, grain);
    grain_ = grain;
    const std::int64_t grains = (n + grain - 1) / grain;
    chunks_ = grains >> 32 ? Chunks::Even : chunks;  // a region's bounds are 32-bit grain counts
    // Even: about 8 chunks per thread (whole grains), fine enough to balance, few enough that
    // taking one costs nothing next to running it.
    chunk_ = std::max<std::int64_t>(1, grains / (8 * size())) * grain;
    next_.store(0, std::memory_order_relaxed);
    if (chunks_ == Chunks::Streams) {
        const std::uint64_t p = static_cast<std::uint64_t>(size()), g = static_cast<std::uint64_t>(grains);
        for (std::uint64_t i = 0; i < p; ++i)
            regions_[i].grains.store((g * i / p) | ((g * (i + 1) / p) << 32), std::memory_order_relaxed);
    }
    pending_.store(static_cast<int>(workers_.size()), std::memory_order_relaxed);
    {
        std::lock_guard<std::mutex> lock(mutex_);  // pairs with the sleepers' wait
        generation_.fetch_add(1, std::memory_order_release);
    }
    wake_.notify_all();
    work(0);
    // Spin, but yield now and then: on a loaded machine a worker may share this core, and
    // pure spinning would keep it from finishing its part.
    for (int spins = 0; pending_.load(std::memory_order_acquire) != 0; ++spins) {
        if (spins % 64 == 63) std::this_thread::yield();
        else WP_PAUSE();
    }
}

void ThreadPool::worker_loop(int slot) {
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
        work(slot);
        pending_.fetch_sub(1, std::memory_order_acq_rel);
    }
}

}  // namespace wp
