// The measured decode-kernel choice: that a chosen set is the one that runs, on every path that
// takes the decode kernels, and that the choice is kept per CPU and thread count in its file.
#include <gtest/gtest.h>

#include <cstring>
#include <nlohmann/json.hpp>

#include "kernels/kernel_choice.h"
#include "kernels/qmatrix.h"
#include "kernels/thread_pool.h"
#include "test_support.h"
#include "wp/model/decode_kernel_choice.h"

namespace wp::test {
namespace {

constexpr Precision kAll[] = {Precision::F32, Precision::BF16, Precision::Q8, Precision::Q4};

bool both_sets() {
    KernelOptions narrow;
    narrow.avx512 = false;
    return avx512_decode_kernels(KernelOptions{}) && use_avx2_kernels(narrow);
}

// One row (decode) and five (a short prompt, or prompt lookup's check of its drafts): a precision
// chosen for AVX2 gives the AVX2 set's bytes; the others keep the AVX-512 set's.
TEST(DecodeKernelChoice, TheChosenSetRunsForOneRowAndForFew) {
    if (!both_sets()) GTEST_SKIP() << "one decode kernel set on this CPU";
    ThreadPool pool(2);
    const int rows = 96, cols = 512;
    const std::vector<float> w = randn(static_cast<std::size_t>(rows) * cols, 3, 0.05f);
    const std::vector<float> x = randn(static_cast<std::size_t>(5) * cols, 4);
    KernelOptions wide, narrow;
    wide.few_rows_limit = narrow.few_rows_limit = 8;  // five rows take the decode kernels in every precision
    narrow.avx512 = false;
    int sets_differ = 0;
    for (Precision p : kAll) {
        WeightStorage st;
        const QMatrix m = make_qmatrix(p, rows, cols, w.data(), nullptr, st);
        KernelScratch s;
        for (int n : {1, 5}) {
            std::vector<float> y512(static_cast<std::size_t>(n) * rows), y2(y512.size()), got(y512.size());
            matmul(m, x.data(), n, y512.data(), pool, s, wide);
            matmul(m, x.data(), n, y2.data(), pool, s, narrow);
            sets_differ += std::memcmp(y512.data(), y2.data(), y512.size() * sizeof(float)) != 0;
            for (bool chosen : {true, false}) {
                KernelOptions o = wide;
                o.decode_avx2[static_cast<std::size_t>(p)] = chosen;
                matmul(m, x.data(), n, got.data(), pool, s, o);
                const std::vector<float>& want = chosen ? y2 : y512;
                EXPECT_EQ(0, std::memcmp(got.data(), want.data(), got.size() * sizeof(float)))
                    << precision_name(p) << ", " << n << " rows, " << (chosen ? "AVX2" : "AVX-512") << " chosen";
            }
        }
    }
    // Otherwise the comparisons above could not tell the sets apart.
    EXPECT_GT(sets_differ, 0);
}

DecodeChoiceOptions quick() {
    DecodeChoiceOptions o;
    o.threads = 2;
    o.bytes = std::size_t{4} << 20;
    o.passes = 3;
    return o;
}

TEST(DecodeKernelChoice, MeasuredOnceThenReadFromItsFile) {
    if (!both_sets()) GTEST_SKIP() << "one decode kernel set on this CPU";
    TempDir dir;
    const fs::path file = dir.path() / "sub" / "decode-kernels.json";
    const DecodeKernelChoice first = choose_decode_kernels(file, quick());
    EXPECT_TRUE(first.applicable);
    EXPECT_TRUE(first.measured_now);
    EXPECT_EQ(2, first.threads);
    EXPECT_FALSE(first.cpu.empty());
    for (Precision p : kAll) {
        const auto i = static_cast<std::size_t>(p);
        EXPECT_GT(first.avx512_gbs[i], 0) << precision_name(p);
        EXPECT_GT(first.avx2_gbs[i], 0) << precision_name(p);
        EXPECT_GT(first.ratio[i], 0) << precision_name(p);
    }
    ASSERT_TRUE(fs::exists(file));

    // The file's choice, not a new measurement, even where it says otherwise than measuring would.
    nlohmann::json j = nlohmann::json::parse(read_text(file));
    ASSERT_EQ(1u, j["choices"].size());
    j["choices"][0]["avx2"] = {"bf16"};
    nlohmann::json other = j["choices"][0];
    other["cpu"] = "another CPU";
    other["avx2"] = {"q8"};
    j["choices"].push_back(other);
    write_text(file, j.dump());
    const DecodeKernelChoice kept = choose_decode_kernels(file, quick());
    EXPECT_FALSE(kept.measured_now);
    EXPECT_TRUE(kept.applicable);
    const std::array<bool, 4> only_bf16{false, true, false, false};
    EXPECT_EQ(only_bf16, kept.avx2);
    EXPECT_EQ(first.avx512_gbs, kept.avx512_gbs);
    EXPECT_TRUE(kept.apply(KernelOptions{}).decode_avx2[static_cast<std::size_t>(Precision::BF16)]);

    // Another thread count is another key: measured, and added beside the others.
    DecodeChoiceOptions one = quick();
    one.threads = 1;
    EXPECT_TRUE(choose_decode_kernels(file, one).measured_now);
    EXPECT_FALSE(choose_decode_kernels(file, one).measured_now);
    EXPECT_EQ(3u, nlohmann::json::parse(read_text(file))["choices"].size());

    // remeasure replaces this key's entry and keeps the other CPU's.
    EXPECT_TRUE(choose_decode_kernels(file, quick(), true).measured_now);
    const nlohmann::json after = nlohmann::json::parse(read_text(file));
    ASSERT_EQ(3u, after["choices"].size());
    int others = 0;
    for (const auto& e : after["choices"]) others += e["cpu"] == "another CPU";
    EXPECT_EQ(1, others);
}

TEST(DecodeKernelChoice, AnUnreadableFileIsMeasuredAgainAndReplaced) {
    if (!both_sets()) GTEST_SKIP() << "one decode kernel set on this CPU";
    TempDir dir;
    const fs::path file = dir.path() / "decode-kernels.json";
    for (const std::string bad : {"{not json", "[]", R"({"format": 1, "choices": [{"cpu": 3}]})", ""}) {
        write_text(file, bad);
        const DecodeKernelChoice c = choose_decode_kernels(file, quick());
        EXPECT_TRUE(c.measured_now) << bad;
        EXPECT_FALSE(choose_decode_kernels(file, quick()).measured_now) << bad;
    }
    // A path that cannot be written (a folder in its place): the choice is still returned.
    const fs::path blocked = dir.path() / "blocked";
    fs::create_directories(blocked / "decode-kernels.json");
    EXPECT_TRUE(choose_decode_kernels(blocked / "decode-kernels.json", quick()).applicable);
    // No file at all: measured every time, nothing written.
    EXPECT_TRUE(choose_decode_kernels({}, quick()).measured_now);
}

}  // namespace
}  // namespace wp::test
