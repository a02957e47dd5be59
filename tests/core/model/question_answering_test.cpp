// answer_question against a direct computation from the model's start and end logits: the
// question's encoding then the context's; softmax over the context's tokens only; every span
// start <= end < start + max_answer_tokens scored start·end; the best top_k in order.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>

#include "test_support.h"
#include "wp/model/model.h"
#include "wp/model/question_answering.h"
#include "wp/tokenizer/tokenizer.h"

namespace wp::test {
namespace {

fs::path qa_dir() { return shared_dir() / "heads" / "tiny-qwen2-qa"; }

TEST(QuestionAnswering, BestSpansFromTheLogits) {
    WP_REQUIRE_SHARED();
    if (!fs::exists(qa_dir() / "config.json")) GTEST_SKIP() << "no head fixtures";
    const auto model = Model::load(qa_dir());
    const auto tok = Tokenizer::load(qa_dir());
    const std::string question = "Who created the heaven?";
    const std::string context = "In the beginning God created the heaven and the earth. And the earth was without form.";
    for (int max_tokens : {30, 3, 1}) {
        SCOPED_TRACE(max_tokens);
        const QuestionAnswering r = answer_question(*model, *tok, question, context, 8, max_tokens);
        std::vector<int> ids = tok->encode(question, true);
        const int begin = static_cast<int>(ids.size());
        const std::vector<int> cids = tok->encode(context, false);
        ids.insert(ids.end(), cids.begin(), cids.end());
        ASSERT_EQ(ids, r.ids);
        EXPECT_EQ(begin, r.context_begin);
        const QuestionAnsweringLogits l = question_answering_logits(*model, ids);
        const int end = static_cast<int>(ids.size());
        auto softmax = [&](const std::vector<float>& x) {
            std::vector<long double> p(x.size(), 0);
            long double sum = 0;
            for (int t = begin; t < end; ++t) sum += std::exp(static_cast<long double>(x[static_cast<std::size_t>(t)]));
            for (int t = begin; t < end; ++t) p[static_cast<std::size_t>(t)] = std::exp(static_cast<long double>(x[static_cast<std::size_t>(t)])) / sum;
            return p;
        };
        const auto ps = softmax(l.start), pe = softmax(l.end);
        std::vector<std::tuple<long double, int, int>> spans;
        for (int s = begin; s < end; ++s)
            for (int e = s; e < end && e - s < max_tokens; ++e)
                spans.emplace_back(ps[static_cast<std::size_t>(s)] * pe[static_cast<std::size_t>(e)], s, e);
        std::sort(spans.begin(), spans.end(), [](const auto& a, const auto& b) { return std::get<0>(a) > std::get<0>(b); });
        ASSERT_EQ(8u, r.answers.size());
        for (std::size_t i = 0; i < r.answers.size(); ++i) {
            SCOPED_TRACE(i);
            const Answer& a = r.answers[i];
            EXPECT_NEAR(static_cast<double>(std::get<0>(spans[i])), a.score, 1e-6);
            EXPECT_EQ(std::get<1>(spans[i]), a.start_token);
            EXPECT_EQ(std::get<2>(spans[i]), a.end_token);
            // Its text: the span's tokens decoded, without surrounding spaces, at its place in the context.
            std::string decoded = tok->decode(std::vector<int>(ids.begin() + a.start_token, ids.begin() + a.end_token + 1), true);
            decoded.erase(0, decoded.find_first_not_of(' '));
            decoded.erase(decoded.find_last_not_of(' ') + 1);
            EXPECT_EQ(decoded, a.text);
            EXPECT_EQ(context.substr(a.span.begin, a.span.end - a.span.begin), a.text);
        }
    }
}

TEST(QuestionAnswering, ClearErrors) {
    WP_REQUIRE_SHARED();
    if (!fs::exists(qa_dir() / "config.json")) GTEST_SKIP() << "no head fixtures";
    const auto model = Model::load(qa_dir());
    const auto tok = Tokenizer::load(qa_dir());
    EXPECT_THAT(error_of([&] { answer_question(*model, *tok, "Why?", ""); }), testing::HasSubstr("the context is empty"));
    EXPECT_THAT(error_of([&] { answer_question(*model, *tok, "Why?", "Because.", 0); }), testing::HasSubstr("top-k"));
    const auto seq = Model::load(shared_dir() / "heads" / "tiny-qwen2-seqcls");
    EXPECT_THAT(error_of([&] { answer_question(*seq, *tok, "Why?", "Because."); }),
                testing::HasSubstr("not question-answering"));
}

}  // namespace
}  // namespace wp::test
