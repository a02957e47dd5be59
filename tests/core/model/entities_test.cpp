// group_entities follows the token-classification pipeline's "simple" aggregation: a labelling
// made up here (on a real encoding) and the entities those rules give, worked out by hand.
#include <gtest/gtest.h>

#include <cmath>

#include "test_support.h"
#include "wp/model/entities.h"
#include "wp/tokenizer/tokenizer.h"

namespace wp::test {
namespace {

TEST(Entities, SimpleAggregationRules) {
    WP_REQUIRE_SHARED();
    const fs::path dir = shared_dir() / "heads" / "tiny-gemma2-tokcls";
    if (!fs::exists(dir / "tokenizer.model")) GTEST_SKIP() << "no head fixtures";
    const auto tok = Tokenizer::load(dir);
    const std::string text = "And God said unto Moses, Go in unto Pharaoh king of Egypt, and say unto him";
    const std::vector<int> ids = tok->encode(text, true);
    ASSERT_TRUE(tok->is_special(ids[0]));  // <bos>: the pipeline skips special tokens
    ASSERT_GE(ids.size(), 12u);

    const std::vector<std::string> names = {"O", "B-PER", "I-PER", "B-LOC", "I-LOC", "MISC"};
    // Tokens 1..9: B-PER I-PER O B-LOC B-LOC I-LOC I-PER MISC MISC, the rest O; bos labelled
    // B-PER to show it is skipped. The chosen label's logit is a, the others 0: p = e^a / (e^a + 5).
    const std::vector<int> chosen = {1, 1, 2, 0, 3, 3, 4, 2, 5, 5};
    TokenClassification r;
    r.num_labels = 6;
    for (std::size_t t = 0; t < ids.size(); ++t) {
        const int label = t < chosen.size() ? chosen[t] : 0;
        const float a = 1.0f + 0.25f * static_cast<float>(t);
        for (int j = 0; j < 6; ++j) r.logits.push_back(j == label ? a : 0.0f);
        r.labels.push_back(names[static_cast<std::size_t>(label)]);
    }
    auto p = [](int t) {
        const double e = std::exp(1.0 + 0.25 * t);
        return e / (e + 5.0);
    };
    const std::vector<Entity> got = group_entities(r, ids, *tok, text);
    struct Want {
        std::string group;
        int first, last;
        double score;
    };
    const std::vector<Want> want = {
        {"PER", 1, 2, (p(1) + p(2)) / 2},  // B-PER I-PER
        {"LOC", 4, 4, p(4)},               // B-LOC, then another B-LOC starts anew
        {"LOC", 5, 6, (p(5) + p(6)) / 2},  // B-LOC I-LOC
        {"PER", 7, 7, p(7)},               // I-PER after I-LOC: another type, a new entity
        {"MISC", 8, 9, (p(8) + p(9)) / 2},  // unprefixed labels continue as I- does
    };
    ASSERT_EQ(want.size(), got.size());
    for (std::size_t i = 0; i < want.size(); ++i) {
        SCOPED_TRACE(i);
        EXPECT_EQ(want[i].group, got[i].group);
        EXPECT_EQ(want[i].first, got[i].first_token);
        EXPECT_EQ(want[i].last, got[i].last_token);
        EXPECT_NEAR(want[i].score, got[i].score, 1e-6);
        // The entity's text: its tokens' decode, without the spaces around it, at its place in the text.
        std::vector<int> own(ids.begin() + got[i].first_token, ids.begin() + got[i].last_token + 1);
        std::string decoded = tok->decode(own, true);
        decoded.erase(0, decoded.find_first_not_of(' '));
        EXPECT_EQ(decoded, got[i].text);
        EXPECT_EQ(text.substr(got[i].span.begin, got[i].span.end - got[i].span.begin), got[i].text);
        if (i > 0) { EXPECT_GE(got[i].span.begin, got[i - 1].span.end); }
    }

    const std::vector<float> probs = token_probabilities(r);
    for (std::size_t t = 0; t < ids.size(); ++t) {
        double sum = 0;
        for (int j = 0; j < 6; ++j) sum += probs[t * 6 + static_cast<std::size_t>(j)];
        EXPECT_NEAR(1.0, sum, 1e-6);
        EXPECT_NEAR(p(static_cast<int>(t)), probs[t * 6 + static_cast<std::size_t>(t < chosen.size() ? chosen[t] : 0)], 1e-6);
    }
}

}  // namespace
}  // namespace wp::test
