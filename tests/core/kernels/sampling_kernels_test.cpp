// The sampler's vector passes give what their scalar loops give (exactly, but e^x within 1 ulp
// or so), on rows with masked (-inf) entries, ties and lengths that are no multiple of the vectors.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <random>
#include <vector>

#include "kernels/kernel_choice.h"
#include "kernels/sampling_kernels.h"

namespace wp {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

KernelOptions scalar() {
    KernelOptions o;
    o.force_scalar = true;
    return o;
}

// Logits as models give them, with a few masked, runs of equal values, and one value repeated.
std::vector<float> row(std::size_t n, unsigned seed) {
    std::mt19937 g(seed);
    std::normal_distribution<float> d(0.0f, 3.0f);
    std::vector<float> x(n);
    for (float& v : x) v = d(g);
    for (std::size_t i = 0; i < n; i += 97) x[i] = kNegInf;
    for (std::size_t i = 5; i + 3 < n; i += 211) x[i + 1] = x[i + 2] = x[i + 3] = x[i];
    for (std::size_t i = 13; i < n; i += 53) x[i] = 1.25f;
    return x;
}

const std::size_t kSizes[] = {1, 7, 8, 31, 255, 256, 257, 1000, 5003, 151936};

TEST(SamplingKernels, MaxDivideAndDropsAsTheScalarLoops) {
    if (!use_avx2_kernels({})) GTEST_SKIP() << "no AVX2: only the scalar loops run here";
    for (std::size_t n : kSizes) {
        const std::vector<float> x = row(n, static_cast<unsigned>(n));
        EXPECT_EQ(vec_max(x.data(), n), vec_max(x.data(), n, scalar())) << n;
        EXPECT_EQ(vec_max(x.data(), n), *std::max_element(x.begin(), x.end())) << n;

        std::vector<float> a(n), b(n);
        vec_divide(x.data(), a.data(), n, 0.7f);
        vec_divide(x.data(), b.data(), n, 0.7f, scalar());
        EXPECT_EQ(0, std::memcmp(a.data(), b.data(), n * sizeof(float))) << n;

        a = x, b = x;
        vec_drop_below(a.data(), n, 0.5f);
        vec_drop_below(b.data(), n, 0.5f, scalar());
        EXPECT_EQ(a, b) << n;
        EXPECT_EQ(std::count(a.begin(), a.end(), kNegInf),
                  std::count_if(x.begin(), x.end(), [](float v) { return v < 0.5f; }))
            << n;

        std::vector<float> p(n);
        for (std::size_t i = 0; i < n; ++i) p[i] = x[i] == kNegInf ? 0.0f : std::exp(x[i] - 9.0f);
        a = x, b = x;
        vec_drop_where_below(a.data(), p.data(), n, 0.001f);
        vec_drop_where_below(b.data(), p.data(), n, 0.001f, scalar());
        EXPECT_EQ(a, b) << n;
    }
}

TEST(SamplingKernels, ExpSumsAsStdExpByChunk) {
    for (const bool vector : {true, false}) {
        if (vector && !use_avx2_kernels({})) continue;
        const KernelOptions o = vector ? KernelOptions{} : scalar();
        for (std::size_t n : kSizes) {
            const std::vector<float> x = row(n, static_cast<unsigned>(n) + 1);
            const float mx = vec_max(x.data(), n);
            std::vector<float> p(n);
            std::vector<double> chunks((n + kSampleChunk - 1) / kSampleChunk);
            const double total = vec_exp_sums(x.data(), n, mx, p.data(), chunks.data(), o);
            double want = 0;
            for (std::size_t c = 0; c < chunks.size(); ++c) {
                double s = 0;
                for (std::size_t i = c * kSampleChunk; i < std::min(n, (c + 1) * kSampleChunk); ++i) {
                    // e^ of the difference as a float holds it (what both loops take).
                    const double e = x[i] == kNegInf ? 0.0 : std::exp(static_cast<double>(x[i] - mx));
                    if (x[i] == kNegInf) {
                        ASSERT_EQ(p[i], 0.0f) << i;  // masked: exactly 0
                    } else {
                        ASSERT_NEAR(p[i], e, 3e-7 * e + 1e-37) << i;
                    }
                    s += e;
                }
                ASSERT_NEAR(chunks[c], s, 2e-6 * s) << n << " chunk " << c;
                want += s;
            }
            EXPECT_NEAR(total, want, 2e-6 * want) << n;
        }
    }
}

TEST(SamplingKernels, FarBelowTheLargestStillNearZero) {
    // Arguments under exp8's range give tiny normal numbers (no subnormal arithmetic), never more.
    std::vector<float> x(300, -500.0f), p(300);
    x[0] = 0.0f;
    std::vector<double> chunks(2);
    const double total = vec_exp_sums(x.data(), x.size(), 0.0f, p.data(), chunks.data());
    EXPECT_EQ(p[0], 1.0f);
    for (std::size_t i = 1; i < x.size(); ++i) EXPECT_LT(p[i], 1e-37f);
    EXPECT_NEAR(total, 1.0, 1e-30);
}

TEST(SamplingKernels, IndicesInARangeInOrder) {
    for (std::size_t n : kSizes) {
        std::vector<float> p = row(n, static_cast<unsigned>(n) + 2);
        for (float& v : p) v = v == kNegInf ? 0.0f : std::exp(v - 9.0f);
        std::vector<int> want;
        for (std::size_t i = 0; i < n; ++i)
            if (p[i] >= 0.001f && p[i] < 0.01f) want.push_back(static_cast<int>(i));
        for (const bool vector : {true, false}) {
            std::vector<int> got(n);
            got.resize(vec_indices_in(p.data(), n, 0.001f, 0.01f, got.data(), n, vector ? KernelOptions{} : scalar()));
            EXPECT_EQ(got, want) << n;
            // With a limit it stops past it, having written the first ones.
            std::vector<int> some(n);
            const std::size_t k = vec_indices_in(p.data(), n, 0.001f, 0.01f, some.data(), 3, vector ? KernelOptions{} : scalar());
            if (want.size() <= 3) {
                EXPECT_EQ(k, want.size());
            } else {
                EXPECT_GT(k, 3u);
                EXPECT_TRUE(std::equal(some.begin(), some.begin() + 4, want.begin()));
            }
        }
    }
}

TEST(SamplingKernels, KthLargestAsNthElement) {
    for (std::size_t n : kSizes)
        for (std::size_t k : {std::size_t{1}, std::size_t{2}, std::size_t{40}, n / 2 + 1, n}) {
            if (k < 1 || k > n) continue;
            std::vector<float> x = row(n, static_cast<unsigned>(n + k));
            std::vector<float> sorted = x;
            std::nth_element(sorted.begin(), sorted.begin() + static_cast<long>(k - 1), sorted.end(), std::greater<float>());
            std::vector<float> heap(k);
            EXPECT_EQ(vec_kth_largest(x.data(), n, k, heap.data()), sorted[k - 1]) << n << " " << k;
            EXPECT_EQ(vec_kth_largest(x.data(), n, k, heap.data(), scalar()), sorted[k - 1]) << n << " " << k;
        }
}

TEST(SamplingKernels, RangeMassesByTopBits) {
    std::vector<float> p = row(151936, 9);
    const float mx = *std::max_element(p.begin(), p.end());
    for (float& v : p) v = v == kNegInf ? 0.0f : std::exp(v - mx);  // in [0, 1], as the sampler's
    std::vector<double> masses(4096), want(1024, 0.0);
    vec_range_masses(p.data(), p.size(), masses.data());
    for (float v : p) {
        std::uint32_t u;
        std::memcpy(&u, &v, sizeof u);
        want[u >> 20] += v;
    }
    for (std::size_t b = 0; b < 1024; ++b) ASSERT_NEAR(masses[b], want[b], 1e-12 * (want[b] + 1e-30)) << b;
}

}  // namespace
}  // namespace wp
