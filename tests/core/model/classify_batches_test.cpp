// classify_sequences (packed forward passes) against classify_sequence one input at a time, for
// every sequence-classification model under ../shared/heads (held-out ones too), texts of mixed
// lengths, batches that split anywhere, every precision.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "test_support.h"
#include "wp/model/model.h"
#include "wp/model/task_heads.h"

namespace wp::test {
namespace {

std::vector<fs::path> sequence_models() {
    std::vector<fs::path> out;
    std::error_code ec;
    for (const auto& m : fs::directory_iterator(shared_dir() / "heads", ec)) {
        if (!fs::exists(m.path() / "config.json")) continue;
        const auto cfg = nlohmann::json::parse(read_text(m.path() / "config.json"));
        if (cfg.contains("architectures") && cfg["architectures"].dump().find("ForSequenceClassification") != std::string::npos)
            out.push_back(m.path());
    }
    std::sort(out.begin(), out.end());
    return out;
}

// Inputs of 1 to 40 tokens, some ending in the pad token (pooled before it).
std::vector<std::vector<int>> mixed_inputs(const ModelConfig& c) {
    std::vector<std::vector<int>> out;
    std::uint64_t x = 12345;
    auto next = [&] { return x = x * 6364136223846793005ull + 1442695040888963407ull, static_cast<int>(x >> 33); };
    for (int len : {7, 1, 33, 12, 40, 2, 19, 5, 28, 3, 16, 9}) {
        std::vector<int> ids;
        for (int i = 0; i < len; ++i) ids.push_back(3 + next() % (c.vocab_size - 3));
        if (c.pad_token_id && len > 4 && len % 2 == 0)
            for (int i = 0; i < 3; ++i) ids[static_cast<std::size_t>(len - 1 - i)] = *c.pad_token_id;
        out.push_back(ids);
    }
    return out;
}

TEST(ClassifyBatches, EqualOneAtATime) {
    WP_REQUIRE_SHARED();
    const std::vector<fs::path> models = sequence_models();
    if (models.empty()) {
        if (in_ci()) FAIL() << "no sequence-classification fixtures";
        GTEST_SKIP() << "no sequence-classification fixtures";
    }
    for (const fs::path& dir : models) {
        for (Precision p : {Precision::F32, Precision::BF16, Precision::Q8, Precision::Q4}) {
            SCOPED_TRACE(dir.filename().string() + " " + precision_name(p));
            LoadOptions o;
            o.precision = p;
            // Rounded precisions round a pass's inputs only when it has more rows than the decode
            // kernels take; with that limit at one row, every input of two or more tokens is
            // computed the same way alone and packed, and must agree as closely as f32 does.
            if (p != Precision::F32) o.kernels.few_rows_limit = 1;
            const auto model = Model::load(dir, {}, o);
            const std::vector<std::vector<int>> inputs = mixed_inputs(model->config());
            std::vector<SequenceClassification> alone;
            for (const auto& ids : inputs) alone.push_back(classify_sequence(*model, ids));
            // Lengths 7 1 33 12 40 2 19 5 28 3 16 9. 1 token a pass: in input order; 45: passes
            // filled from later inputs that fit, [7 1 33 2] [12 19 5 3] [40] [28 16] [9]; 10000:
            // all in one pass, in input order.
            const std::vector<std::size_t> in_order = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
            const std::vector<std::size_t> filled = {0, 1, 2, 5, 3, 6, 7, 9, 4, 8, 10, 11};
            for (const auto& [batch, order] : {std::pair{1, in_order}, {45, filled}, {10000, in_order}}) {
                std::vector<SequenceClassification> got(inputs.size());
                std::vector<std::size_t> reported;
                classify_sequences(*model, inputs, batch, [&](std::size_t input, SequenceClassification&& r) {
                    reported.push_back(input);
                    got.at(input) = std::move(r);
                    return true;
                });
                EXPECT_EQ(order, reported) << "batch " << batch;
                for (std::size_t i = 0; i < inputs.size(); ++i) {
                    EXPECT_EQ(alone[i].pooled_index, got[i].pooled_index) << i;
                    if (p == Precision::F32 || inputs[i].size() > 1) { EXPECT_EQ(alone[i].label, got[i].label) << i; }
                    // A one-token input alone takes the decode kernels (unrounded input): the body's
                    // rounding apart (bounds of TaskHeads.EveryPrecisionRunsTheBody).
                    const double bound = p == Precision::F32 || inputs[i].size() > 1 || batch == 1 ? 1e-4
                                         : p == Precision::Q4                                    ? 4.0
                                                                                                 : 0.15;
                    for (std::size_t j = 0; j < got[i].logits.size(); ++j)
                        EXPECT_NEAR(alone[i].logits[j], got[i].logits[j], bound) << "input " << i << " batch " << batch;
                }
            }
        }
    }
}

TEST(ClassifyBatches, StopsWhenAskedAndRefusesBadInputs) {
    WP_REQUIRE_SHARED();
    const fs::path dir = shared_dir() / "heads" / "tiny-qwen2-seqcls";
    if (!fs::exists(dir / "config.json")) GTEST_SKIP() << "no head fixtures";
    const auto model = Model::load(dir);
    const std::vector<std::vector<int>> inputs(10, std::vector<int>{5, 6, 7});
    std::size_t results = 0;
    classify_sequences(*model, inputs, 6, [&](std::size_t, SequenceClassification&&) { return ++results < 4; });
    EXPECT_EQ(4u, results);  // two passes of two inputs, then it stops
    EXPECT_THAT(error_of([&] { classify_sequences(*model, std::vector<std::vector<int>>{{5}, {}}); }),
                testing::HasSubstr("input 2 has no tokens"));
    const std::vector<std::vector<int>> too_long{std::vector<int>(
        static_cast<std::size_t>(model->config().max_position_embeddings) + 1, 5)};
    EXPECT_THAT(error_of([&] { classify_sequences(*model, too_long); }), testing::HasSubstr("the model takes at most"));
    const auto other = Model::load(shared_dir() / "heads" / "tiny-qwen2-tokcls");
    EXPECT_THAT(error_of([&] { classify_sequences(*other, inputs); }), testing::HasSubstr("not sequence-classification"));
}

TEST(ClassifyBatches, ForwardPackedChecksItsArguments) {
    WP_REQUIRE_SHARED();
    const fs::path dir = shared_dir() / "heads" / "tiny-qwen2-seqcls";
    if (!fs::exists(dir / "config.json")) GTEST_SKIP() << "no head fixtures";
    const auto model = Model::load(dir);
    auto ctx = model->new_context();
    const std::vector<int> ids{5, 6, 7};
    EXPECT_THAT(error_of([&] { model->forward_packed(*ctx, ids, std::vector<int>{1, 1}); }),
                testing::HasSubstr("add up to 2"));
    EXPECT_THAT(error_of([&] { model->forward_packed(*ctx, ids, std::vector<int>{3, 0}); }),
                testing::HasSubstr("no tokens"));
    model->forward(*ctx, ids, LogitsMode::Last);
    EXPECT_THAT(error_of([&] { model->forward_packed(*ctx, ids, std::vector<int>{3}); }),
                testing::HasSubstr("not empty"));
}

}  // namespace
}  // namespace wp::test
