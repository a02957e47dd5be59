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
    EXPECT_EQ(DecodeSplit(1, 2, kPast + 1).parts, 1);
    EXPECT_EQ(DecodeSplit(4, 4, kPast + 1).parts, 1);
    EXPECT_EQ(DecodeSplit(4, 2, kPast + 1).parts, 2);
    EXPECT_EQ(DecodeSplit(2, 3, kPast + 1).parts, 2) << "3 KV heads on 2 threads: 6 units share out evenly";
    EXPECT_EQ(DecodeSplit(8, 1, 300).parts, 1) << "too few keys to be worth parts";
    const int kd = c.kv_dim(), qd = c.q_dim();
    std::mt19937 rng(7);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    std::vector<float> k(static_cast<std::size_t>(kPast) * kd), v(k.size()), q(qd), kn(kd), vn(kd);
    for (auto* a : {&k, &v, &q, &kn, &vn})
        for (auto& x : *a) x = nd(rng);
    // A window of 700 hides the first 801 keys: of 3 parts of 501, the first entirely.
    for (MaskSpec mask : {MaskSpec{}, MaskSpec{true, 700}}) {
        c.layer_masks = {mask};
        for (KvType type : {KvType::F32, KvType::F16, KvType::Q8}) {
            SCOPED_TRACE(std::string(kv_type_name(type)) + (mask.window ? " window" : ""));
            KvCache cache(c, CacheKind::Dynamic, 0, type);
            cache.store(0, k.data(), v.data(), kPast);
            cache.advance(kPast);
            std::vector<float> rounded_k(kn), rounded_v(vn);  // as the forward pass gives them
            cache.round_as_stored(rounded_k.data(), rounded_k.size());
            cache.round_as_stored(rounded_v.data(), rounded_v.size());
            auto run = [&](int threads, std::vector<float>& out, AttentionTrace& trace) {
                ThreadPool pool(threads);
                AttentionScratch scratch;
                const KernelOptions kernels;
                out.assign(qd, -1.0f);
                decode_attention({c, cache, 0, kPast, 1, q.data(), rounded_k.data(), rounded_v.data(), out.data(), &trace, kernels},
                                 pool, scratch);
            };
            std::vector<float> one, split;
            AttentionTrace t1(1, c.num_heads, kPast + 1), ts(1, c.num_heads, kPast + 1);
            run(1, one, t1);
            ASSERT_EQ(DecodeSplit(6, 2, kPast + 1).parts, 3);
            run(6, split, ts);
            for (int i = 0; i < qd; ++i) ASSERT_NEAR(split[i], one[i], 1e-5 * (1 + std::fabs(one[i]))) << i;
            for (int h = 0; h < c.num_heads; ++h) {
                double sum = 0;
                for (int j = 0; j <= kPast; ++j) {
                    const float p = ts.row(0, h, kPast)[j];
                    ASSERT_NEAR(p, t1.row(0, h, kPast)[j], 1e-6) << "head " << h << " key " << j;
                    if (mask.window && j <= kPast - mask.window) ASSERT_EQ(p, 0.0f) << "a hidden key";
                    sum += p;
                }
                EXPECT_NEAR(sum, 1.0, 1e-5);
            }
        }
    }
}

}  // namespace
}  // namespace wp::test
