// A persistent pool for the per-token work: decode runs ~10 parallel loops per layer, so workers
// spin briefly between jobs instead of sleeping (a condition-variable wake-up costs tens of
// microseconds, which at 30 tokens/s x 200 loops would eat a large share of the time).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace wp {

// How parallel_for cuts [0, n) into the chunks the threads take in turn.
enum class Chunks {
    Even,       // about 8 per thread: for work whose chunks each reuse what they bring into cache
    Streams,    // one region per thread, read front to back a quarter of what is left at a time,
                // then the others' from their ends: for streaming from memory, where each new
                // place a thread starts reading costs it a memory latency, and the last chunk of
                // an even cut leaves one core idle for half a chunk
};

class ThreadPool {
public:
    // `threads` in total, the calling thread included (1 = no extra threads).
    explicit ThreadPool(int threads);
    ~ThreadPool();
    ThreadPool(const ThreadPool&) = delete;
    ThreadPool& operator=(const ThreadPool&) = delete;

    int size() const { return static_cast<int>(workers_.size()) + 1; }

    // Calls fn(begin, end) on contiguous chunks covering [0, n) exactly once (chunk boundaries
    // are multiples of `grain`); the threads, the caller included, take chunks until none are
    // left, so a slower thread does less. Returns when all are done. Not reentrant.
    template <typename F>
    void parallel_for(std::int64_t n, std::int64_t grain, F&& fn, Chunks chunks = Chunks::Even) {
        parallel_for_slots(n, grain, [&fn](std::int64_t b, std::int64_t e, int) { fn(b, e); }, chunks);
    }
    // The same with fn(begin, end, slot): `slot`, 0 .. size() - 1, names the thread that runs the
    // chunk (0: the caller), so a chunk can use that thread's scratch (KernelScratch::threads)
    // where it would otherwise need thread_local buffers.
    template <typename F>
    void parallel_for_slots(std::int64_t n, std::int64_t grain, F&& fn, Chunks chunks = Chunks::Even) {
        if (workers_.empty() || n <= grain) {
            if (n > 0) fn(std::int64_t{0}, n, 0);
            return;
        }
        run(n, grain, chunks,
            [](void* ctx, std::int64_t b, std::int64_t e, int slot) { (*static_cast<F*>(ctx))(b, e, slot); }, &fn);
    }

private:
    using Call = void (*)(void*, std::int64_t, std::int64_t, int);
    void run(std::int64_t n, std::int64_t grain, Chunks chunks, Call call, void* ctx);
    void work(int slot);
    void worker_loop(int slot);
    bool claim(int region, bool front, int slot);

    std::vector<std::thread> workers_;
    std::atomic<std::uint64_t> generation_{0};
    std::atomic<int> pending_{0};
    std::atomic<bool> stop_{false};
    std::mutex mutex_;
    std::condition_variable wake_;
    // The current job.
    Call call_ = nullptr;
    void* ctx_ = nullptr;
    std::int64_t n_ = 0, chunk_ = 1, grain_ = 1;
    Chunks chunks_ = Chunks::Even;
    std::atomic<std::int64_t> next_{0};
    struct alignas(64) Region {  // [front, back) in grains, front in the low 32 bits
        std::atomic<std::uint64_t> grains{0};
    };
    std::unique_ptr<Region[]> regions_;
};

}  // namespace wp
