// The logit lens against shared/lens (every model and case there), its last layer against the
// model's own output, a range against the whole, and held-out texts against an independent path:
// the lens of layer l is the output of the same checkpoint cut after layer l (config.json's
// num_hidden_layers = l + 1), run through the ordinary forward pass.
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <limits>
#include <map>
#include <random>

#include "test_support.h"
#include "wp/error.h"
#include "wp/model/logit_lens.h"

namespace wp::test {
namespace {

constexpr double kTol = 1e-4;

LoadOptions exact_options() {
    LoadOptions lo;
    lo.kernels.bf16_gemm = false;
    return lo;
}

const Model& fixture(const fs::path& dir) {
    static std::map<fs::path, std::unique_ptr<Model>> models;
    auto& m = models[dir];
    if (!m) m = Model::load(dir, {}, exact_options());
    return *m;
}

struct LensCase {
    std::string model, file;
};

std::vector<LensCase> lens_cases() {
    std::vector<LensCase> out;
    const fs::path root = shared_dir();
    if (root.empty() || !fs::is_directory(root / "lens")) return out;
    for (const auto& dir : fs::directory_iterator(root / "lens")) {
        if (!dir.is_directory()) continue;
        for (const auto& f : fs::directory_iterator(dir.path()))
            if (f.path().extension() == ".json") out.push_back({dir.path().filename().string(), f.path().string()});
    }
    std::sort(out.begin(), out.end(), [](const LensCase& a, const LensCase& b) { return a.file < b.file; });
    return out;
}

// Compares one cell with expected top ids / log-probabilities / entropy; an id may differ from
// the expected one only where the expected log-probabilities of the two ranks tie within kTol.
void expect_cell(const LogitLens& lens, int l, int t, const std::vector<int>& ids, const std::vector<double>& lps,
                 double entropy, const std::string& where) {
    const int K = std::min<int>(lens.top_k, static_cast<int>(ids.size()));
    EXPECT_NEAR(lens.entropy[lens.cell(l, t)], entropy, kTol) << where;
    for (int k = 0; k < K; ++k) {
        EXPECT_NEAR(lens.logprob(l, t, k), lps[k], kTol) << where << " rank " << k;
        if (lens.id(l, t, k) == ids[k]) continue;
        bool tied = false;
        for (int j = 0; j < K; ++j)
            if (ids[j] == lens.id(l, t, k) && std::abs(lps[j] - lps[k]) <= kTol) tied = true;
        if (k == K - 1 && std::abs(lens.logprob(l, t, k) - lps[k]) <= kTol) tied = true;  // tie with rank K
        EXPECT_TRUE(tied) << where << " rank " << k << ": id " << lens.id(l, t, k) << ", expected " << ids[k];
    }
}

TEST(LogitLens, MatchesSharedReferences) {
    WP_REQUIRE_SHARED();
    const auto cases = lens_cases();
    if (cases.empty() && in_ci()) FAIL() << "no cases in shared/lens";
    if (cases.empty()) GTEST_SKIP() << "no shared/lens";
    for (const LensCase& c : cases) {
        const auto ref = nlohmann::json::parse(read_text(c.file));
        const std::vector<int> ids = ref.at("input_ids");
        const Model& model = fixture(shared_dir() / "fixtures" / c.model);
        LensOptions o;
        o.top_k = static_cast<int>(ref.at("top_ids")[0][0].size());
        const LogitLens lens = logit_lens(model, ids, o);
        ASSERT_EQ(lens.layers, ref.at("layers").get<int>()) << c.file;
        ASSERT_EQ(lens.positions, static_cast<int>(ids.size()));
        for (int l = 0; l < lens.layers; ++l)
            for (int t = 0; t < lens.positions; ++t)
                expect_cell(lens, l, t, ref["top_ids"][l][t], ref["top_logprobs"][l][t], ref["entropy"][l][t],
                            c.file + " layer " + std::to_string(l) + " position " + std::to_string(t));
    }
}

TEST(LogitLens, LastLayerIsTheModelsOutputAndARangeIsItsSlice) {
    WP_REQUIRE_SHARED();
    for (const RefCase& rc : all_cases()) {
        const Model& model = fixture(rc.model_dir);
        const std::vector<int> ids = rc.input_ids();
        const LogitLens lens = logit_lens(model, ids);
        auto ctx = model.new_context();
        const auto logits = model.forward(*ctx, ids, LogitsMode::All);
        const int V = model.config().vocab_size, L = lens.layers;
        for (int t = 0; t < lens.positions; ++t) {
            const auto lp = log_softmax(logits.data() + static_cast<std::size_t>(t) * V, V);
            int best = 0;
            for (int i = 1; i < V; ++i)
                if (lp[i] > lp[best]) best = i;
            EXPECT_EQ(lens.id(L - 1, t, 0), best) << rc.name << " position " << t;
            EXPECT_NEAR(lens.logprob(L - 1, t, 0), lp[best], 1e-5) << rc.name;
        }
        LensOptions part;
        part.first = 5;
        part.count = 4;
        const LogitLens slice = logit_lens(model, ids, part);
        ASSERT_EQ(slice.positions, 4);
        for (int l = 0; l < L; ++l)
            for (int t = 0; t < 4; ++t) {
                EXPECT_EQ(slice.id(l, t, 0), lens.id(l, t + 5, 0)) << rc.name;
                EXPECT_NEAR(slice.entropy[slice.cell(l, t)], lens.entropy[lens.cell(l, t + 5)], 1e-5) << rc.name;
            }
    }
}

// Texts that are in no reference: each layer's lens against the checkpoint cut after that layer.
TEST(LogitLens, HeldOutTextsMatchTheModelCutAfterEachLayer) {
    WP_REQUIRE_SHARED();
    for (const fs::path& dir : fixture_models()) {
        const Model& model = fixture(dir);
        const int V = model.config().vocab_size;
        std::mt19937 rng(static_cast<unsigned>(std::hash<std::string>{}(dir.filename().string())));
        std::uniform_int_distribution<int> token(0, V - 1);
        std::vector<int> ids(23);
        for (int& id : ids) id = token(rng);
        const LogitLens lens = logit_lens(model, ids);
        auto config = nlohmann::json::parse(read_text(dir / "config.json"));
        for (int l = 0; l < lens.layers; ++l) {
            TempDir cut;
            cut.copy_files_from(dir);
            config["num_hidden_layers"] = l + 1;
            write_text(cut.path() / "config.json", config.dump());
            const auto shallow = Model::load(cut.path(), {}, exact_options());
            auto ctx = shallow->new_context();
            const auto logits = shallow->forward(*ctx, ids, LogitsMode::All);
            for (int t = 0; t < lens.positions; ++t) {
                const auto lp = log_softmax(logits.data() + static_cast<std::size_t>(t) * V, V);
                std::vector<int> order(V);
                for (int i = 0; i < V; ++i) order[i] = i;
                std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return lp[a] > lp[b]; });
                std::vector<int> top(order.begin(), order.begin() + lens.top_k);
                std::vector<double> top_lp;
                double h = 0;
                for (int i = 0; i < V; ++i) h -= std::exp(lp[i]) * lp[i];
                for (int id : top) top_lp.push_back(lp[id]);
                expect_cell(lens, l, t, top, top_lp, h,
                            dir.filename().string() + " layer " + std::to_string(l) + " position " + std::to_string(t));
            }
        }
    }
}

// Past one 512-token pass and one readout slab (the fixtures' 1,000-token vocabulary reads 256
// rows a slab): the last layer against one forward pass over the whole text.
TEST(LogitLens, ALongTextAcrossPassesAndSlabs) {
    WP_REQUIRE_SHARED();
    for (const char* name : {"tiny-gemma2", "tiny-qwen2"}) {
        const Model& model = fixture(shared_dir() / "fixtures" / name);
        const int V = model.config().vocab_size;
        std::mt19937 rng(600);
        std::uniform_int_distribution<int> token(0, V - 1);
        std::vector<int> ids(600);
        for (int& id : ids) id = token(rng);
        LensOptions o;
        o.first = 100;  // a range that starts inside the first pass and ends in the second
        const LogitLens lens = logit_lens(model, ids, o);
        ASSERT_EQ(lens.positions, 500);
        auto ctx = model.new_context();
        const auto logits = model.forward(*ctx, ids, LogitsMode::All);
        const int L = lens.layers;
        for (int t = 0; t < lens.positions; ++t) {
            const auto lp = log_softmax(logits.data() + static_cast<std::size_t>(t + 100) * V, V);
            double h = 0;
            for (double x : lp) h -= std::exp(x) * x;
            EXPECT_NEAR(lens.logprob(L - 1, t, 0), lp[lens.id(L - 1, t, 0)], 1e-4) << name << " position " << t + 100;
            EXPECT_NEAR(lens.logprob(L - 1, t, 0), *std::max_element(lp.begin(), lp.end()), 1e-4) << name;
            EXPECT_NEAR(lens.entropy[lens.cell(L - 1, t)], h, 1e-4) << name << " position " << t + 100;
        }
    }
}

TEST(LogitLens, RefusesBadRangesAndStopsWhenCancelled) {
    WP_REQUIRE_SHARED();
    const Model& model = fixture(shared_dir() / "fixtures" / "tiny-qwen2");
    const std::vector<int> ids{1, 2, 3, 4};
    LensOptions o;
    o.first = 3;
    o.count = 2;
    EXPECT_NE(error_of([&] { logit_lens(model, ids, o); }).find("outside the text"), std::string::npos);
    o = {};
    o.top_k = 0;
    EXPECT_NE(error_of([&] { logit_lens(model, ids, o); }).find("top-k"), std::string::npos);
    EXPECT_NE(error_of([&] { logit_lens(model, std::vector<int>{}); }).find("at least one token"), std::string::npos);
    o = {};
    o.first = 1;
    o.count = std::numeric_limits<std::int64_t>::max();  // first + count would overflow
    EXPECT_NE(error_of([&] { logit_lens(model, ids, o); }).find("outside the text"), std::string::npos);
    o = {};
    o.count = 1;  // the ids after the range are not run, but are still checked
    EXPECT_NE(error_of([&] { logit_lens(model, std::vector<int>{1, 2, 1000}, o); }).find("outside the vocabulary"),
              std::string::npos);
    std::atomic<bool> cancel{false};
    o = {};
    o.cancel = &cancel;
    int calls = 0;
    o.progress = [&](double) {
        if (++calls == 1) cancel = true;
    };
    EXPECT_THROW(logit_lens(model, ids, o), Cancelled);
    EXPECT_EQ(calls, 1);
}

}  // namespace
}  // namespace wp::test
