// The hand-written kernels against plain reference loops (double precision, written from the
// transformers formulas), on random data of odd sizes.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <random>
#include <vector>

#include "test_support.h"
#include "kernels/ops.h"

namespace wp::test {
namespace {


TEST(Ops, Bf16AndF16Widening) {
    EXPECT_EQ(ops::bf16_to_f32(0x3f80), 1.0f);
    EXPECT_EQ(ops::bf16_to_f32(0xc040), -3.0f);
    EXPECT_EQ(ops::f16_to_f32(0x3c00), 1.0f);
    EXPECT_EQ(ops::f16_to_f32(0xc000), -2.0f);
    EXPECT_EQ(ops::f16_to_f32(0x3800), 0.5f);
    EXPECT_EQ(ops::f16_to_f32(0x0001), std::ldexp(1.0f, -24));  // smallest subnormal
    EXPECT_EQ(ops::f16_to_f32(0x03ff), std::ldexp(1023.0f, -24));  // largest subnormal
    EXPECT_EQ(ops::f16_to_f32(0x7bff), 65504.0f);
    EXPECT_TRUE(std::isinf(ops::f16_to_f32(0x7c00)));
    EXPECT_TRUE(std::isnan(ops::f16_to_f32(0x7e00)));
    EXPECT_EQ(ops::f16_to_f32(0x8000), -0.0f);
    // Every f16 value round-trips through float arithmetic: x*2^-k agrees with the exponent.
    for (std::uint32_t h = 0x0400; h < 0x7c00; h += 97) {
        const int e = static_cast<int>((h >> 10) & 0x1f) - 15;
        const float want = std::ldexp(1.0f + (h & 0x3ff) / 1024.0f, e);
        EXPECT_EQ(ops::f16_to_f32(static_cast<std::uint16_t>(h)), want) << h;
    }
    // Unaligned bulk widening.
    std::vector<std::uint8_t> raw = {0xff, 0x80, 0x3f, 0x00, 0xc0};
    float out[2];
    ops::bf16_to_f32(raw.data() + 1, out, 2);
    EXPECT_EQ(out[0], 1.0f);
    EXPECT_EQ(out[1], -2.0f);
    // Round to nearest even.
    EXPECT_EQ(ops::f32_to_bf16(1.0f), 0x3f80);
    EXPECT_EQ(ops::f32_to_bf16(ops::bf16_to_f32(0x3f81)), 0x3f81);
}

TEST(Ops, RmsNormBothStyles) {
    for (int n : {1, 7, 64, 193}) {
        const int rows = 3;
        auto x = randn(static_cast<std::size_t>(rows) * n, n);
        auto w = randn(n, n + 1);
        for (NormStyle style : {NormStyle::Weight, NormStyle::OnePlusWeight}) {
            std::vector<float> y(x.size());
            ops::rms_norm(x.data(), w.data(), y.data(), rows, n, 1e-6f, style);
            for (int r = 0; r < rows; ++r) {
                double ss = 0;
                for (int i = 0; i < n; ++i) ss += double(x[r * n + i]) * x[r * n + i];
                const double inv = 1.0 / std::sqrt(ss / n + 1e-6);
                for (int i = 0; i < n; ++i) {
                    const double scale = style == NormStyle::OnePlusWeight ? 1.0 + w[i] : w[i];
                    EXPECT_NEAR(y[r * n + i], x[r * n + i] * inv * scale, 1e-5) << n;
                }
            }
        }
    }
}

TEST(Ops, RopeRotatesHalves) {
    const int heads = 3, hd = 10, rows = 4, stride = heads * hd + 2;
    auto x = randn(static_cast<std::size_t>(rows) * stride, 5);
    auto orig = x;
    std::vector<float> cos(rows * hd / 2), sin(rows * hd / 2);
    const double theta = 10000.0;
    ops::rope_table(theta, hd, 7, rows, cos.data(), sin.data());
    ops::rope(x.data(), rows, heads, hd, stride, cos.data(), sin.data());
    for (int r = 0; r < rows; ++r)
        for (int h = 0; h < heads; ++h)
            for (int i = 0; i < hd / 2; ++i) {
                const double a = (7 + r) / std::pow(theta, 2.0 * i / hd);
                const double x0 = orig[r * stride + h * hd + i], x1 = orig[r * stride + h * hd + i + hd / 2];
                EXPECT_NEAR(x[r * stride + h * hd + i], x0 * std::cos(a) - x1 * std::sin(a), 1e-5);
                EXPECT_NEAR(x[r * stride + h * hd + i + hd / 2], x1 * std::cos(a) + x0 * std::sin(a), 1e-5);
            }
    // The two floats after the heads in each row are untouched.
    for (int r = 0; r < rows; ++r) {
        EXPECT_EQ(x[r * stride + heads * hd], orig[r * stride + heads * hd]);
        EXPECT_EQ(x[r * stride + heads * hd + 1], orig[r * stride + heads * hd + 1]);
    }
}

TEST(Ops, ActivationsAndSoftcap) {
    auto g = randn(101, 9, 3.0f);
    auto u = randn(101, 10);
    std::vector<float> y(101);
    ops::gelu_tanh_mul(g.data(), u.data(), y.data(), y.size());
    for (std::size_t i = 0; i < y.size(); ++i) {
        const double x = g[i];
        const double gelu = 0.5 * x * (1 + std::tanh(std::sqrt(2 / M_PI) * (x + 0.044715 * x * x * x)));
        EXPECT_NEAR(y[i], gelu * u[i], 1e-5);
    }
    ops::silu_mul(g.data(), u.data(), y.data(), y.size());
    for (std::size_t i = 0; i < y.size(); ++i) EXPECT_NEAR(y[i], g[i] / (1 + std::exp(-double(g[i]))) * u[i], 1e-5);
    auto s = g;
    ops::softcap(s.data(), s.size(), 5.0f);
    for (std::size_t i = 0; i < s.size(); ++i) {
        EXPECT_NEAR(s[i], 5.0 * std::tanh(g[i] / 5.0), 1e-6);
        EXPECT_LT(std::fabs(s[i]), 5.0f);
    }
}


// The vectorised argmax gives std::max_element's index: the first of tied maxima (in the vector
// part and the tail alike), NaNs passed over except a NaN first, lengths around the vector steps.
TEST(Ops, ArgmaxIsMaxElement) {
    std::mt19937 rng(7);
    std::normal_distribution<float> nd;
    const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
    for (std::size_t n : {1u, 7u, 8u, 31u, 32u, 33u, 100u, 151936u}) {
        std::vector<float> x(n);
        for (int round = 0; round < 12; ++round) {
            for (float& v : x) v = nd(rng);
            const std::size_t a = rng() % n, b = rng() % n;
            switch (round % 6) {
                case 1: x[a] = x[b] = 9.0f; break;                 // a tie for the largest
                case 2: x[a] = nan; break;                         // a NaN somewhere
                case 3: x[0] = nan; break;                         // a NaN first
                case 4: std::fill(x.begin(), x.end(), -inf); break;  // nothing above -inf
                case 5: std::fill(x.begin(), x.end(), 0.5f); x[n - 1] = 0.75f; break;  // the last one
                default: break;
            }
            SCOPED_TRACE("n " + std::to_string(n) + ", round " + std::to_string(round));
            EXPECT_EQ(ops::argmax(x.data(), n), static_cast<std::size_t>(std::max_element(x.begin(), x.end()) - x.begin()));
        }
    }
}

}  // namespace
}  // namespace wp::test
