// Decoding allocates nothing and starts no thread per token: every operator new of the process is
// counted (this file replaces the global allocation functions, so it is a test program of its
// own), and the threads listed in /proc/self/task are compared before and after.
#include <gtest/gtest.h>

#include <atomic>
#include <cblas.h>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <new>
#include <vector>

#include "test_support.h"
#include "wp/generate/generator.h"
#include "wp/model/model.h"
#include "wp/model/threads.h"

// The replacements below pair malloc with free on purpose; GCC cannot see that they are the
// process's only allocation functions.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

namespace {
std::atomic<bool> g_counting{false};
std::atomic<long> g_allocations{0};

void* counted_alloc(std::size_t n, std::size_t align) {
    if (g_counting.load(std::memory_order_relaxed)) g_allocations.fetch_add(1, std::memory_order_relaxed);
    if (n == 0) n = 1;
    void* p = nullptr;
    if (align <= alignof(std::max_align_t)) p = std::malloc(n);
    else if (posix_memalign(&p, align, n) != 0) p = nullptr;
    if (!p) throw std::bad_alloc();
    return p;
}
}  // namespace

void* operator new(std::size_t n) { return counted_alloc(n, alignof(std::max_align_t)); }
void* operator new[](std::size_t n) { return counted_alloc(n, alignof(std::max_align_t)); }
void* operator new(std::size_t n, std::align_val_t a) { return counted_alloc(n, static_cast<std::size_t>(a)); }
void* operator new[](std::size_t n, std::align_val_t a) { return counted_alloc(n, static_cast<std::size_t>(a)); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }

namespace wp::test {
namespace {

int thread_count() {
    int n = 0;
    for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator("/proc/self/task")) ++n;
    return n;
}

// Counts the allocations made while `f` runs (on any thread).
template <class F>
long allocations_during(F&& f) {
    g_allocations = 0;
    g_counting = true;
    f();
    g_counting = false;
    return g_allocations.load();
}

// A token callback that, once `armed`, starts counting at the first token of a generation (the
// prompt before it may size per-thread buffers on whichever thread runs first).
std::function<bool(const GeneratedToken&)> count_from_first_token(const bool& armed) {
    return [&armed](const GeneratedToken&) {
        if (armed && !g_counting) {
            g_allocations = 0;
            g_counting = true;
        }
        return true;
    };
}

struct Variant {
    const char* model;  // under the shared folder
    Precision precision;
};

class DecodeAllocations : public testing::TestWithParam<Variant> {
protected:
    static std::unique_ptr<Model> load(const Variant& v) {
        LoadOptions lo;
        lo.precision = v.precision;
        lo.threads = 2;
        return Model::load(shared_dir() / v.model, {}, lo);
    }
};

// The counter itself works: a vector's growth is seen.
TEST(DecodeAllocationsCounter, SeesAnAllocation) {
    std::vector<int> v;
    EXPECT_GE(allocations_during([&] { v.resize(1000); }), 1);
}

// After a warm-up (the workspace grows to the context it meets), decode steps through
// Model::forward allocate nothing, in every family, precision and cache kind, and no thread is
// started.
TEST_P(DecodeAllocations, ForwardDecodeStepsAllocateNothing) {
    WP_REQUIRE_SHARED();
    auto m = load(GetParam());
    for (CacheKind kind : {CacheKind::Static, CacheKind::Hybrid, CacheKind::Dynamic}) {
        SCOPED_TRACE(cache_kind_name(kind));
        // Dynamic caches grow by doubling: room is made once here (a long enough prompt), so the
        // decode steps below only fill it.
        auto ctx = m->new_context(kind, 128);
        std::vector<int> prompt(64);
        for (std::size_t i = 0; i < prompt.size(); ++i) prompt[i] = static_cast<int>(3 + i * 7 % 900);
        m->forward(*ctx, prompt, LogitsMode::Last);
        int id = 5;
        for (int i = 0; i < 2; ++i) m->forward(*ctx, std::span<const int>(&id, 1), LogitsMode::Last);
        const int threads = thread_count();
        const long n = allocations_during([&] {
            for (int i = 0; i < 48; ++i) {
                const auto logits = m->forward(*ctx, std::span<const int>(&id, 1), LogitsMode::Last);
                id = static_cast<int>(std::max_element(logits.begin(), logits.end()) - logits.begin());
            }
        });
        EXPECT_EQ(n, 0) << "allocations in 48 decode steps";
        EXPECT_EQ(thread_count(), threads);
    }
}

// The token loop after the first token, sampling included (temperature, top-k, top-p, min-p,
// repetition penalty, the top-5 alternatives of every token), allocates nothing, for 8 tokens as
// for 48. Counting starts at the first token: the prompt before it may size per-thread buffers of
// prompt attention on whichever thread takes a unit first, which is not a per-token cost.
TEST_P(DecodeAllocations, SampledGenerationAllocatesNothingPerToken) {
    WP_REQUIRE_SHARED();
    auto m = load(GetParam());
    auto ctx = m->new_context(m->default_cache(), 0);
    GenerateOptions opts;
    opts.eos_ids = std::vector<int>{};
    opts.sampling.greedy = false;
    opts.sampling.temperature = 0.8f;
    opts.sampling.top_k = 40;
    opts.sampling.top_p = 0.9f;
    opts.sampling.min_p = 0.01f;
    opts.sampling.repetition_penalty = 1.1f;
    opts.sampling.seed = 7;
    bool count = false;
    opts.on_token = count_from_first_token(count);
    std::vector<int> prompt(100);
    for (std::size_t i = 0; i < prompt.size(); ++i) prompt[i] = static_cast<int>(3 + i * 11 % 900);
    opts.max_new_tokens = 48;
    generate(*m, *ctx, prompt, opts);  // warm-up: the workspace and the cache grow here
    count = true;
    for (int length : {8, 48}) {
        ctx->cache.clear();
        opts.max_new_tokens = length;
        const GenerateResult r = generate(*m, *ctx, std::span<const int>(prompt).first(60), opts);
        g_counting = false;
        ASSERT_EQ(r.tokens.size(), static_cast<std::size_t>(length));
        EXPECT_EQ(g_allocations.load(), 0) << "allocations generating " << length << " tokens, after the first";
    }
}

// Greedy generation with prompt lookup (draft forward passes, the ring layers' rows kept for a
// rewind, the cache truncated) allocates nothing per token either, once a first run has sized it.
TEST_P(DecodeAllocations, PromptLookupAllocatesNothingPerToken) {
    WP_REQUIRE_SHARED();
    auto m = load(GetParam());
    auto ctx = m->new_context(m->default_cache(), 0);
    GenerateOptions opts;
    opts.eos_ids = std::vector<int>{};
    opts.prompt_lookup_tokens = 10;
    bool count = false;
    opts.on_token = count_from_first_token(count);
    std::vector<int> prompt;
    for (int r = 0; r < 3; ++r)
        for (int i = 0; i < 20; ++i) prompt.push_back(3 + i * 13 % 900);
    opts.max_new_tokens = 48;
    // Two warm-up runs: the cache may grow during a draft's pass, and decode attention's buffers
    // (sized to the cache's slots) follow at the next single-token step, in the second run.
    GenerateResult warm = generate(*m, *ctx, prompt, opts);
    ctx->cache.clear();
    warm = generate(*m, *ctx, prompt, opts);
    ASSERT_GT(warm.drafted, 0) << "no drafts: nothing of prompt lookup would be counted";
    count = true;
    ctx->cache.clear();
    const GenerateResult r = generate(*m, *ctx, prompt, opts);
    g_counting = false;
    ASSERT_EQ(r.tokens.size(), 48u);
    EXPECT_EQ(r.drafted, warm.drafted);
    EXPECT_EQ(g_allocations.load(), 0) << "allocations generating 48 tokens with prompt lookup, after the first";
}

// Decode attention split across threads (fewer KV heads than threads, a context long enough for
// parts) and the q8 and f16 caches allocate nothing per token either.
TEST(DecodeAllocationsSplit, LongContextOnMoreThreadsThanKvHeadsAllocatesNothing) {
    WP_REQUIRE_SHARED();
    for (KvType kv : {KvType::F32, KvType::F16, KvType::Q8}) {
        SCOPED_TRACE(kv_type_name(kv));
        LoadOptions lo;
        lo.threads = 4;
        lo.kv_cache = kv;
        auto m = Model::load(shared_dir() / "fixtures" / "tiny-gemma", {}, lo);
        ASSERT_EQ(m->config().num_kv_heads, 1);
        auto ctx = m->new_context(CacheKind::Static, 1200);
        std::vector<int> prompt(1100);
        for (std::size_t i = 0; i < prompt.size(); ++i) prompt[i] = static_cast<int>(3 + i * 7 % 900);
        m->forward(*ctx, prompt, LogitsMode::Last);
        int id = 5;
        for (int i = 0; i < 2; ++i) m->forward(*ctx, std::span<const int>(&id, 1), LogitsMode::Last);
        const long n = allocations_during([&] {
            for (int i = 0; i < 48; ++i) {
                const auto logits = m->forward(*ctx, std::span<const int>(&id, 1), LogitsMode::Last);
                id = static_cast<int>(std::max_element(logits.begin(), logits.end()) - logits.begin());
            }
        });
        EXPECT_EQ(n, 0) << "allocations in 48 decode steps after 1,100 tokens";
    }
}

// BLAS's threads are the process's: set_blas_threads sets them once (the first call wins), and
// loading a model sets only its own pool (LoadOptions::threads), so a second model loaded while
// the first runs sgemm changes nothing under it.
TEST(Threads, PoolTakesTheThreadsAskedAndBlasIsSetOnce) {
    WP_REQUIRE_SHARED();
    EXPECT_TRUE(set_blas_threads(2));
    EXPECT_EQ(openblas_get_num_threads(), 2);
    EXPECT_FALSE(set_blas_threads(1)) << "a second call must change nothing";
    EXPECT_EQ(openblas_get_num_threads(), 2);
    for (int threads : {1, 2}) {
        LoadOptions lo;
        lo.threads = threads;
        auto m = Model::load(shared_dir() / "fixtures" / "tiny-qwen2", {}, lo);
        EXPECT_EQ(m->threads(), threads);
        EXPECT_EQ(openblas_get_num_threads(), 2) << "a load must leave BLAS's threads alone";
    }
}

std::string variant_label(const testing::TestParamInfo<Variant>& i) {
    std::string s = std::filesystem::path(i.param.model).filename().string() + "_" + precision_name(i.param.precision);
    for (char& c : s)
        if (c == '-') c = '_';
    return s;
}

INSTANTIATE_TEST_SUITE_P(Fixtures, DecodeAllocations,
                         testing::Values(Variant{"fixtures/tiny-gemma", Precision::F32},
                                         Variant{"fixtures/tiny-gemma2", Precision::F32},
                                         Variant{"fixtures/tiny-gemma2", Precision::Q8},
                                         Variant{"fixtures/tiny-gemma2", Precision::Q4},
                                         Variant{"fixtures/tiny-qwen2", Precision::F32},
                                         Variant{"fixtures/tiny-qwen2", Precision::BF16},
                                         Variant{"fixtures/tiny-qwen2-tied", Precision::Q8},
                                         Variant{"models/windowpane-demo-gemma2", Precision::BF16},
                                         Variant{"models/windowpane-demo-gemma2", Precision::Q4}),
                         variant_label);

}  // namespace
}  // namespace wp::test
