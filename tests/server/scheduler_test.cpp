// The continuous-batching scheduler against wp::generate (each request alone), and requests run
// together against the same requests run one at a time: greedy and seeded sampling, stop strings,
// limits, logprobs, the queue bound and cancellation.
#include <gtest/gtest.h>

#include <thread>

#include "scheduler.h"
#include "test_support.h"
#include "wp/error.h"
#include "wp/generate/generator.h"

namespace wp::test {
namespace {

using server::GenerationRequest;
using server::Job;
using server::Scheduler;
using server::SchedulerOptions;
using server::StreamEvent;

struct Outcome {
    std::vector<int> ids;
    std::string text;
    std::string finish;
    int prompt_tokens = 0, completion_tokens = 0;
    std::vector<StreamEvent> tokens;
};

Outcome collect(Job& job) {
    Outcome o;
    for (;;) {
        std::optional<StreamEvent> e = job.next(std::chrono::seconds(120));
        if (!e) {
            ADD_FAILURE() << "no event for 120 s";
            return o;
        }
        if (e->kind == StreamEvent::Kind::Error) {
            ADD_FAILURE() << "error event: " << e->error;
            return o;
        }
        if (e->kind == StreamEvent::Kind::Done) {
            o.finish = e->finish_reason;
            o.prompt_tokens = e->prompt_tokens;
            o.completion_tokens = e->completion_tokens;
            return o;
        }
        o.ids.push_back(e->token.id);
        o.text += e->text;
        o.tokens.push_back(std::move(*e));
    }
}

std::vector<int> prompt_of(const LoadedModel& lm, int i) {
    const std::string texts[] = {"Hello there, how are you", "The quick brown fox", "1 2 3 4 5 6 7 8 9",
                                 "Once upon a time in a land far away there lived", "a", "Qwen and Gemma"};
    return lm.tokenizer().encode(texts[i % 6] + std::string(static_cast<std::size_t>(i / 6), '!'), true);
}

GenerationRequest request(const LoadedModel& lm, int i, int max_tokens, bool sample) {
    GenerationRequest r;
    r.prompt = prompt_of(lm, i);
    r.max_tokens = max_tokens;
    r.top_logprobs = 3;
    if (sample) {
        r.sampling.greedy = false;
        r.sampling.temperature = 1.5f;  // random weights: a flat distribution, so seeds matter
        r.sampling.top_k = 50;
        r.sampling.seed = 1000 + static_cast<std::uint64_t>(i);
    }
    return r;
}

std::vector<fs::path> causal_fixtures() {
    std::vector<fs::path> out;
    for (const fs::path& d : fixture_models())
        if (d.filename() == "tiny-qwen2" || d.filename() == "tiny-gemma2") out.push_back(d);
    return out;
}

// Requests alone give what wp::generate gives; run eight together on four slots (others wait
// in the queue, prompts join between decode steps), each gets exactly its own tokens.
TEST(Scheduler, BatchedRequestsGetTheirOwnTokens) {
    WP_REQUIRE_SHARED();
    for (const fs::path& dir : causal_fixtures())
        for (Precision p : {Precision::F32, Precision::Q8, Precision::Q4}) {
            SCOPED_TRACE(dir.filename().string() + " " + precision_name(p));
            LoadOptions lo;
            lo.precision = p;
            const auto lm = LoadedModel::load(dir, {}, lo);
            SchedulerOptions so;
            so.parallel = 4;
            so.prefill_chunk = 4;  // prompts join over several steps
            const int n = 8, max_tokens = 20;
            for (bool sample : {false, true}) {
                std::vector<Outcome> alone;
                {
                    Scheduler sched(*lm, so);
                    for (int i = 0; i < n; ++i) alone.push_back(collect(*sched.submit(request(*lm, i, max_tokens, sample))));
                }
                for (int i = 0; i < n && !sample; ++i) {
                    // Greedy alone is wp::generate's greedy continuation, ending at the same eos.
                    GenerateOptions go;
                    go.max_new_tokens = max_tokens;
                    go.eos_ids = lm->stop_ids();
                    auto ctx = lm->model().new_context();
                    const GenerateResult want = generate(lm->model(), *ctx, prompt_of(*lm, i), go);
                    EXPECT_EQ(alone[i].ids, want.ids()) << "request " << i;
                    ASSERT_EQ(alone[i].tokens.size(), want.tokens.size());
                    for (std::size_t t = 0; t < want.tokens.size(); ++t) {
                        EXPECT_NEAR(alone[i].tokens[t].token.logprob, want.tokens[t].logprob, 1e-5);
                        ASSERT_EQ(alone[i].tokens[t].top.size(), 3u);
                        EXPECT_EQ(alone[i].tokens[t].top[0].id, want.tokens[t].top[0].id);
                        EXPECT_GE(alone[i].tokens[t].top[0].logprob, alone[i].tokens[t].top[1].logprob);
                    }
                }
                Scheduler sched(*lm, so);
                std::vector<std::shared_ptr<Job>> jobs;
                for (int i = 0; i < n; ++i) jobs.push_back(sched.submit(request(*lm, i, max_tokens, sample)));
                for (int i = 0; i < n; ++i) {
                    const Outcome got = collect(*jobs[i]);
                    EXPECT_EQ(got.ids, alone[i].ids) << (sample ? "seeded" : "greedy") << " request " << i;
                    EXPECT_EQ(got.text, alone[i].text);
                    EXPECT_EQ(got.finish, alone[i].finish);
                    EXPECT_EQ(got.prompt_tokens, static_cast<int>(prompt_of(*lm, i).size()));
                    EXPECT_EQ(got.completion_tokens, static_cast<int>(got.ids.size()));
                }
                if (sample) {  // different seeds give different texts (on a flat distribution)
                    int same = 0;
                    for (int i = 1; i < n; ++i) same += alone[i].ids == alone[0].ids;
                    EXPECT_LT(same, n - 1);
                }
                const server::SchedulerStats st = sched.stats();
                EXPECT_EQ(st.requests, static_cast<std::uint64_t>(n));
                EXPECT_GT(st.completion_tokens, 0u);
            }
        }
}

TEST(Scheduler, StopStringsEndTheTextBeforeThem) {
    WP_REQUIRE_SHARED();
    const auto lm = LoadedModel::load(shared_dir() / "fixtures" / "tiny-qwen2");
    Scheduler sched(*lm, {});
    GenerationRequest r = request(*lm, 3, 40, false);
    r.ignore_eos = true;
    const Outcome full = collect(*sched.submit(r));
    ASSERT_EQ(full.finish, "length");
    ASSERT_EQ(full.completion_tokens, 40);
    ASSERT_GT(full.text.size(), 12u);
    // A stop string from the middle of the text, spanning tokens where it can.
    const std::string stop = full.text.substr(full.text.size() / 2, 5);
    r.stop = {"never-in-the-text-\x01", stop};
    const Outcome cut = collect(*sched.submit(r));
    EXPECT_EQ(cut.finish, "stop");
    EXPECT_EQ(cut.text, full.text.substr(0, full.text.find(stop)));
    EXPECT_LT(cut.completion_tokens, 40);
    EXPECT_EQ(cut.ids, std::vector<int>(full.ids.begin(), full.ids.begin() + cut.completion_tokens));
}

TEST(Scheduler, LimitsAndRefusals) {
    WP_REQUIRE_SHARED();
    const auto lm = LoadedModel::load(shared_dir() / "fixtures" / "tiny-qwen2");
    SchedulerOptions so;
    so.ctx = 24;
    so.parallel = 1;
    so.max_queue = 1;
    Scheduler sched(*lm, so);
    GenerationRequest r = request(*lm, 0, 100, false);
    r.ignore_eos = true;
    // The context ends the reply: prompt + reply fill it.
    const Outcome o = collect(*sched.submit(r));
    EXPECT_EQ(o.finish, "length");
    EXPECT_EQ(o.prompt_tokens + o.completion_tokens, 24);

    GenerationRequest big = r;
    big.prompt.assign(24, 5);
    EXPECT_THROW(sched.submit(big), Error);
    GenerationRequest empty = r;
    empty.prompt.clear();
    EXPECT_THROW(sched.submit(empty), Error);
    GenerationRequest outside = r;
    outside.prompt.push_back(lm->model().config().vocab_size);
    EXPECT_THROW(sched.submit(outside), Error);
    GenerationRequest bad = r;
    bad.sampling.greedy = false;
    bad.sampling.temperature = -1;
    EXPECT_THROW(sched.submit(bad), Error);

    // One running, one waiting (neither can end before they are cancelled): the third is
    // refused. A queued request whose client left frees its place at once; the running one at
    // the scheduler's next step.
    so.ctx = 1 << 20;
    Scheduler busy(*lm, so);
    GenerationRequest endless = r;
    endless.max_tokens = 1 << 20;
    const std::shared_ptr<Job> running = busy.submit(endless);
    const std::shared_ptr<Job> queued = busy.submit(endless);
    EXPECT_THROW(busy.submit(endless), server::QueueFull);
    queued->cancel();
    const std::shared_ptr<Job> next = busy.submit(endless);
    EXPECT_THROW(busy.submit(endless), server::QueueFull);
    running->cancel();
    next->cancel();
    r.max_tokens = 3;
    std::shared_ptr<Job> after;
    for (int tries = 0; tries < 3000 && !after; ++tries) {
        try {
            after = busy.submit(r);
        } catch (const server::QueueFull&) {
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
    }
    ASSERT_TRUE(after);
    EXPECT_EQ(collect(*after).finish, "length");
}

TEST(Scheduler, StoppingEndsRunningJobsWithAnError) {
    WP_REQUIRE_SHARED();
    const auto lm = LoadedModel::load(shared_dir() / "fixtures" / "tiny-qwen2");
    std::shared_ptr<Job> job;
    {
        SchedulerOptions so;
        so.ctx = 1 << 20;
        Scheduler sched(*lm, so);
        GenerationRequest r = request(*lm, 0, 1 << 20, false);
        r.ignore_eos = true;
        job = sched.submit(r);
        ASSERT_TRUE(job->next(std::chrono::seconds(60)));  // running
    }
    bool error = false;
    while (std::optional<StreamEvent> e = job->next(std::chrono::milliseconds(0)))
        error = error || e->kind == StreamEvent::Kind::Error;
    EXPECT_TRUE(error);
}

}  // namespace
}  // namespace wp::test
