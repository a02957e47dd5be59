// KV cache semantics: what each layer holds, bounded memory of the hybrid cache's sliding layers,
// the static cache's limit.
#include <fstream>
#include <random>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "test_support.h"
#include "wp/error.h"
#include "wp/generate/generator.h"
#include "cache/kv_array.h"
#include "kernels/ops.h"
#include "wp/io/float16.h"
#include "wp/model/model.h"

namespace wp::test {
namespace {

ModelConfig tiny_gemma2_config() {
    // The tiny-gemma2 fixture's shape, without needing the fixture files.
    return ModelConfig::parse(R"({"model_type":"gemma2","vocab_size":1000,"hidden_size":64,
        "intermediate_size":128,"num_hidden_layers":4,"num_attention_heads":4,"num_key_value_heads":2,
        "head_dim":32,"sliding_window":8,"query_pre_attn_scalar":32})");
}

TEST(KvCache, HybridSlidingLayersHoldTheLastWindow) {
    const ModelConfig cfg = tiny_gemma2_config();
    KvCache cache(cfg, CacheKind::Hybrid);
    std::vector<float> k(static_cast<std::size_t>(cfg.kv_dim()) * 5), v(k.size());
    std::size_t sliding_alloc = 0;
    for (int step = 0; step < 40; ++step) {
        const int count = 1 + step % 5;
        for (int i = 0; i < count; ++i)
            for (int h = 0; h < cfg.num_kv_heads; ++h)
                k[static_cast<std::size_t>(i) * cfg.kv_dim() + static_cast<std::size_t>(h) * cfg.head_dim] =
                    static_cast<float>((cache.length() + i) * 100 + h);
        for (int l = 0; l < cfg.num_layers; ++l) cache.store(l, k.data(), v.data(), count);
        cache.advance(count);
        const std::int64_t n = cache.length();
        for (int l = 0; l < cfg.num_layers; ++l) {
            auto pos = cache.positions(l);
            std::sort(pos.begin(), pos.end());
            std::vector<std::int64_t> want;
            for (std::int64_t p = cfg.layer_is_sliding(l) ? std::max<std::int64_t>(0, n - 8) : 0; p < n; ++p) want.push_back(p);
            ASSERT_EQ(pos, want) << "layer " << l << " after " << n << " tokens";
            // The row in each slot is the one stored for that position, in every KV head.
            for (int s = 0; s < cache.held(l); ++s)
                for (int h = 0; h < cfg.num_kv_heads; ++h)
                    ASSERT_EQ(cache.keys(l)[cache.offset(l, s, h)], static_cast<float>(cache.slot_position(l, s) * 100 + h));
        }
        EXPECT_EQ(cache.bytes_used(0), static_cast<std::size_t>(std::min<std::int64_t>(n, 8)) * cfg.kv_dim() * 8);
        EXPECT_EQ(cache.bytes_used(1), static_cast<std::size_t>(n) * cfg.kv_dim() * 8);
        if (step == 0) sliding_alloc = cache.bytes_allocated();
    }
    // Sliding layers were allocated once at their window size; only global layers grew.
    EXPECT_EQ(cache.bytes_used(0), 8u * cfg.kv_dim() * 8);
    EXPECT_GT(cache.bytes_allocated(), sliding_alloc);
}

TEST(KvCache, HybridMemoryStaysBoundedOnALongGeneration) {
    WP_REQUIRE_SHARED();
    auto m = Model::load(shared_dir() / "fixtures" / "tiny-gemma2");
    auto ctx = m->new_context(CacheKind::Hybrid);
    GenerateOptions opts;
    opts.max_new_tokens = 300;
    opts.eos_ids = std::vector<int>{};
    const std::vector<int> prompt = {2, 403, 494};
    std::vector<std::size_t> sliding_bytes;
    opts.on_token = [&](const GeneratedToken&) {
        sliding_bytes.push_back(ctx->cache.bytes_used(0) + ctx->cache.bytes_used(2));
        return true;
    };
    generate(*m, *ctx, prompt, opts);
    const std::size_t window_bytes = 2u * 8 * m->config().kv_dim() * 2 * sizeof(float);
    for (std::size_t i = 10; i < sliding_bytes.size(); ++i) ASSERT_EQ(sliding_bytes[i], window_bytes);
    EXPECT_EQ(ctx->cache.held(0), 8);
    EXPECT_EQ(ctx->cache.held(1), 302);  // 3 prompt + 299 fed back (the last token is not fed)
}

// Cache mode of the visualizer: after every generated token, each sliding layer of the hybrid
// cache holds exactly the last `sliding_window` positions and each global layer all of them.
TEST(KvCache, HeldPositionsAfterEachGeneratedToken) {
    WP_REQUIRE_SHARED();
    auto m = Model::load(shared_dir() / "fixtures" / "tiny-gemma2");
    const ModelConfig& c = m->config();
    auto ctx = m->new_context(CacheKind::Hybrid);
    GenerateOptions opts;
    opts.max_new_tokens = 30;
    opts.eos_ids = std::vector<int>{};
    int steps = 0;
    opts.on_token = [&](const GeneratedToken&) {
        const std::int64_t n = ctx->cache.length();
        for (int l = 0; l < c.num_layers; ++l) {
            auto pos = ctx->cache.positions(l);
            std::sort(pos.begin(), pos.end());
            const std::int64_t first = c.layer_is_sliding(l) ? std::max<std::int64_t>(0, n - c.sliding_window) : 0;
            EXPECT_EQ(static_cast<std::int64_t>(pos.size()), n - first) << "layer " << l << " at " << n;
            EXPECT_EQ(pos.front(), first);
            EXPECT_EQ(pos.back(), n - 1);
        }
        ++steps;
        return true;
    };
    const std::vector<int> prompt = {2, 403, 494, 495, 956};
    generate(*m, *ctx, prompt, opts);
    EXPECT_EQ(steps, 30);
}

TEST(KvCache, HalfCacheHoldsTheSameRowsInHalfTheBytes) {
    const ModelConfig cfg = tiny_gemma2_config();
    KvCache full(cfg, CacheKind::Hybrid), half(cfg, CacheKind::Hybrid, 0, KvType::F16);
    std::vector<float> k(static_cast<std::size_t>(cfg.kv_dim()) * 3), v(k.size());
    for (std::size_t i = 0; i < k.size(); ++i) {
        k[i] = 0.25f * static_cast<float>(i % 17);
        v[i] = -0.5f * static_cast<float>(i % 5);
    }
    for (int step = 0; step < 5; ++step) {
        for (int l = 0; l < cfg.num_layers; ++l) {
            full.store(l, k.data(), v.data(), 3);
            half.store(l, k.data(), v.data(), 3);
        }
        full.advance(3);
        half.advance(3);
    }
    EXPECT_TRUE(half.half());
    for (int l = 0; l < cfg.num_layers; ++l) {
        EXPECT_EQ(half.positions(l), full.positions(l));
        EXPECT_EQ(half.bytes_used(l) * 2, full.bytes_used(l));
        for (int s = 0; s < half.held(l); ++s)
            for (int h = 0; h < cfg.num_kv_heads; ++h)
                for (int i = 0; i < cfg.head_dim; ++i) {
                    // These values are exact in f16.
                    ASSERT_EQ(ops::f16_to_f32(half.keys16(l)[half.offset(l, s, h) + i]), full.keys(l)[full.offset(l, s, h) + i]);
                    ASSERT_EQ(ops::f16_to_f32(half.values16(l)[half.offset(l, s, h) + i]),
                              full.values(l)[full.offset(l, s, h) + i]);
                }
    }
}

TEST(KvCache, StaticCacheRefusesToOverflow) {
    const ModelConfig cfg = tiny_gemma2_config();
    KvCache cache(cfg, CacheKind::Static, 10);
    EXPECT_NO_THROW(cache.check_room(10));
    try {
        cache.check_room(11);
        FAIL() << "no error";
    } catch (const Error& e) {
        EXPECT_THAT(e.what(), testing::HasSubstr("the static cache holds at most 10 tokens"));
    }
    EXPECT_THROW(KvCache(cfg, CacheKind::Static, 0), Error);
    // Each layer's K and V, each KV head's 10 rows of 128 bytes in one 4 KB page.
    EXPECT_EQ(cache.bytes_allocated(), std::size_t{4} * 2 * cfg.num_kv_heads * 4096);
}

TEST(KvCache, BytesAllocatedCountsWholePages) {
    // 10,000 positions x 32 floats = 1,280,000 bytes per KV head's K or V rows: 313 pages of 4 KB.
    const ModelConfig cfg = tiny_gemma2_config();
    const KvCache large(cfg, CacheKind::Static, 10000);
    EXPECT_EQ(large.bytes_allocated(), std::size_t{4} * 2 * cfg.num_kv_heads * 313 * kKvPage);
    // 8,000 positions: 1,024,000 bytes, 250 whole pages.
    const KvCache small(cfg, CacheKind::Static, 8000);
    EXPECT_EQ(small.bytes_allocated(), std::size_t{4} * 2 * cfg.num_kv_heads * 1024000);
}

// Stores `count` tokens whose rows say where they came from: element i of head h's row for
// position p is p + h / 4 + i / 1024 (f16 and q8 keep it within a step of p + 1).
void store_numbered(KvCache& cache, const ModelConfig& cfg, int count) {
    std::vector<float> k(static_cast<std::size_t>(cfg.kv_dim()) * count), v(k.size());
    for (int t = 0; t < count; ++t)
        for (int h = 0; h < cfg.num_kv_heads; ++h)
            for (int i = 0; i < cfg.head_dim; ++i) {
                const std::size_t at = static_cast<std::size_t>(t) * cfg.kv_dim() + static_cast<std::size_t>(h) * cfg.head_dim + i;
                k[at] = static_cast<float>(cache.length() + t) + h / 4.0f + i / 1024.0f;
                v[at] = -k[at];
            }
    for (int l = 0; l < cfg.num_layers; ++l) cache.store(l, k.data(), v.data(), count);
    cache.advance(count);
}

void expect_numbered(const KvCache& cache, const ModelConfig& cfg, int layer, float tolerance) {
    const int n = cache.held(layer);
    std::vector<float> k(static_cast<std::size_t>(n) * cfg.head_dim), v(k.size());
    for (int h = 0; h < cfg.num_kv_heads; ++h) {
        cache.widen(layer, h, n, k.data(), v.data());
        for (int s = 0; s < n; ++s)
            for (int i = 0; i < cfg.head_dim; ++i) {
                const float want = static_cast<float>(s) + h / 4.0f + i / 1024.0f;
                const std::size_t at = static_cast<std::size_t>(s) * cfg.head_dim + i;
                ASSERT_NEAR(k[at], want, tolerance * (s + 1)) << "layer " << layer << " head " << h << " slot " << s;
                ASSERT_NEAR(v[at], -want, tolerance * (s + 1)) << "layer " << layer << " head " << h << " slot " << s;
            }
    }
}

TEST(KvCache, DynamicCacheGrowsWithinItsReservationWithoutMovingRows) {
    const ModelConfig cfg = tiny_gemma2_config();
    for (KvType type : {KvType::F32, KvType::F16, KvType::Q8}) {
        SCOPED_TRACE(kv_type_name(type));
        KvCache cache(cfg, CacheKind::Dynamic, 0, type);
        store_numbered(cache, cfg, 3);
        const void* first = type == KvType::F32 ? static_cast<const void*>(cache.keys(1))
                          : type == KvType::F16 ? static_cast<const void*>(cache.keys16(1))
                                                : static_cast<const void*>(cache.keys8(1));
        ASSERT_NE(first, nullptr);
        EXPECT_EQ(cache.allocated_slots(1), 64);
        EXPECT_EQ(cache.stride_slots(1), 2 * cfg.max_position_embeddings);
        const std::size_t small = cache.bytes_allocated();
        for (int i = 0; i < 100; ++i) store_numbered(cache, cfg, 1 + i % 7);
        EXPECT_EQ(cache.allocated_slots(1), 512);  // 3 + 397 tokens, the slots doubling from 64
        EXPECT_EQ(cache.stride_slots(1), 2 * cfg.max_position_embeddings);
        const void* now = type == KvType::F32 ? static_cast<const void*>(cache.keys(1))
                        : type == KvType::F16 ? static_cast<const void*>(cache.keys16(1))
                                              : static_cast<const void*>(cache.keys8(1));
        EXPECT_EQ(now, first);  // grown in place: no row moved
        EXPECT_GT(cache.bytes_allocated(), small);
        for (int l = 0; l < cfg.num_layers; ++l) expect_numbered(cache, cfg, l, type == KvType::F32 ? 0.0f : 1e-2f);
    }
}

TEST(KvCache, DynamicCachePastItsReservationMovesEveryRow) {
    ModelConfig cfg = tiny_gemma2_config();
    cfg.max_position_embeddings = 50;  // the first reservation: 100 slots
    for (KvType type : {KvType::F32, KvType::F16, KvType::Q8}) {
        SCOPED_TRACE(kv_type_name(type));
        KvCache cache(cfg, CacheKind::Dynamic, 0, type);
        store_numbered(cache, cfg, 3);
        store_numbered(cache, cfg, 87);
        EXPECT_EQ(cache.stride_slots(0), 100);
        EXPECT_EQ(cache.allocated_slots(0), 100);  // doubling 64 to 128, held to the reservation
        store_numbered(cache, cfg, 11);
        EXPECT_EQ(cache.stride_slots(0), 200);  // moved to a reservation twice as large
        for (int i = 0; i < 40; ++i) store_numbered(cache, cfg, 1 + i % 5);
        EXPECT_EQ(cache.stride_slots(0), 400);
        EXPECT_EQ(cache.allocated_slots(0), 400);
        EXPECT_EQ(cache.length(), 3 + 87 + 11 + 120);
        for (int l = 0; l < cfg.num_layers; ++l) expect_numbered(cache, cfg, l, type == KvType::F32 ? 0.0f : 1e-2f);
    }
}

// The process's anonymous memory in huge pages, in kB (0 where the kernel does not say).
long anon_huge_kb() {
    std::ifstream f("/proc/self/smaps_rollup");
    for (std::string line; std::getline(f, line);)
        if (line.rfind("AnonHugePages:", 0) == 0) return std::stol(line.substr(14));
    return 0;
}

// Rows that fill half of a 2 MB range move it to a huge page in place, two ranges per decode
// step (kv_array.h), and every row reads back as stored.
TEST(KvCache, FilledRangesBecomeHugePagesTwoAStep) {
    const ModelConfig cfg = tiny_gemma2_config();
    KvCache cache(cfg, CacheKind::Dynamic, 0, KvType::F32);
    // A head's K or V rows: 128 bytes a slot, 2 MB reserved (16,384 slots): half fills at 8,192.
    store_numbered(cache, cfg, 4000);
    ASSERT_EQ(static_cast<std::size_t>(cache.stride_slots(0)) * cfg.head_dim * sizeof(float), kHugePage);
    store_numbered(cache, cfg, 4191);
    const long before = anon_huge_kb();
    store_numbered(cache, cfg, 1);  // 16 ranges reach half: 4 layers x K, V x 2 heads
    const long first = anon_huge_kb() - before;
    if (first == 0) GTEST_SKIP() << "this kernel does not collapse ranges into huge pages (MADV_COLLAPSE)";
    EXPECT_EQ(first, 2 * 2048);
    for (int step = 2; step <= 9; ++step) {
        store_numbered(cache, cfg, 1);
        EXPECT_EQ(anon_huge_kb() - before, std::min(step, 8) * 2 * 2048) << "step " << step;
    }
    for (int l = 0; l < cfg.num_layers; ++l) expect_numbered(cache, cfg, l, 0.0f);
}

TEST(KvCache, StaticCacheErrorFromForward) {
    WP_REQUIRE_SHARED();
    auto m = Model::load(shared_dir() / "fixtures" / "tiny-qwen2");
    auto ctx = m->new_context(CacheKind::Static, 4);
    const std::vector<int> ids = {1, 2, 3};
    m->forward(*ctx, ids, LogitsMode::Last);
    EXPECT_THROW(m->forward(*ctx, ids, LogitsMode::Last), Error);
    EXPECT_EQ(ctx->cache.length(), 3);  // the failed call changed nothing
}

TEST(KvCache, DynamicTruncateAndContinue) {
    WP_REQUIRE_SHARED();
    auto m = Model::load(shared_dir() / "fixtures" / "tiny-qwen2");
    auto a = m->new_context(CacheKind::Dynamic);
    auto b = m->new_context(CacheKind::Dynamic);
    const std::vector<int> ids = {5, 6, 7, 8, 9};
    const std::vector<int> alt = {5, 6, 7, 100};
    m->forward(*a, ids, LogitsMode::Last);
    a->cache.truncate(3);
    auto la = m->forward(*a, std::span<const int>(alt).subspan(3), LogitsMode::Last);
    std::vector<float> va(la.begin(), la.end());
    auto lb = m->forward(*b, alt, LogitsMode::Last);
    EXPECT_LE(max_abs_diff(va.data(), lb.data(), va.size()), 1e-5f);
}

// A hybrid cache's ring layers go back after keep_for_rewind: every slot holds again the row of the
// position it held before the rewound tokens overwrote it (f32 and f16 rows, rewinds of every
// length the keep covered), and without a keep a rewind past the window is refused.
TEST(KvCache, RingLayersRewindWhatWasKept) {
    const ModelConfig cfg = tiny_gemma2_config();
    for (KvType type : {KvType::F32, KvType::F16, KvType::Q8}) {
        SCOPED_TRACE(kv_type_name(type));
        const std::size_t kd = static_cast<std::size_t>(cfg.kv_dim());
        std::vector<float> k(kd * 6), v(kd * 6);
        auto store = [&](KvCache& c, int count) {
            for (int i = 0; i < count; ++i)
                for (std::size_t e = 0; e < kd; ++e) {
                    k[i * kd + e] = static_cast<float>((c.length() + i) * 10 + e % 7);  // exact in f16
                    v[i * kd + e] = -k[i * kd + e];
                }
            for (int l = 0; l < cfg.num_layers; ++l) c.store(l, k.data(), v.data(), count);
            c.advance(count);
        };
        std::vector<float> wk, wv;
        auto row = [&](const KvCache& c, int l, int s, int h) {
            wk.resize(static_cast<std::size_t>(c.held(l)) * cfg.head_dim);
            wv.resize(wk.size());
            c.widen(l, h, c.held(l), wk.data(), wv.data());
            const std::size_t at = static_cast<std::size_t>(s) * cfg.head_dim;
            return std::make_pair(wk[at], wv[at]);
        };
        for (int keep = 1; keep <= 6; ++keep)
            for (int back = 0; back <= keep; ++back) {
                KvCache c(cfg, CacheKind::Hybrid, 0, type);
                store(c, 5);
                store(c, 6);  // 11 positions: the window of 8 has wrapped
                ASSERT_TRUE(c.keep_for_rewind(keep));
                store(c, keep);
                c.truncate(11 + keep - back);
                const std::int64_t n = c.length();
                for (int l = 0; l < cfg.num_layers; ++l)
                    for (int s = 0; s < c.held(l); ++s) {
                        const std::int64_t p = c.slot_position(l, s);
                        ASSERT_GE(p, cfg.layer_is_sliding(l) ? n - 8 : 0);
                        for (int h = 0; h < cfg.num_kv_heads; ++h) {
                            const auto [key, value] = row(c, l, s, h);
                            // q8: within half a step of the row's largest value (p * 10 + 6).
                            const double tol = type == KvType::Q8 ? (p * 10.0 + 6) / 254 : 0;
                            ASSERT_NEAR(key, static_cast<float>(p * 10 + (h * cfg.head_dim) % 7), tol)
                                << "layer " << l << " slot " << s << " after keeping " << keep << ", back " << back;
                            ASSERT_EQ(value, -key);
                        }
                    }
                store(c, 1);  // and it goes on from there
                EXPECT_EQ(c.length(), n + 1);
            }
        KvCache c(cfg, CacheKind::Hybrid, 0, type);
        store(c, 6);
        store(c, 6);
        EXPECT_THROW(c.truncate(11), Error);
        EXPECT_FALSE(c.keep_for_rewind(9)) << "a keep longer than the window cannot be undone";
    }
}

TEST(KvCache, Q8CacheHoldsRowsWithinHalfAStepAsRoundAsStoredSays) {
    const ModelConfig cfg = tiny_gemma2_config();
    KvCache full(cfg, CacheKind::Hybrid), q8(cfg, CacheKind::Hybrid, 0, KvType::Q8);
    const std::size_t kd = static_cast<std::size_t>(cfg.kv_dim());
    std::vector<float> k(kd * 3), v(k.size());
    std::mt19937 rng(3);
    std::normal_distribution<float> nd(0.0f, 2.0f);
    for (int step = 0; step < 5; ++step) {
        for (int l = 0; l < cfg.num_layers; ++l) {
            for (auto& x : k) x = nd(rng);
            for (auto& x : v) x = nd(rng);
            full.store(l, k.data(), v.data(), 3);
            q8.store(l, k.data(), v.data(), 3);
        }
        full.advance(3);
        q8.advance(3);
    }
    const int block = q8.q8_block();
    ASSERT_EQ(block, kv_q8_block(cfg.head_dim));
    ASSERT_EQ(cfg.head_dim % block, 0);
    EXPECT_EQ(q8.type(), KvType::Q8);
    EXPECT_FALSE(q8.half());
    for (int l = 0; l < cfg.num_layers; ++l) {
        // One byte per element and a 4-byte scale per block, against 4 bytes per element.
        EXPECT_EQ(q8.bytes_used(l) * 4 * block, full.bytes_used(l) * (block + 4));
        const std::size_t n = static_cast<std::size_t>(q8.held(l)) * cfg.head_dim;
        std::vector<float> fk(n), fv(n), qk(n), qv(n);
        for (int h = 0; h < cfg.num_kv_heads; ++h) {
            full.widen(l, h, full.held(l), fk.data(), fv.data());
            q8.widen(l, h, q8.held(l), qk.data(), qv.data());
            for (const auto& [exact, held] : {std::pair{&fk, &qk}, std::pair{&fv, &qv}})
                for (std::size_t b = 0; b < n; b += block) {
                    float amax = 0;
                    for (int i = 0; i < block; ++i) amax = std::max(amax, std::fabs((*exact)[b + i]));
                    std::vector<float> rounded(exact->begin() + b, exact->begin() + b + block);
                    q8.round_as_stored(rounded.data(), rounded.size());
                    for (int i = 0; i < block; ++i) {
                        ASSERT_NEAR((*held)[b + i], (*exact)[b + i], amax / 254 * 1.0001) << "layer " << l << " head " << h;
                        ASSERT_EQ((*held)[b + i], rounded[i]) << "round_as_stored rounds as the cache stores";
                    }
                }
        }
    }
}

TEST(KvCache, ParseKind) {
    EXPECT_EQ(parse_cache_kind("hybrid"), CacheKind::Hybrid);
    EXPECT_THROW(parse_cache_kind("ring"), Error);
    EXPECT_EQ(parse_kv_type("q8"), KvType::Q8);
    EXPECT_EQ(parse_kv_type("f16"), KvType::F16);
    EXPECT_THROW(parse_kv_type("q4"), Error);
}


}  // namespace
}  // namespace wp::test
