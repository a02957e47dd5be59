// Decode attention split across threads (DecodeSplit): each KV head's keys in parts, the parts'
// softmax merged by their log-sum-exp. Against one thread (no split) over the same cache, for
// every cache type, with parts whose keys are all masked.
#include <gtest/gtest.h>

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
                    if (mask.window && j <= past - mask.window) ASSERT_EQ(p, 0.0f) << "a hidden key";
                    sum += p;
                }
                EXPECT_NEAR(sum, 1.0, 1e-5);
            }
        }
    }
}

}  // namespace
}  // namespace wp::test
