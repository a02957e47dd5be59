// The thread pool: every index exactly once, and each chunk told which pool thread runs it.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <tuple>

#include "kernels/thread_pool.h"
#include "wp/error.h"
#include "wp/model/threads.h"

namespace wp::test {
namespace {

TEST(ThreadPool, EveryIndexExactlyOnce) {
    for (Chunks chunks : {Chunks::Even, Chunks::Streams})
        for (int threads : {1, 2, 3}) {
            ThreadPool pool(threads);
            for (std::int64_t n : {0, 1, 7, 16, 17, 1000, 4099})
                for (std::int64_t grain : {1, 4, 16}) {
                    std::vector<std::atomic<int>> hits(static_cast<std::size_t>(n));
                    for (int rep = 0; rep < 3; ++rep)
                        pool.parallel_for(
                            n, grain,
                            [&](std::int64_t b, std::int64_t e) {
                                EXPECT_TRUE(b % grain == 0 || b == n);
                                EXPECT_LT(b, e);
                                for (std::int64_t i = b; i < e; ++i) hits[static_cast<std::size_t>(i)]++;
                            },
                            chunks);
                    for (std::int64_t i = 0; i < n; ++i)
                        ASSERT_EQ(hits[static_cast<std::size_t>(i)].load(), 3) << n << " " << grain;
                }
        }
}

// Streams: thread i owns grains [G i / p, G (i + 1) / p). What it runs of its own region is one
// contiguous run from the region's start; what others run of it is one run up to the region's
// end; each chunk is at most a quarter of what was left of its region (one grain at least). A
// worker slowed down has its region finished by the others from the back.
TEST(ThreadPool, StreamsReadEachRegionFromBothEnds) {
    for (int threads : {2, 3})
        for (bool slow : {false, true}) {
            ThreadPool pool(threads);
            constexpr std::int64_t n = 4864, grain = 16, G = n / grain;
            std::mutex m;
            std::vector<std::tuple<std::int64_t, std::int64_t, int>> got;
            pool.parallel_for_slots(
                n, grain,
                [&](std::int64_t b, std::int64_t e, int slot) {
                    // About 100 ns a row, so the workers wake in time to read their own regions.
                    const auto until = std::chrono::steady_clock::now() + std::chrono::nanoseconds(100 * (e - b));
                    while (std::chrono::steady_clock::now() < until) {
                    }
                    if (slow && slot == 1) std::this_thread::sleep_for(std::chrono::milliseconds(2));
                    std::lock_guard<std::mutex> lock(m);
                    got.emplace_back(b, e, slot);
                },
                Chunks::Streams);
            std::sort(got.begin(), got.end());
            std::int64_t at = 0;
            bool stolen_from_slow = false;
            for (int region = 0; region < threads; ++region) {
                const std::int64_t lo = G * region / threads * grain, hi = G * (region + 1) / threads * grain;
                bool own = true;  // the owner's run comes first, then the others'
                for (const auto& [b, e, slot] : got) {
                    if (b < lo || b >= hi) continue;
                    EXPECT_EQ(b, at);
                    EXPECT_LE(e, hi);
                    if (slot != region) own = false;
                    EXPECT_TRUE(slot != region || own) << "the owner's chunks are not one run from the start";
                    const std::int64_t left = own ? hi - b : e - lo;  // the most that could have been left
                    EXPECT_LE(e - b, std::max(grain, left / grain / 4 * grain)) << b;
                    if (region == 1 && slot != 1) stolen_from_slow = true;
                    at = e;
                }
            }
            EXPECT_EQ(at, n);
            if (slow) { EXPECT_TRUE(stolen_from_slow) << threads; }
        }
}

// Each chunk is told the slot of the thread that runs it: within 0 .. size() - 1, the caller's is
// 0, and one thread always has the same slot (so per-slot scratch is never shared).
TEST(ThreadPool, SlotsNameTheThreadThatRunsAChunk) {
    for (int threads : {1, 2, 3}) {
        ThreadPool pool(threads);
        std::mutex m;
        std::map<std::thread::id, std::set<int>> seen;
        for (int rep = 0; rep < 20; ++rep)
            pool.parallel_for_slots(1000, 1, [&](std::int64_t, std::int64_t, int slot) {
                EXPECT_GE(slot, 0);
                EXPECT_LT(slot, pool.size());
                std::lock_guard<std::mutex> lock(m);
                seen[std::this_thread::get_id()].insert(slot);
            });
        std::set<int> slots;
        for (const auto& [id, s] : seen) {
            ASSERT_EQ(s.size(), 1u) << "a thread ran chunks under two slots";
            EXPECT_TRUE(slots.insert(*s.begin()).second) << "two threads shared a slot";
            if (id == std::this_thread::get_id()) {
                EXPECT_EQ(*s.begin(), 0);
            }
        }
    }
}

// An absurd size fails at once instead of starting hundreds of threads.
TEST(ThreadPool, RefusesMoreThanMaxThreads) {
    EXPECT_THROW(ThreadPool pool(100000), Error);
    EXPECT_THROW(ThreadPool pool(kMaxThreads + 1), Error);
}

}  // namespace
}  // namespace wp::test
