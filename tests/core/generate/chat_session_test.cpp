// Chat sessions: the KV cache is reused for the prefix it holds without changing the result, and
// a conversation too long for the context is a clear error.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "test_support.h"
#include "wp/error.h"
#include "wp/generate/chat_session.h"

namespace wp::test {
namespace {

GenerateOptions greedy(int n) {
    GenerateOptions o;
    o.max_new_tokens = n;
    return o;
}

TEST(ChatSession, ReusesTheCachedPrefixWithoutChangingTheReply) {
    WP_REQUIRE_SHARED();
    for (const char* name : {"tiny-qwen2", "tiny-gemma2"}) {
        SCOPED_TRACE(name);
        auto lm = LoadedModel::load(shared_dir() / "fixtures" / name);
        ChatSession warm(*lm);
        std::vector<ChatMessage> conv = {{"user", "Who made the light?"}};
        const Reply first = warm.reply(conv, greedy(6));
        EXPECT_EQ(first.reused_tokens, 0);
        conv.push_back({"assistant", first.text});
        conv.push_back({"user", "And the sea?"});
        const Reply second = warm.reply(conv, greedy(6));
        ChatSession cold(*lm);
        const Reply fresh = cold.reply(conv, greedy(6));
        EXPECT_EQ(second.result.ids(), fresh.result.ids());
        EXPECT_EQ(second.text, fresh.text);
        if (std::string(name) == "tiny-qwen2") {
            EXPECT_GT(second.reused_tokens, 10);  // dynamic cache rewinds
        }
    }
}

TEST(ChatSession, TooLongForTheContextIsAClearError) {
    WP_REQUIRE_SHARED();
    auto lm = LoadedModel::load(shared_dir() / "models" / "windowpane-demo-gemma2");  // context 1024
    std::string longtext;
    for (int i = 0; i < 400; ++i) longtext += "And the LORD said unto Moses, ";
    ChatSession s(*lm);
    try {
        s.reply({{"user", longtext}}, greedy(4));
        FAIL() << "no error";
    } catch (const Error& e) {
        EXPECT_THAT(e.what(), testing::HasSubstr("but the model's context holds 1024"));
    }
    // The session still works afterwards.
    const Reply r = s.reply({{"user", "Who made the light?"}}, greedy(4));
    EXPECT_EQ(r.result.tokens.size(), 4u);
}

TEST(ChatSession, TemplateErrorsReachTheCaller) {
    WP_REQUIRE_SHARED();
    auto lm = LoadedModel::load(shared_dir() / "models" / "windowpane-demo-gemma2");
    std::string why;
    EXPECT_FALSE(lm->supports_system_role(&why));
    EXPECT_THAT(why, testing::HasSubstr("System role not supported"));
    ChatSession s(*lm);
    EXPECT_THROW(s.reply({{"system", "Be brief."}, {"user", "Hi"}}, greedy(2)), TemplateError);
}

}  // namespace
}  // namespace wp::test
