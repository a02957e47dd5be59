// The thread pool: every index exactly once, and each chunk told which pool thread runs it.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "kernels/thread_pool.h"
#include "wp/error.h"
#include "wp/model/threads.h"

namespace wp::test {
namespace {

TEST(ThreadPool, EveryIndexExactlyOnce) {
    for (Chunks chunks : {Chunks::Even, Chunks::Shrinking})
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

// Shrinking chunks: each at most a quarter (two threads) of what was left where it starts, the
// last one a single grain.
TEST(ThreadPool, ShrinkingChunksEndInSingleGrains) {
    ThreadPool pool(2);
    std::mutex m;
    std::vector<std::pair<std::int64_t, std::int64_t>> got;
    pool.parallel_for(
        4864, 16,
        [&](std::int64_t b, std::int64_t e) {
            std::lock_guard<std::mutex> lock(m);
            got.emplace_back(b, e);
        },
        Chunks::Shrinking);
    std::sort(got.begin(), got.end());
    ASSERT_GT(got.size(), 8u);
    std::int64_t at = 0;
    for (auto [b, e] : got) {
        EXPECT_EQ(b, at);
        const std::int64_t left_grains = (4864 - b + 15) / 16;
        EXPECT_LE(e - b, std::max<std::int64_t>(16, left_grains / 4 * 16)) << b;
        at = e;
    }
    EXPECT_EQ(at, 4864);
    EXPECT_EQ(got.back().second - got.back().first, 16);
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
