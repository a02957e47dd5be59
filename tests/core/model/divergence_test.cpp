// Divergence of two variants on one text: a model against itself, against a copy with one
// embedding row changed (zero before the first position that reads the row, positive from it),
// the statistics against a direct computation from both models' logits, and the refusals.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>

#include "model/distribution.h"
#include "test_support.h"
#include "wp/error.h"
#include "wp/model/divergence.h"
#include "wp/tokenizer/tokenizer.h"

namespace wp::test {
namespace {

LoadOptions exact_options() {
    LoadOptions lo;
    lo.kernels.bf16_gemm = false;
    return lo;
}

std::vector<float> all_logits(const Model& m, const std::vector<int>& ids) {
    auto ctx = m.new_context();
    const auto l = m.forward(*ctx, ids, LogitsMode::All);
    return {l.begin(), l.end()};
}

TEST(Divergence, AModelAgainstItselfIsZero) {
    WP_REQUIRE_SHARED();
    for (const RefCase& rc : all_cases()) {
        const auto model = Model::load(rc.model_dir, {}, exact_options());
        const auto twin = Model::load(rc.model_dir, {}, exact_options());
        const std::vector<int> ids = rc.input_ids();
        for (const Model* other : {model.get(), twin.get()}) {
            const Divergence d = diverge(*model, *other, ids);
            ASSERT_EQ(d.positions.size(), ids.size() - 1);
            for (const TokenDivergence& t : d.positions) {
                EXPECT_EQ(t.kl, 0.0) << rc.name;
                EXPECT_TRUE(t.same_top);
                EXPECT_EQ(t.logprob_a, t.logprob_b);
            }
            EXPECT_EQ(d.summary.same_top, 1.0);
            EXPECT_EQ(d.summary.mean_kl, 0.0);
            EXPECT_EQ(d.summary.ppl_ratio, 1.0);
            EXPECT_EQ(d.top_ids_a, d.top_ids_b);
        }
    }
}

// Token `row`'s embedding moved: nothing before the first position holding that token can tell.
TEST(Divergence, OneChangedEmbeddingRowShowsFromItsFirstUse) {
    WP_REQUIRE_SHARED();
    const fs::path src = shared_dir() / "fixtures" / "tiny-qwen2";  // untied: the output layer stays
    TempDir copy;
    copy.copy_files_from(src);
    std::vector<StTensor> tensors = load_safetensors(src / "model.safetensors");
    const std::vector<int> ids{5, 17, 250, 9, 3, 250, 41, 8};
    const int row = 250, first_use = 2;
    for (StTensor& t : tensors)
        if (t.name == "model.embed_tokens.weight") {
            ASSERT_EQ(t.dtype, "F32");
            auto* w = reinterpret_cast<float*>(t.data.data()) + static_cast<std::size_t>(row) * t.shape[1];
            for (std::int64_t i = 0; i < t.shape[1]; ++i) w[i] += 0.25f;
        }
    write_bytes(copy.path() / "model.safetensors", make_safetensors(tensors));
    const auto a = Model::load(src, {}, exact_options());
    const auto b = Model::load(copy.path(), {}, exact_options());
    const Divergence d = diverge(*a, *b, ids);
    for (std::size_t t = 0; t < d.positions.size(); ++t) {
        if (static_cast<int>(t) < first_use) EXPECT_EQ(d.positions[t].kl, 0.0) << "position " << t;
        else EXPECT_GT(d.positions[t].kl, 1e-7) << "position " << t;
    }
}

// f32 against q8 of one folder: every figure against the two models' logits, computed here.
TEST(Divergence, StatisticsMatchADirectComputation) {
    WP_REQUIRE_SHARED();
    for (const RefCase& rc : all_cases()) {
        if (rc.name.find("seq40") == std::string::npos) continue;
        LoadOptions q8 = exact_options();
        q8.precision = Precision::Q8;
        const auto a = Model::load(rc.model_dir, {}, exact_options());
        const auto b = Model::load(rc.model_dir, {}, q8);
        const std::vector<int> ids = rc.input_ids();
        DivergenceOptions o;
        o.top_k = 3;
        const Divergence d = diverge(*a, *b, ids, o);
        // The positions diverge runs (the last token predicts nothing), in one pass as it does.
        const std::vector<int> read(ids.begin(), ids.end() - 1);
        const std::vector<float> la = all_logits(*a, read), lb = all_logits(*b, read);
        const int V = a->config().vocab_size;
        std::vector<double> kls;
        double sum_a = 0, sum_b = 0;
        int same = 0;
        for (std::size_t t = 0; t + 1 < ids.size(); ++t) {
            const auto pa = log_softmax(la.data() + t * V, V), pb = log_softmax(lb.data() + t * V, V);
            double kl = 0;
            int ta = 0, tb = 0;
            for (int i = 0; i < V; ++i) {
                kl += std::exp(pa[i]) * (pa[i] - pb[i]);
                if (pa[i] > pa[ta]) ta = i;
                if (pb[i] > pb[tb]) tb = i;
            }
            const TokenDivergence& row = d.positions[t];
            EXPECT_NEAR(row.kl, kl, 1e-9 + 1e-6 * kl) << rc.name << " position " << t;
            EXPECT_NEAR(row.logprob_a, pa[ids[t + 1]], 1e-9);
            EXPECT_NEAR(row.logprob_b, pb[ids[t + 1]], 1e-9);
            EXPECT_EQ(row.same_top, ta == tb);
            EXPECT_EQ(d.top_ids_a[t * 3], ta);
            EXPECT_EQ(d.top_ids_b[t * 3], tb);
            EXPECT_NEAR(d.top_probs_a[t * 3], std::exp(pa[ta]), 1e-6);
            kls.push_back(kl);
            sum_a += pa[ids[t + 1]];
            sum_b += pb[ids[t + 1]];
            same += ta == tb;
        }
        const double n = static_cast<double>(kls.size());
        double mean = 0;
        for (double k : kls) mean += k / n;
        std::sort(kls.begin(), kls.end());
        EXPECT_GT(mean, 0.0) << rc.name << ": q8 should move the distributions";
        EXPECT_NEAR(d.summary.mean_kl, mean, 1e-9 + 1e-6 * mean);
        EXPECT_NEAR(d.summary.max_kl, kls.back(), 1e-9 + 1e-6 * kls.back());
        EXPECT_NEAR(d.summary.same_top, same / n, 1e-12);
        EXPECT_NEAR(d.summary.ppl_a, std::exp(-sum_a / n), 1e-6 * d.summary.ppl_a);
        EXPECT_NEAR(d.summary.ppl_b, std::exp(-sum_b / n), 1e-6 * d.summary.ppl_b);
        EXPECT_NEAR(d.summary.ppl_ratio, d.summary.ppl_b / d.summary.ppl_a, 1e-12);
    }
}

// Past one 512-token pass and one readout slab, the cache carried between passes: every position
// against one forward pass of each model over the whole text.
TEST(Divergence, ALongTextAcrossPassesAndSlabs) {
    WP_REQUIRE_SHARED();
    const fs::path dir = shared_dir() / "fixtures" / "tiny-gemma2";
    LoadOptions q8 = exact_options();
    q8.precision = Precision::Q8;
    const auto a = Model::load(dir, {}, exact_options());
    const auto b = Model::load(dir, {}, q8);
    std::vector<int> ids(700);
    for (std::size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int>((i * 7919 + 13) % 1000);
    const Divergence d = diverge(*a, *b, ids);
    const std::vector<int> read(ids.begin(), ids.end() - 1);
    const std::vector<float> la = all_logits(*a, read), lb = all_logits(*b, read);
    const int V = a->config().vocab_size;
    for (std::size_t t = 0; t + 1 < ids.size(); ++t) {
        const auto pa = log_softmax(la.data() + t * V, V), pb = log_softmax(lb.data() + t * V, V);
        double kl = 0;
        for (int i = 0; i < V; ++i) kl += std::exp(pa[i]) * (pa[i] - pb[i]);
        EXPECT_NEAR(d.positions[t].kl, kl, 1e-6 + 1e-3 * kl) << "position " << t;
        EXPECT_NEAR(d.positions[t].logprob_a, pa[ids[t + 1]], 1e-4) << "position " << t;
        EXPECT_NEAR(d.positions[t].logprob_b, pb[ids[t + 1]], 1e-4) << "position " << t;
    }
}

TEST(Divergence, RowHelpers) {
    // Equal values keep the lower id first; the k largest, largest first.
    const float z[] = {1, 3, 2, 3, 0, 3};
    int ids[3];
    float values[3];
    top_k(z, 6, 3, ids, values);
    EXPECT_EQ(ids[0], 1);
    EXPECT_EQ(ids[1], 3);
    EXPECT_EQ(ids[2], 5);
    // A NaN in the logits is shown as a NaN KL, never as agreement.
    const float a[] = {0, 1, std::nanf("")}, b[] = {0, 1, 2};
    EXPECT_TRUE(std::isnan(pair_stats(a, b, 3).kl));
    EXPECT_EQ(pair_stats(b, b, 3).kl, 0.0);
    // Every row once, whatever the split; an exception on any part reaches the caller.
    std::vector<int> seen(37, 0);
    for_rows(37, 4, [&](int begin, int end) {
        for (int r = begin; r < end; ++r) ++seen[r];
    });
    EXPECT_EQ(std::count(seen.begin(), seen.end(), 1), 37);
    EXPECT_THROW(for_rows(37, 4, [](int begin, int) {
        if (begin > 0) throw Error("part");
    }), Error);
}

TEST(Divergence, SummaryPercentilesByNearestRank) {
    std::vector<TokenDivergence> rows(200);
    for (int i = 0; i < 200; ++i) rows[i].kl = 199 - i;  // 0 .. 199, reversed
    DivergenceSummary s = summarize_divergence(rows);
    EXPECT_EQ(s.tokens, 200);
    EXPECT_DOUBLE_EQ(s.median_kl, 99.5);
    EXPECT_DOUBLE_EQ(s.p99_kl, 197.0);  // rank ceil(0.99 * 200) = 198
    EXPECT_DOUBLE_EQ(s.max_kl, 199.0);
    EXPECT_DOUBLE_EQ(s.mean_kl, 99.5);
    rows.resize(3);
    s = summarize_divergence(rows);
    EXPECT_DOUBLE_EQ(s.median_kl, 198.0);
    EXPECT_EQ(summarize_divergence({}).tokens, 0);
}

TEST(Divergence, RefusesDifferentVocabulariesAndShortTexts) {
    WP_REQUIRE_SHARED();
    const auto gemma = Tokenizer::load(shared_dir() / "fixtures" / "tiny-gemma");
    const auto qwen = Tokenizer::load(shared_dir() / "fixtures" / "tiny-qwen2");
    const auto qwen_tied = Tokenizer::load(shared_dir() / "fixtures" / "tiny-qwen2-tied");
    EXPECT_NO_THROW(check_same_vocabulary(*qwen, *qwen_tied));
    EXPECT_NE(error_of([&] { check_same_vocabulary(*gemma, *qwen); }).find("tokenizers differ"), std::string::npos);
    const auto demo = Model::load(shared_dir() / "models" / "windowpane-demo-gemma2");
    const auto tiny = Model::load(shared_dir() / "fixtures" / "tiny-gemma2");
    EXPECT_NE(error_of([&] { diverge(*demo, *tiny, std::vector<int>{2, 3, 4}); }).find("vocabularies differ"),
              std::string::npos);
    EXPECT_NE(error_of([&] { diverge(*tiny, *tiny, std::vector<int>{2}); }).find("at least two tokens"), std::string::npos);
    // The last id is only read as the next token, never run: it is checked all the same.
    EXPECT_NE(error_of([&] { diverge(*tiny, *tiny, std::vector<int>{2, 3, 1000}); }).find("outside the vocabulary"),
              std::string::npos);
    std::atomic<bool> cancel{true};
    DivergenceOptions o;
    o.cancel = &cancel;
    EXPECT_THROW(diverge(*tiny, *tiny, std::vector<int>{2, 3, 4}, o), Cancelled);
}

}  // namespace
}  // namespace wp::test
