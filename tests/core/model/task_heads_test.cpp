// Task heads against ../shared/heads (float64 references from an independent implementation of
// transformers' modeling_layers.py): logits within 1e-4 in f32, pooled index and labels exact,
// scores within 1e-5; malformed head checkpoints give one-line errors naming the problem.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>

#include "test_support.h"
#include "wp/error.h"
#include "wp/generate/chat_session.h"
#include "wp/generate/generator.h"
#include "wp/model/model.h"
#include "wp/model/task_heads.h"

namespace wp::test {
namespace {

fs::path heads_dir() { return shared_dir() / "heads"; }

std::vector<fs::path> head_cases() {
    std::vector<fs::path> out;
    std::error_code ec;
    for (const auto& m : fs::directory_iterator(heads_dir(), ec))
        for (const auto& r : fs::directory_iterator(m.path() / "reference", ec))
            if (r.path().extension() == ".json") out.push_back(r.path());
    std::sort(out.begin(), out.end());
    return out;
}

void expect_close(const nlohmann::json& want, const float* got, std::size_t n, const std::string& what) {
    ASSERT_EQ(want.size(), n) << what;
    for (std::size_t i = 0; i < n; ++i) EXPECT_NEAR(want[i].get<double>(), got[i], 1e-4) << what << " [" << i << "]";
}

TEST(TaskHeads, MatchTheReferences) {
    const std::vector<fs::path> cases = head_cases();
    if (cases.empty()) {
        if (in_ci()) FAIL() << "no head fixtures under " << heads_dir();
        GTEST_SKIP() << "no head fixtures under " << heads_dir();
    }
    for (const fs::path& file : cases) {
        SCOPED_TRACE(file.string());
        const nlohmann::json ref = nlohmann::json::parse(read_text(file));
        const auto model = Model::load(file.parent_path().parent_path());
        const std::vector<int> ids = ref["input_ids"].get<std::vector<int>>();
        const std::string task = ref["task"];
        EXPECT_EQ(task, head_name(model->config().head));
        if (task == "sequence-classification") {
            const SequenceClassification r = classify_sequence(*model, ids);
            EXPECT_EQ(ref["pooled_index"].get<int>(), r.pooled_index);
            expect_close(ref["logits"], r.logits.data(), r.logits.size(), "logits");
            if (ref.contains("label")) { EXPECT_EQ(ref["label"].get<std::string>(), r.label); }
            EXPECT_NEAR(ref["score"].get<double>(), r.score, 1e-5);
        } else if (task == "token-classification") {
            const TokenClassification r = classify_tokens(*model, ids);
            std::vector<float> want_flat;
            for (const auto& row : ref["logits"])
                for (const auto& v : row) want_flat.push_back(v.get<float>());
            ASSERT_EQ(want_flat.size(), r.logits.size());
            for (std::size_t i = 0; i < want_flat.size(); ++i) EXPECT_NEAR(want_flat[i], r.logits[i], 1e-4) << i;
            EXPECT_EQ(ref["labels"].get<std::vector<std::string>>(), r.labels);
        } else {
            ASSERT_EQ("question-answering", task);
            const QuestionAnsweringLogits r = question_answering_logits(*model, ids);
            expect_close(ref["start_logits"], r.start.data(), r.start.size(), "start");
            expect_close(ref["end_logits"], r.end.data(), r.end.size(), "end");
        }
    }
}

// The body in every precision; the head stays f32, so q8/q4 differ only by the body's rounding
// (bounds as in precision_test.cpp: these random fixtures amplify it, q4 by up to a few logits).
TEST(TaskHeads, EveryPrecisionRunsTheBody) {
    const fs::path dir = heads_dir() / "tiny-qwen2-seqcls";
    if (!fs::exists(dir / "config.json")) GTEST_SKIP() << "no head fixtures";
    const std::vector<int> ids = {295, 661, 325, 803, 278, 983, 572, 267, 667, 64, 328, 268};
    LoadOptions o;
    const SequenceClassification exact = classify_sequence(*Model::load(dir, {}, o), ids);
    for (Precision p : {Precision::BF16, Precision::Q8, Precision::Q4}) {
        o.precision = p;
        const SequenceClassification r = classify_sequence(*Model::load(dir, {}, o), ids);
        ASSERT_EQ(exact.logits.size(), r.logits.size()) << precision_name(p);
        for (std::size_t i = 0; i < r.logits.size(); ++i)
            EXPECT_NEAR(exact.logits[i], r.logits[i], p == Precision::Q4 ? 4.0 : 0.15) << precision_name(p);
    }
}

TEST(TaskHeads, TheWrongTaskIsRefused) {
    const fs::path dir = heads_dir() / "tiny-gemma2-reward";
    if (!fs::exists(dir / "config.json")) GTEST_SKIP() << "no head fixtures";
    const auto model = Model::load(dir);
    const std::vector<int> ids = {2, 5, 7};
    EXPECT_THAT(error_of([&] { classify_tokens(*model, ids); }),
                testing::HasSubstr("Gemma2ForSequenceClassification is a sequence-classification model, not token-classification"));
    // Its outputs are no vocabulary: generation and chat refuse it rather than sample from them.
    auto ctx = model->new_context();
    EXPECT_THAT(error_of([&] { generate(*model, *ctx, ids, GenerateOptions{}); }),
                testing::HasSubstr("only a causal language model generates text"));
    const auto lm = LoadedModel::load(dir);  // loads (a judge renders conversations), but does not chat
    EXPECT_THAT(error_of([&] { ChatSession session(*lm); }), testing::HasSubstr("chat needs a causal language model"));
}

// A head checkpoint with something wrong: each error names it.
TEST(TaskHeads, MalformedCheckpoints) {
    const fs::path src = heads_dir() / "tiny-qwen2-seqcls";
    if (!fs::exists(src / "config.json")) GTEST_SKIP() << "no head fixtures";
    TempDir dir;
    dir.copy_files_from(src);
    nlohmann::json config = nlohmann::json::parse(read_text(src / "config.json"));
    auto with = [&](const std::function<void(nlohmann::json&)>& edit) {
        nlohmann::json c = config;
        edit(c);
        write_text(dir.path() / "config.json", c.dump());
        return error_of([&] { Model::load(dir.path()); });
    };
    EXPECT_THAT(with([](nlohmann::json& c) { c["architectures"] = {"Qwen2ForImageClassification"}; }),
                testing::HasSubstr("architecture \"Qwen2ForImageClassification\" is not one Windowpane runs"));
    EXPECT_THAT(with([](nlohmann::json& c) { c["num_labels"] = 5; }),
                testing::HasSubstr("id2label has 3 labels but num_labels is 5"));
    EXPECT_THAT(with([](nlohmann::json& c) { c["id2label"] = {{"0", "a"}, {"2", "c"}}; }),
                testing::HasSubstr("id2label has no name for label 1"));
    // Four labels in the config, three rows in score.weight: the tensor is named with both shapes.
    EXPECT_THAT(with([](nlohmann::json& c) { c["id2label"]["3"] = "extra"; c["label2id"]["extra"] = 3; }),
                testing::HasSubstr("score.weight"));
    // No score tensor at all.
    std::vector<StTensor> tensors = load_safetensors(src / "model.safetensors");
    tensors.erase(std::remove_if(tensors.begin(), tensors.end(), [](const StTensor& t) { return t.name == "score.weight"; }),
                  tensors.end());
    write_bytes(dir.path() / "model.safetensors", make_safetensors(tensors));
    write_text(dir.path() / "config.json", config.dump());
    EXPECT_THAT(error_of([&] { Model::load(dir.path()); }), testing::HasSubstr("score.weight"));
}

}  // namespace
}  // namespace wp::test
