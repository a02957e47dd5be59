// Every reference case of shared/fixtures: logits, cached decoding, greedy continuations,
// attention probabilities and masks, compared with the trusted references.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <memory>

#include "kernels/kernel_choice.h"
#include "test_support.h"
#include "wp/generate/generator.h"
#include "kernels/qmatrix.h"
#include "wp/error.h"
#include "wp/model/model.h"

namespace wp::test {
namespace {

constexpr float kLogitTol = 1e-4f;
constexpr float kAttnTol = 1e-5f;

const std::vector<RefCase>& cases() {
    static const std::vector<RefCase> c = all_cases();
    return c;
}

// The references are computed in f32 (bf16 folders: their weights widened), so bf16 weights run
// without the bf16 product, which also rounds activations to bf16; precision_test.cpp bounds that
// path on the same cases.
LoadOptions exact_options() {
    LoadOptions lo;
    lo.kernels.bf16_gemm = false;
    return lo;
}

const Model& model_for(const RefCase& rc) {
    static std::map<fs::path, std::unique_ptr<Model>> cache;
    auto& m = cache[rc.model_dir];
    if (!m) m = Model::load(rc.model_dir, {}, exact_options());
    return *m;
}

std::string case_label(const testing::TestParamInfo<int>& info) {
    std::string s = cases()[info.param].name;
    for (char& ch : s)
        if (!isalnum(static_cast<unsigned char>(ch))) ch = '_';
    return s;
}

std::vector<int> case_indices() {
    std::vector<int> v(cases().size());
    for (std::size_t i = 0; i < v.size(); ++i) v[i] = static_cast<int>(i);
    return v;
}

std::unique_ptr<Context> context_for(const Model& m, CacheKind kind, std::int64_t need) {
    return m.new_context(kind, kind == CacheKind::Static ? need : 0);
}

const CacheKind kAllKinds[] = {CacheKind::Dynamic, CacheKind::Static, CacheKind::Hybrid};

class RefCaseTest : public testing::TestWithParam<int> {
protected:
    const RefCase& rc() const { return cases()[GetParam()]; }
};

TEST(Fixtures, ArePresent) {
    WP_REQUIRE_SHARED();
    EXPECT_GE(cases().size(), 15u) << "expected the reference cases of shared/fixtures";
}

TEST_P(RefCaseTest, AllPositionLogitsInOneBatch) {
    const Model& m = model_for(rc());
    const auto ids = rc().input_ids();
    const auto ref = rc().floats("logits_file");
    const std::size_t V = m.config().vocab_size;
    ASSERT_EQ(ref.size(), ids.size() * V);
    for (CacheKind kind : kAllKinds) {
        SCOPED_TRACE(cache_kind_name(kind));
        auto ctx = context_for(m, kind, static_cast<std::int64_t>(ids.size()));
        auto logits = m.forward(*ctx, ids, LogitsMode::All);
        ASSERT_EQ(logits.size(), ref.size());
        EXPECT_LE(max_abs_diff(logits.data(), ref.data(), ref.size()), kLogitTol);
    }
}

// Feeds the prompt in the given chunk sizes (cycled) and compares each chunk's logits.
void check_chunked(const Model& m, const RefCase& rc, CacheKind kind, const std::vector<int>& sizes) {
    const auto ids = rc.input_ids();
    const auto ref = rc.floats("logits_file");
    const std::size_t V = m.config().vocab_size;
    auto ctx = context_for(m, kind, static_cast<std::int64_t>(ids.size()));
    std::size_t pos = 0;
    for (std::size_t i = 0; pos < ids.size(); ++i) {
        const std::size_t n = std::min<std::size_t>(sizes[i % sizes.size()], ids.size() - pos);
        auto logits = m.forward(*ctx, std::span<const int>(ids).subspan(pos, n), LogitsMode::All);
        ASSERT_EQ(logits.size(), n * V);
        EXPECT_LE(max_abs_diff(logits.data(), ref.data() + pos * V, n * V), kLogitTol)
            << "chunk at position " << pos << " of " << n << " tokens";
        pos += n;
    }
    EXPECT_EQ(ctx->cache.length(), static_cast<std::int64_t>(ids.size()));
}

TEST_P(RefCaseTest, TokenByTokenThroughEveryCache) {
    const Model& m = model_for(rc());
    for (CacheKind kind : kAllKinds) {
        SCOPED_TRACE(cache_kind_name(kind));
        check_chunked(m, rc(), kind, {1});
    }
}

TEST_P(RefCaseTest, UnevenChunksThroughEveryCache) {
    const Model& m = model_for(rc());
    // Chunks smaller than, equal to and larger than Gemma2's window of 8, crossing it unevenly.
    for (CacheKind kind : kAllKinds) {
        SCOPED_TRACE(cache_kind_name(kind));
        check_chunked(m, rc(), kind, {3, 1, 5, 2, 9, 4});
        check_chunked(m, rc(), kind, {11, 7});
    }
}

TEST_P(RefCaseTest, GreedyContinuationThroughEveryCache) {
    const Model& m = model_for(rc());
    const auto ids = rc().input_ids();
    const auto want = rc().greedy_tokens();
    const auto ref = rc().floats("greedy_logits_file");
    const std::size_t V = m.config().vocab_size;
    ASSERT_EQ(ref.size(), want.size() * V);
    for (CacheKind kind : kAllKinds) {
        SCOPED_TRACE(cache_kind_name(kind));
        auto ctx = context_for(m, kind, static_cast<std::int64_t>(ids.size() + want.size()));
        GenerateOptions opts;
        opts.max_new_tokens = static_cast<int>(want.size());
        opts.eos_ids = std::vector<int>{};  // the references do not stop at eos
        std::vector<std::vector<float>> step_logits;
        // Capture the logits each token was chosen from: recompute via a parallel context.
        auto shadow = context_for(m, kind, static_cast<std::int64_t>(ids.size() + want.size()));
        auto last = m.forward(*shadow, ids, LogitsMode::Last);
        step_logits.emplace_back(last.begin(), last.end());
        opts.on_token = [&](const GeneratedToken& t) {
            const int one[1] = {t.id};
            auto l = m.forward(*shadow, one, LogitsMode::Last);
            step_logits.emplace_back(l.begin(), l.end());
            return true;
        };
        const GenerateResult r = generate(m, *ctx, ids, opts);
        EXPECT_EQ(r.ids(), want);
        EXPECT_EQ(r.reason, StopReason::MaxTokens);
        for (std::size_t s = 0; s < want.size(); ++s)
            EXPECT_LE(max_abs_diff(step_logits[s].data(), ref.data() + s * V, V), kLogitTol) << "step " << s;
    }
}

TEST_P(RefCaseTest, MasksEqualReference) {
    const Model& m = model_for(rc());
    const auto masks = rc().bytes("masks_file");
    const auto shape = rc().meta.at("masks_shape").get<std::vector<int>>();
    const int L = shape[0], T = shape[1];
    ASSERT_EQ(L, m.config().num_layers);
    for (int l = 0; l < L; ++l)
        for (int q = 0; q < T; ++q)
            for (int k = 0; k < T; ++k)
                ASSERT_EQ(m.config().layer_masks[l].allows(q, k), masks[(static_cast<std::size_t>(l) * T + q) * T + k] != 0)
                    << "layer " << l << " query " << q << " key " << k;
}

TEST_P(RefCaseTest, AttentionProbabilitiesEqualReference) {
    const auto ids = rc().input_ids();
    const auto ref = rc().floats("attn_file");
    const int T = static_cast<int>(ids.size());
    // With the AVX-512 kernels where the CPU has them, and with the AVX2 ones.
    std::vector<bool> sets = {false};
    if (avx512_decode_kernels(KernelOptions{})) sets.push_back(true);
    for (bool avx512 : sets) {
    LoadOptions lo = exact_options();
    lo.kernels.avx512 = avx512;
    const auto loaded = Model::load(rc().model_dir, {}, lo);
    const Model& m = *loaded;
    const ModelConfig& c = m.config();
    ASSERT_EQ(ref.size(), static_cast<std::size_t>(c.num_layers) * c.num_heads * T * T);
    for (CacheKind kind : kAllKinds) {
        SCOPED_TRACE(std::string(cache_kind_name(kind)) + (avx512 ? " AVX-512" : " AVX2"));
        // Recorded in one batch, in chunks of 5 (prompt attention over cached keys) and token
        // by token (the ring buffer reorders keys).
        for (int chunk : {T, 5, 1}) {
            AttentionTrace trace(c.num_layers, c.num_heads, T);
            auto ctx = context_for(m, kind, T);
            for (int p = 0; p < T; p += chunk)
                m.forward(*ctx, std::span<const int>(ids).subspan(p, std::min(chunk, T - p)), LogitsMode::Last, &trace);
            EXPECT_LE(max_abs_diff(trace.data().data(), ref.data(), ref.size()), kAttnTol) << "chunk " << chunk;
        }
    }
    }
}

// The forward pass applies exactly the mask the config reports: a probability is zero iff the
// mask function forbids the cell (soft-capped scores cannot underflow to zero).
TEST_P(RefCaseTest, ForwardPassAppliesTheReportedMask) {
    const Model& m = model_for(rc());
    const auto ids = rc().input_ids();
    const int T = static_cast<int>(ids.size());
    const ModelConfig& c = m.config();
    AttentionTrace trace(c.num_layers, c.num_heads, T);
    auto ctx = m.new_context();
    m.forward(*ctx, ids, LogitsMode::Last, &trace);
    for (int l = 0; l < c.num_layers; ++l)
        for (int h = 0; h < c.num_heads; ++h)
            for (int q = 0; q < T; ++q)
                for (int k = 0; k < T; ++k)
                    ASSERT_EQ(trace.at(l, h, q, k) > 0.0f, c.layer_masks[l].allows(q, k))
                        << "layer " << l << " head " << h << " query " << q << " key " << k;
}

TEST_P(RefCaseTest, TraceOfOneLayerMatchesTheFullTrace) {
    const Model& m = model_for(rc());
    const auto ids = rc().input_ids();
    const int T = static_cast<int>(ids.size());
    const ModelConfig& c = m.config();
    const int layer = c.num_layers - 1;
    std::vector<bool> only(c.num_layers, false);
    only[layer] = true;
    AttentionTrace one(only, c.num_heads, T);
    auto ctx = m.new_context();
    m.forward(*ctx, ids, LogitsMode::Last, &one);
    const auto ref = rc().floats("attn_file");
    const std::size_t per_layer = static_cast<std::size_t>(c.num_heads) * T * T;
    EXPECT_EQ(one.data().size(), per_layer);
    EXPECT_FALSE(one.records(0));
    EXPECT_LE(max_abs_diff(one.layer_data(layer), ref.data() + layer * per_layer, per_layer), kAttnTol);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, RefCaseTest, testing::ValuesIn(case_indices()), case_label);
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(RefCaseTest);

// A chunk much longer than Gemma2's window of 8: prompt attention then starts a unit of rows at
// the first key block inside the window instead of at key 0 (the fixtures' prompts are too short
// to reach that). Its logits and probabilities must equal decode attention's, token by token,
// which scores every held key; with the AVX-512 kernels (keys in 32-key blocks) and the AVX2 ones,
// in every cache, the chunk starting at 0 and after cached keys.
TEST(Forward, LongChunksOnSlidingLayersEqualTokenByToken) {
    WP_REQUIRE_SHARED();
    const fs::path dir = shared_dir() / "fixtures" / "tiny-gemma2";
    constexpr int T = 150;
    std::vector<int> ids(T);
    for (int i = 0; i < T; ++i) ids[i] = 2 + (i * 37 + i * i) % 997;
    std::vector<bool> sets = {false};
    if (avx512_decode_kernels(KernelOptions{})) sets.push_back(true);
    for (bool avx512 : sets) {
        LoadOptions lo = exact_options();
        lo.kernels.avx512 = avx512;
        const auto m = Model::load(dir, {}, lo);
        const ModelConfig& c = m->config();
        ASSERT_EQ(c.layer_masks[0].window, 8);
        for (CacheKind kind : kAllKinds) {
            SCOPED_TRACE(std::string(cache_kind_name(kind)) + (avx512 ? " AVX-512" : " AVX2"));
            AttentionTrace want_trace(c.num_layers, c.num_heads, T);
            std::vector<float> want;
            {
                auto ctx = context_for(*m, kind, T);
                for (int p = 0; p < T; ++p) {
                    auto l = m->forward(*ctx, std::span<const int>(ids).subspan(p, 1), LogitsMode::Last, &want_trace);
                    want.insert(want.end(), l.begin(), l.end());
                }
            }
            for (int first : {0, 13}) {  // a first chunk of 13 leaves keys in the cache
                AttentionTrace trace(c.num_layers, c.num_heads, T);
                auto ctx = context_for(*m, kind, T);
                std::vector<float> got;
                if (first > 0) {
                    auto l = m->forward(*ctx, std::span<const int>(ids).subspan(0, first), LogitsMode::All, &trace);
                    got.insert(got.end(), l.begin(), l.end());
                }
                auto l = m->forward(*ctx, std::span<const int>(ids).subspan(first), LogitsMode::All, &trace);
                got.insert(got.end(), l.begin(), l.end());
                ASSERT_EQ(got.size(), want.size());
                EXPECT_LE(max_abs_diff(got.data(), want.data(), want.size()), kLogitTol) << "first chunk " << first;
                EXPECT_LE(max_abs_diff(trace.data().data(), want_trace.data().data(), want_trace.data().size()), kAttnTol)
                    << "first chunk " << first;
            }
        }
    }
}

// With fewer KV heads than threads, decode attention splits each head's keys across the threads
// and merges the parts' softmax (DecodeSplit): the logits and the recorded probabilities must be
// those of one thread, with whole parts masked out (gemma2's sliding layers in a dynamic cache
// hide every key before the window) and on ring layers (hybrid). An f32 cache: f16 and q8 caches
// round each layer's new rows, which turns the parts' different summation order (1e-7) into a
// rounding step now and then; their kernels are compared directly in attention_kernels_test.
TEST(Forward, DecodeSplitAcrossThreadsEqualsOneThread) {
    WP_REQUIRE_SHARED();
    constexpr int T = 1100;  // 4 parts of at least DecodeSplit::kMinKeys (256) from 1,024 keys on
    std::vector<int> ids(T);
    for (int i = 0; i < T; ++i) ids[i] = 2 + (i * 37 + i * i) % 997;
    for (const char* name : {"tiny-gemma", "tiny-gemma2"}) {
        const fs::path dir = shared_dir() / "fixtures" / name;
        for (KvType kv : {KvType::F32}) {
            LoadOptions one = exact_options(), four = exact_options();
            one.threads = 1;
            four.threads = 4;
            one.kv_cache = four.kv_cache = kv;
            const auto m1 = Model::load(dir, {}, one);
            const auto m4 = Model::load(dir, {}, four);
            const ModelConfig& c = m1->config();
            ASSERT_LT(c.num_kv_heads, 4) << "the split needs fewer KV heads than threads";
            for (CacheKind kind : {CacheKind::Dynamic, CacheKind::Hybrid}) {
                SCOPED_TRACE(std::string(name) + " " + kv_type_name(kv) + " " + cache_kind_name(kind));
                AttentionTrace t1(c.num_layers, c.num_heads, T), t4(c.num_layers, c.num_heads, T);
                auto c1 = m1->new_context(kind), c4 = m4->new_context(kind);
                float worst = 0;
                for (int p = 0; p < T; ++p) {
                    const auto span = std::span<const int>(ids).subspan(p, 1);
                    auto l1 = m1->forward(*c1, span, LogitsMode::Last, &t1);
                    const std::vector<float> a(l1.begin(), l1.end());
                    auto l4 = m4->forward(*c4, span, LogitsMode::Last, &t4);
                    worst = std::max(worst, max_abs_diff(a.data(), l4.data(), a.size()));
                }
                EXPECT_LE(worst, kLogitTol);
                EXPECT_LE(max_abs_diff(t1.data().data(), t4.data().data(), t1.data().size()), kAttnTol);
            }
        }
    }
}

TEST(Forward, RejectsTokensOutsideTheVocabulary) {
    WP_REQUIRE_SHARED();
    auto m = Model::load(shared_dir() / "fixtures" / "tiny-gemma");
    auto ctx = m->new_context();
    const std::vector<int> ids = {2, 1000};
    try {
        m->forward(*ctx, ids, LogitsMode::Last);
        FAIL() << "no error";
    } catch (const Error& e) {
        EXPECT_THAT(e.what(), testing::HasSubstr("token id 1000 is outside the vocabulary (0..999)"));
    }
}

}  // namespace
}  // namespace wp::test
