// Model::forward_batch (continuous batching) against each sequence run alone: every fixture and
// precision, sequences at different depths, the sliding layers' ring caches wrapping, sequences
// joining and leaving the batch between steps.
#include <cstring>

#include <gtest/gtest.h>

#include "kernels/kernel_choice.h"
#include "test_support.h"
#include "wp/error.h"
#include "wp/model/model.h"

namespace wp::test {
namespace {

std::vector<int> random_ids(int n, int vocab, std::uint64_t seed) {
    std::vector<int> ids;
    for (int i = 0; i < n; ++i) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        ids.push_back(static_cast<int>((seed >> 33) % static_cast<std::uint64_t>(vocab)));
    }
    return ids;
}

int argmax(std::span<const float> row) {
    return static_cast<int>(std::max_element(row.begin(), row.end()) - row.begin());
}

// Three sequences with prompts of different lengths decode greedily, alone and batched; a fourth
// joins after a few steps and the first leaves. With the decode kernels taking every batch row,
// each row's logits equal the lone sequence's bit for bit.
TEST(ForwardBatch, DecodeRowsEqualEachSequenceAlone) {
    WP_REQUIRE_SHARED();
    for (const fs::path& dir : fixture_models()) {
        for (Precision p : {Precision::F32, Precision::BF16, Precision::Q8, Precision::Q4}) {
            SCOPED_TRACE(dir.filename().string() + " " + precision_name(p));
            LoadOptions o;
            o.precision = p;
            const auto model = Model::load(dir, {}, o);
            const int V = model->config().vocab_size;
            const std::vector<int> lengths = {5, 600, 2, 11};  // 600: decode attention split in parts
            const int steps = 24;  // past tiny-gemma2's window of 8 for every sequence
            const int join = 4, leave = 9;

            // Alone: each sequence in its own context, prompt in one pass, then one token at a time.
            std::vector<std::vector<std::vector<float>>> alone(lengths.size());
            std::vector<std::vector<int>> prompts;
            for (std::size_t s = 0; s < lengths.size(); ++s) {
                prompts.push_back(random_ids(lengths[s], V, 100 + s));
                auto ctx = model->new_context();
                std::span<const float> out = model->forward(*ctx, prompts[s], LogitsMode::Last);
                for (int t = 0; t < steps; ++t) {
                    alone[s].emplace_back(out.begin(), out.end());
                    const int next[1] = {argmax(out)};
                    out = model->forward(*ctx, next, LogitsMode::Last);
                }
            }

            // Batched: sequence 3 joins at step `join`, sequence 0 leaves after step `leave`.
            auto work = model->new_context();
            work->decode_kernel_rows = 8;
            std::vector<std::unique_ptr<Context>> ctxs;
            std::vector<int> last(lengths.size()), done(lengths.size(), 0);
            std::vector<bool> started(lengths.size(), false);
            auto start = [&](std::size_t s) {
                ctxs[s] = model->new_context();
                const std::span<const float> out = model->forward(*ctxs[s], prompts[s], LogitsMode::Last);
                ASSERT_EQ(0, std::memcmp(out.data(), alone[s][0].data(), out.size_bytes())) << "prompt of " << s;
                last[s] = argmax(out);
                done[s] = 1;
                started[s] = true;
            };
            ctxs.resize(lengths.size());
            for (std::size_t s = 0; s < 3; ++s) start(s);
            for (int step = 0; step < steps + join; ++step) {
                if (step == join) start(3);
                std::vector<Model::BatchItem> items;
                std::vector<std::size_t> who;
                std::vector<std::array<int, 1>> next(lengths.size());
                for (std::size_t s = 0; s < lengths.size(); ++s) {
                    if (!started[s] || done[s] >= steps || (s == 0 && step > leave)) continue;
                    next[s] = {last[s]};
                    items.push_back({ctxs[s].get(), next[s]});
                    who.push_back(s);
                }
                if (items.empty()) break;
                const std::span<const float> out = model->forward_batch(*work, items);
                ASSERT_EQ(out.size(), items.size() * static_cast<std::size_t>(V));
                for (std::size_t i = 0; i < who.size(); ++i) {
                    const std::size_t s = who[i];
                    const std::span<const float> row = out.subspan(i * V, V);
                    ASSERT_EQ(0, std::memcmp(row.data(), alone[s][done[s]].data(), row.size_bytes()))
                        << "sequence " << s << " token " << done[s] << " of a batch of " << items.size();
                    last[s] = argmax(row);
                    ++done[s];
                }
            }
            EXPECT_EQ(done[1], steps);
            EXPECT_EQ(done[3], steps);
            EXPECT_EQ(done[0], leave + 2);
            EXPECT_EQ(ctxs[1]->cache.length(), lengths[1] + steps - 1);
            EXPECT_EQ(work->cache.length(), 0);
        }
    }
}

// Sequences of several tokens in one batch (a prompt chunk beside decoding rows) agree with
// each run alone within f32 rounding.
TEST(ForwardBatch, MixedLengthsMatchAloneInF32) {
    WP_REQUIRE_SHARED();
    for (const fs::path& dir : fixture_models()) {
        SCOPED_TRACE(dir.filename().string());
        LoadOptions o;
        o.precision = Precision::F32;
        const auto model = Model::load(dir, {}, o);
        const int V = model->config().vocab_size;
        const std::vector<int> first = {3, 12, 6}, second = {1, 9, 1};
        std::vector<std::unique_ptr<Context>> a, b;
        auto work = model->new_context();
        for (std::size_t s = 0; s < first.size(); ++s) {
            a.push_back(model->new_context());
            b.push_back(model->new_context());
        }
        for (const auto* lens : {&first, &second}) {
            std::vector<std::vector<int>> ids;
            std::vector<Model::BatchItem> items;
            for (std::size_t s = 0; s < lens->size(); ++s) ids.push_back(random_ids((*lens)[s], V, 7 * s + lens->at(s)));
            for (std::size_t s = 0; s < lens->size(); ++s) items.push_back({b[s].get(), ids[s]});
            const std::vector<float> batched = [&] {
                const auto out = model->forward_batch(*work, items);
                return std::vector<float>(out.begin(), out.end());
            }();
            for (std::size_t s = 0; s < lens->size(); ++s) {
                const std::span<const float> want = model->forward(*a[s], ids[s], LogitsMode::Last);
                for (int i = 0; i < V; ++i)
                    ASSERT_NEAR(batched[s * V + i], want[i], 1e-4f) << "sequence " << s << " logit " << i;
                EXPECT_EQ(a[s]->cache.length(), b[s]->cache.length());
            }
        }
    }
}

// Several prompts' chunks in one pass (the serving scheduler's prefill) give each prompt the bits
// it gets alone, where the model says so: q8 and q4 on the int8 product. Chunks long enough
// that the products take it (not the decode kernels), and a decode step after from each cache.
TEST(ForwardBatch, PromptChunksEqualEachAloneWhereTheModelSaysSo) {
    WP_REQUIRE_SHARED();
    int exact = 0;
    for (const fs::path& dir : fixture_models()) {
        for (Precision p : {Precision::F32, Precision::BF16, Precision::Q8, Precision::Q4}) {
            SCOPED_TRACE(dir.filename().string() + " " + precision_name(p));
            LoadOptions o;
            o.precision = p;
            const auto model = Model::load(dir, {}, o);
            const bool int8 = p == Precision::Q8 || p == Precision::Q4;
            EXPECT_EQ(model->batched_prompts_exact(), int8 && int8_gemm_available(model->kernels()));
            if (!model->batched_prompts_exact()) continue;
            ++exact;
            const int V = model->config().vocab_size;
            const std::vector<std::vector<int>> rounds = {{7, 40, 1, 13}, {5, 1, 30, 2}};
            std::vector<std::unique_ptr<Context>> a, b;
            for (int s = 0; s < 4; ++s) {
                a.push_back(model->new_context());
                b.push_back(model->new_context());
            }
            auto work = model->new_context();
            for (std::size_t r = 0; r < rounds.size(); ++r) {
                std::vector<std::vector<int>> ids;
                std::vector<Model::BatchItem> items;
                for (std::size_t s = 0; s < 4; ++s) ids.push_back(random_ids(rounds[r][s], V, 31 * r + s));
                for (std::size_t s = 0; s < 4; ++s) items.push_back({b[s].get(), ids[s]});
                const auto out = model->forward_batch(*work, items);
                const std::vector<float> batched(out.begin(), out.end());
                for (std::size_t s = 0; s < 4; ++s) {
                    const std::span<const float> want = model->forward(*a[s], ids[s], LogitsMode::Last);
                    ASSERT_EQ(0, std::memcmp(batched.data() + s * V, want.data(), want.size_bytes())) << "round " << r << " prompt " << s;
                }
            }
            for (std::size_t s = 0; s < 4; ++s) {
                const int next[1] = {static_cast<int>(s) + 1};
                const std::vector<float> want = [&] {
                    const auto out = model->forward(*a[s], next, LogitsMode::Last);
                    return std::vector<float>(out.begin(), out.end());
                }();
                const std::span<const float> got = model->forward(*b[s], next, LogitsMode::Last);
                ASSERT_EQ(0, std::memcmp(got.data(), want.data(), got.size_bytes())) << "decode after prompt " << s;
            }
        }
    }
    if (int8_gemm_available({})) {
        EXPECT_GT(exact, 0);
    }
}

TEST(ForwardBatch, RefusesWhatCannotRun) {
    WP_REQUIRE_SHARED();
    const auto model = Model::load(shared_dir() / "fixtures" / "tiny-qwen2");
    auto work = model->new_context();
    auto a = model->new_context();
    auto full = model->new_context(CacheKind::Static, 2);
    const int one[1] = {5}, two[2] = {5, 6}, bad[1] = {model->config().vocab_size};
    EXPECT_THROW(model->forward_batch(*work, {}), Error);
    EXPECT_THROW(model->forward_batch(*work, std::vector<Model::BatchItem>{{a.get(), one}, {a.get(), one}}), Error);
    EXPECT_THROW(model->forward_batch(*work, std::vector<Model::BatchItem>{{work.get(), one}}), Error);
    EXPECT_THROW(model->forward_batch(*work, std::vector<Model::BatchItem>{{a.get(), {}}}), Error);
    EXPECT_THROW(model->forward_batch(*work, std::vector<Model::BatchItem>{{a.get(), one}, {full.get(), bad}}), Error);
    model->forward(*full, two, LogitsMode::Last);
    // A full cache refuses before anything is stored: the other sequence's cache is untouched.
    EXPECT_THROW(model->forward_batch(*work, std::vector<Model::BatchItem>{{a.get(), one}, {full.get(), one}}), Error);
    EXPECT_EQ(a->cache.length(), 0);
    EXPECT_EQ(full->cache.length(), 2);
}

}  // namespace
}  // namespace wp::test
