// Decode attention split across threads (DecodeSplit): each KV head's keys in parts, the parts'
// softmax merged by their log-sum-exp. Against one thread (no split) over the same cache, for
// every cache type, with parts whose keys are all masked.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "attention/self_attention.h"
#include "kernels/thread_pool.h"
#include "wp/attention/trace.h"
#include "wp/cache/kv_cache.h"

namespace wp::test {
namespace {

TEST(DecodeAttention, SplitContextEqualsOneThread) {
    ModelConfig c;
    c.num_layers = 1;
    c.num_heads = 6;
    c.num_kv_heads = 2;
    c.head_dim = 64;
    c.attn_scale = 0.125f;
    c.attn_softcap = 50.0f;
    constexpr int kPast = 1500;
    EXPECT_EQ(DecodeSplit(1, 2, 3, kPast + 1).units, 2);
    EXPECT_EQ(DecodeSplit(4, 4, 3, kPast + 1).units, 4);
    EXPECT_EQ(DecodeSplit(4, 2, 3, kPast + 1).parts, 2);
    EXPECT_EQ(DecodeSplit(2, 3, 3, kPast + 1).parts, 2) << "3 KV heads on 2 threads: 6 units share out evenly";
    for (int keys = 1; keys < 3000; keys += 7)
        for (int threads : {2, 3, 8, 64}) {
            const DecodeSplit s(threads, 1, 8, keys);
            ASSERT_LT((s.parts - 1) * s.part_keys, keys) << "an empty part at " << keys << " keys";
            ASSERT_GE(s.parts * s.part_keys, keys);
        }
    const DecodeSplit short_context(8, 1, 8, 300);
    EXPECT_EQ(short_context.parts, 1) << "too few keys to be worth parts";
    EXPECT_EQ(short_context.head_parts, 8) << "the query heads are split instead";
    EXPECT_EQ(DecodeSplit(2, 2, 7, 300).head_parts, 1);
    const int kd = c.kv_dim(), qd = c.q_dim();
    std::mt19937 rng(7);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    std::vector<float> k(static_cast<std::size_t>(kPast) * kd), v(k.size()), q(qd), kn(kd), vn(kd);
    for (auto* a : {&k, &v, &q, &kn, &vn})
        for (auto& x : *a) x = nd(rng);
    // A window of 700 hides the first 801 keys: of 3 parts of 501, the first entirely.
    // 200 cached keys: too few for parts, the query heads are split instead (3 per KV head on 6
    // threads).
    for (int past : {kPast, 200})
    for (MaskSpec mask : {MaskSpec{}, MaskSpec{true, 700}}) {
        c.layer_masks = {mask};
        for (KvType type : {KvType::F32, KvType::F16, KvType::Q8}) {
            SCOPED_TRACE(std::string(kv_type_name(type)) + (mask.window ? " window" : "") + " past " + std::to_string(past));
            KvCache cache(c, CacheKind::Dynamic, 0, type);
            cache.store(0, k.data(), v.data(), past);
            cache.advance(past);
            std::vector<float> rounded_k(kn), rounded_v(vn);  // as the forward pass gives them
            cache.round_as_stored(rounded_k.data(), rounded_k.size());
            cache.round_as_stored(rounded_v.data(), rounded_v.size());
            auto run = [&](int threads, std::vector<float>& out, AttentionTrace& trace) {
                ThreadPool pool(threads);
                AttentionScratch scratch;
                const KernelOptions kernels;
                out.assign(qd, -1.0f);
                decode_attention({c, cache, 0, past, 1, q.data(), rounded_k.data(), rounded_v.data(), out.data(), &trace, kernels},
                                 pool, scratch);
            };
            std::vector<float> one, split;
            AttentionTrace t1(1, c.num_heads, past + 1), ts(1, c.num_heads, past + 1);
            run(1, one, t1);
            const DecodeSplit six(6, 2, 3, past + 1);
            ASSERT_EQ(past == kPast ? six.parts : six.head_parts, 3);
            run(6, split, ts);

            for (int i = 0; i < qd; ++i) ASSERT_NEAR(split[i], one[i], 1e-5 * (1 + std::fabs(one[i]))) << i;
            for (int h = 0; h < c.num_heads; ++h) {
                double sum = 0;
                for (int j = 0; j <= past; ++j) {
                    const float p = ts.row(0, h, past)[j];
                    ASSERT_NEAR(p, t1.row(0, h, past)[j], 1e-6) << "head " << h << " key " << j;
                    if (mask.window && j <= past - mask.window) { ASSERT_EQ(p, 0.0f) << "a hidden key"; }
                    sum += p;
                }
                EXPECT_NEAR(sum, 1.0, 1e-5);
            }
        }
    }
}

// Over a q8 cache the queries are scored rounded to int8 in the cache's blocks: decode and prompt
// attention with int8_queries equal, within float rounding, the f32-query path given a query the
// test rounds itself (d = amax / 127, to the nearest), and differ from it given the query as it is.
TEST(DecodeAttention, Q8CacheScoresQueriesRoundedToInt8) {
    ModelConfig c;
    c.num_layers = 1;
    c.num_heads = 6;
    c.num_kv_heads = 2;
    c.head_dim = 128;  // blocks of 32: the integer kernel where the CPU has AVX-512 VNNI
    c.attn_scale = 0.09f;
    c.layer_masks = {MaskSpec{}};
    constexpr int kPast = 700, kNew = 3;
    const int kd = c.kv_dim(), qd = c.q_dim();
    std::mt19937 rng(11);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    std::vector<float> k(static_cast<std::size_t>(kPast) * kd), v(k.size()), q(static_cast<std::size_t>(kNew) * qd),
        kn(static_cast<std::size_t>(kNew) * kd), vn(kn.size());
    for (auto* a : {&k, &v, &q, &kn, &vn})
        for (auto& x : *a) x = 2.0f * nd(rng);
    KvCache cache(c, CacheKind::Dynamic, 0, KvType::Q8);
    ASSERT_EQ(cache.q8_block(), 32);
    cache.store(0, k.data(), v.data(), kPast);
    cache.advance(kPast);
    cache.round_as_stored(kn.data(), kn.size());
    cache.round_as_stored(vn.data(), vn.size());
    std::vector<float> rounded(q);
    for (std::size_t b = 0; b < rounded.size(); b += 32) {
        float amax = 0;
        for (std::size_t i = b; i < b + 32; ++i) amax = std::max(amax, std::fabs(rounded[i]));
        const float d = amax / 127.0f;
        for (std::size_t i = b; i < b + 32; ++i) rounded[i] = std::nearbyint(rounded[i] * (1.0f / d)) * d;
    }
    ThreadPool pool(2);
    auto run = [&](const std::vector<float>& query, bool int8_queries, int count) {
        KernelOptions kernels;
        kernels.int8_queries = int8_queries;
        AttentionScratch scratch;
        std::vector<float> out(static_cast<std::size_t>(count) * qd, -1.0f);
        const AttentionStep step{c, cache, 0, kPast, count, query.data(), kn.data(), vn.data(), out.data(), nullptr, kernels};
        if (count == 1) decode_attention(step, pool, scratch);
        else prompt_attention(step, pool, scratch);
        return out;
    };
    for (int count : {1, kNew}) {
        SCOPED_TRACE(count == 1 ? "decode" : "prompt");
        const auto as_scored = run(q, true, count);
        const auto reference = run(rounded, false, count);
        const auto unrounded = run(q, false, count);
        double moved = 0;
        for (std::size_t i = 0; i < as_scored.size(); ++i) {
            ASSERT_NEAR(as_scored[i], reference[i], 2e-5 * (1 + std::fabs(reference[i]))) << i;
            moved = std::max(moved, static_cast<double>(std::fabs(unrounded[i] - reference[i])));
        }
        EXPECT_GT(moved, 1e-4) << "rounding the queries changed nothing: the test would not see it skipped";
    }
}

}  // namespace
}  // namespace wp::test
