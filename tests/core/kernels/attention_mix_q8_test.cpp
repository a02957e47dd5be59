// Decode's integer mixes over a q8 cache (attention_mix_q8.h: int16, and two bytes) against the
// arithmetic its header specifies, done in plain loops: equal to the bit.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "kernels/attention_kernels.h"
#include "kernels/attention_mix_q8.h"
#include "kernels/kernel_choice.h"

namespace wp::test {
namespace {

// What attention_mix_q8.h says the kernel computes.
std::vector<float> int16_mix_as_specified(const std::vector<float>& p, std::size_t ps, int nq, const Q8Rows& v,
                                          std::size_t vs, int n, int d) {
    std::vector<float> out(static_cast<std::size_t>(nq) * d, 0.0f);
    for (int c0 = 0; c0 < n; c0 += kInt16MixKeys) {
        const int c1 = std::min(n, c0 + kInt16MixKeys);
        for (int h = 0; h < nq; ++h) {
            float pm = 0;
            for (int j = c0; j < c1; ++j) pm = std::max(pm, std::fabs(p[h * ps + j]));
            for (int b = 0; b < d / 32; ++b) {
                auto scale = [&](int j) { return v.scales[(j * vs + 32 * b) / 32]; };
                float sm = 0;
                for (int j = c0; j < c1; ++j) sm = std::max(sm, std::fabs(scale(j)));
                std::int32_t sums[32] = {};
                for (int j = c0; j < c1; ++j) {
                    const float ph = p[h * ps + j] * (pm > 0 ? 1.0f / pm : 0.0f);
                    const float st = scale(j) * (sm > 0 ? 32767.0f / sm : 0.0f);
                    const auto w = static_cast<std::int32_t>(std::nearbyint(ph * st));
                    EXPECT_LE(std::abs(w), 32767);
                    for (int i = 0; i < 32; ++i) sums[i] += w * v.q[j * vs + 32 * b + i];
                }
                const float s = pm * sm / 32767.0f;
                for (int i = 0; i < 32; ++i) {
                    float& o = out[static_cast<std::size_t>(h) * d + 32 * b + i];
                    o = std::fma(static_cast<float>(sums[i]), s, o);
                }
            }
        }
    }
    return out;
}

// What attention_mix_q8.h says the two-byte kernel computes.
std::vector<float> bytes_mix_as_specified(const std::vector<float>& p, std::size_t ps, int nq, const Q8Rows& v,
                                          std::size_t vs, int n, int d) {
    std::vector<float> out(static_cast<std::size_t>(nq) * d, 0.0f);
    for (int c0 = 0; c0 < n; c0 += kBytesMixKeys) {
        const int c1 = std::min(n, c0 + kBytesMixKeys);
        for (int h = 0; h < nq; ++h) {
            float pm = 0;
            for (int j = c0; j < c1; ++j) pm = std::max(pm, p[h * ps + j]);
            for (int b = 0; b < d / 32; ++b) {
                auto scale = [&](int j) { return v.scales[(j * vs + 32 * b) / 32]; };
                float sm = 0;
                for (int j = c0; j < c1; ++j) sm = std::max(sm, scale(j));
                std::int32_t sums[32] = {};
                for (int j = c0; j < c1; ++j) {
                    const float ph = p[h * ps + j] * (pm > 0 ? 1.0f / pm : 0.0f);
                    const float st = scale(j) * (sm > 0 ? 65535.0f / sm : 0.0f);
                    const auto w = std::min(65535, static_cast<std::int32_t>(std::nearbyint(ph * st)));
                    EXPECT_GE(w, 0);
                    for (int i = 0; i < 32; ++i) sums[i] += w * v.q[j * vs + 32 * b + i];
                }
                const float s = pm * sm / 65535.0f;
                for (int i = 0; i < 32; ++i) {
                    float& o = out[static_cast<std::size_t>(h) * d + 32 * b + i];
                    o = std::fma(static_cast<float>(sums[i]), s, o);
                }
            }
        }
    }
    return out;
}

struct Q8Values {
    std::vector<std::int8_t> q;
    std::vector<float> scales;
    Q8Rows rows() const { return Q8Rows(q.data(), scales.data(), 32); }
};

Q8Values random_values(std::size_t elements, unsigned seed) {
    Q8Values v{std::vector<std::int8_t>(elements), std::vector<float>(elements / 32)};
    std::mt19937 rng(seed);
    std::uniform_int_distribution<int> digit(-127, 127);
    std::uniform_real_distribution<float> scale(0.001f, 0.05f);
    for (auto& x : v.q) x = static_cast<std::int8_t>(digit(rng));
    for (auto& x : v.scales) x = scale(rng);
    return v;
}

// Weights with exact zeros (masked keys) and a few dominant ones, as softmax leaves them, and
// some negative.
std::vector<float> random_probabilities(std::size_t count, unsigned seed) {
    std::vector<float> p(count);
    std::mt19937 rng(seed);
    std::exponential_distribution<float> e(1.0f);
    for (std::size_t i = 0; i < p.size(); ++i) p[i] = i % 7 == 3 ? 0.0f : i % 97 == 5 ? 40.0f * e(rng) : e(rng) * 1e-3f;
    for (std::size_t i = 2; i < p.size(); i += 11) p[i] = -p[i];  // the kernel takes any sign
    return p;
}

TEST(Int16Mix, EqualsItsSpecification) {
    if (!avx512_decode_kernels(KernelOptions{})) GTEST_SKIP() << "no AVX-512 VNNI here: the mix takes f32 products";
    for (int d : {32, 64, 128, 256})
        for (int nq : {1, 2, 3, 6, 8, 9, 12})  // every group the kernel is instantiated for, and more than 8
            for (int n : {1, 2, 3, 255, 256, 257, 600}) {
                SCOPED_TRACE("d=" + std::to_string(d) + " nq=" + std::to_string(nq) + " n=" + std::to_string(n));
                const std::size_t vs = static_cast<std::size_t>(d) + 64;  // rows of a wider cache
                const Q8Values v = random_values(vs * n + 64, static_cast<unsigned>(d + n));
                const std::size_t ps = static_cast<std::size_t>(n) + 5;
                const auto p = random_probabilities(ps * nq, static_cast<unsigned>(nq * 7 + n));
                ASSERT_TRUE(int16_mix_fits(v.rows(), d, vs));
                std::vector<float> got(static_cast<std::size_t>(nq) * d, 9.0f);
                ASSERT_TRUE(mix_q8_int16(p.data(), ps, nq, v.rows(), vs, n, d, got.data()));
                const auto want = int16_mix_as_specified(p, ps, nq, v.rows(), vs, n, d);
                for (std::size_t i = 0; i < got.size(); ++i) ASSERT_EQ(got[i], want[i]) << i;
            }
}

// A chunk where every key is masked (all weights zero), and a value block of zeros (scale 0):
// zeros, not NaN from dividing by their largest.
TEST(Int16Mix, ZeroProbabilitiesAndZeroScalesGiveZero) {
    if (!avx512_decode_kernels(KernelOptions{})) GTEST_SKIP() << "no AVX-512 VNNI here";
    constexpr int d = 64, n = 300;
    Q8Values v = random_values(static_cast<std::size_t>(d) * n, 3);
    for (int j = 0; j < n; ++j) v.scales[j * 2 + 1] = 0.0f;  // the second block of every row
    auto p = random_probabilities(n, 4);
    std::fill(p.begin(), p.begin() + 256, 0.0f);  // the first chunk masked
    std::vector<float> got(d);
    ASSERT_TRUE(mix_q8_int16(p.data(), n, 1, v.rows(), d, n, d, got.data()));
    EXPECT_EQ(got, int16_mix_as_specified(p, n, 1, v.rows(), d, n, d));
    for (int i = 32; i < 64; ++i) EXPECT_EQ(got[i], 0.0f) << i;
    std::fill(p.begin(), p.end(), 0.0f);
    ASSERT_TRUE(mix_q8_int16(p.data(), n, 1, v.rows(), d, n, d, got.data()));
    for (float x : got) EXPECT_EQ(x, 0.0f);
}

// A probability that is NaN or infinite takes the f32 loops, so it shows in the output.
TEST(Int16Mix, NonFiniteProbabilitiesFallBackToF32) {
    constexpr int d = 128, n = 40, nq = kInt16MixMinHeads;
    const Q8Values v = random_values(static_cast<std::size_t>(d) * n, 9);
    KernelOptions f32;
    f32.int16_probabilities = false;
    for (float odd : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity()}) {
        SCOPED_TRACE(odd);
        auto p = random_probabilities(nq * n, 5);
        p[n + 17] = odd;
        std::vector<float> got(nq * d), want(nq * d);
        EXPECT_FALSE(mix_q8_int16(p.data(), n, nq, v.rows(), d, n, d, got.data()));
        attention_mix(p.data(), n, nq, v.rows(), d, n, d, got.data());
        attention_mix(p.data(), n, nq, v.rows(), d, n, d, want.data(), f32);
        for (int i = 0; i < nq * d; ++i) {
            if (std::isnan(want[i])) ASSERT_TRUE(std::isnan(got[i])) << i;
            else ASSERT_EQ(got[i], want[i]) << i;
        }
    }
}

// attention_mix takes the int16 kernel from kInt16MixMinHeads query heads on, the two-byte one
// below (where the CPU has VBMI; the f32 loops otherwise).
TEST(Int16Mix, TakenFromFourQueryHeads) {
    if (!avx512_decode_kernels(KernelOptions{})) GTEST_SKIP() << "no AVX-512 VNNI here";
    constexpr int d = 128, n = 300;
    const Q8Values v = random_values(static_cast<std::size_t>(d) * n, 2);
    KernelOptions f32;
    f32.int16_probabilities = false;
    for (int nq : {1, kInt16MixMinHeads - 1, kInt16MixMinHeads}) {
        SCOPED_TRACE(nq);
        auto p = random_probabilities(static_cast<std::size_t>(nq) * n, 8);
        for (float& x : p) x = std::fabs(x);
        std::vector<float> got(static_cast<std::size_t>(nq) * d), f32_mix(got.size());
        attention_mix(p.data(), n, nq, v.rows(), d, n, d, got.data());
        attention_mix(p.data(), n, nq, v.rows(), d, n, d, f32_mix.data(), f32);
        if (nq >= kInt16MixMinHeads) EXPECT_EQ(got, int16_mix_as_specified(p, n, nq, v.rows(), d, n, d));
        else if (cpu_has_avx512_vbmi()) EXPECT_EQ(got, bytes_mix_as_specified(p, n, nq, v.rows(), d, n, d));
        else EXPECT_EQ(got, f32_mix);
    }
}

TEST(BytesMix, EqualsItsSpecification) {
    if (!cpu_has_avx512_vbmi()) GTEST_SKIP() << "no AVX-512 VBMI here: the mix takes f32 products";
    for (int d : {128, 256})
        for (std::size_t extra : {std::size_t{0}, std::size_t{64}})  // a cache's own rows, and wider ones
            for (int nq : {1, 2, 3, 4, 7})  // every group the kernel is instantiated for, and more
                for (int n : {1, 2, 3, 5, 63, 64, 65, 130, 600}) {
                    SCOPED_TRACE("d=" + std::to_string(d) + " vs=d+" + std::to_string(extra) + " nq=" + std::to_string(nq) +
                                 " n=" + std::to_string(n));
                    const std::size_t vs = static_cast<std::size_t>(d) + extra;
                    const Q8Values v = random_values(vs * n + 64, static_cast<unsigned>(d + n));
                    const std::size_t ps = static_cast<std::size_t>(n) + 5;
                    auto p = random_probabilities(ps * nq, static_cast<unsigned>(nq * 7 + n));
                    for (float& x : p) x = std::fabs(x);  // probabilities
                    ASSERT_TRUE(bytes_mix_fits(v.rows(), d, vs));
                    std::vector<float> got(static_cast<std::size_t>(nq) * d, 9.0f);
                    ASSERT_TRUE(mix_q8_bytes(p.data(), ps, nq, v.rows(), vs, n, d, got.data()));
                    const auto want = bytes_mix_as_specified(p, ps, nq, v.rows(), vs, n, d);
                    for (std::size_t i = 0; i < got.size(); ++i) ASSERT_EQ(got[i], want[i]) << i;
                }
}

// A chunk of masked keys (weights all zero) and a block of zeros (scale 0) give zeros, not NaN.
TEST(BytesMix, ZeroProbabilitiesAndZeroScalesGiveZero) {
    if (!cpu_has_avx512_vbmi()) GTEST_SKIP() << "no AVX-512 VBMI here";
    constexpr int d = 128, n = 150;
    Q8Values v = random_values(static_cast<std::size_t>(d) * n, 3);
    for (int j = 0; j < n; ++j) v.scales[j * 4 + 1] = 0.0f;  // the second block of every row
    auto p = random_probabilities(n, 4);
    for (float& x : p) x = std::fabs(x);
    std::fill(p.begin(), p.begin() + kBytesMixKeys, 0.0f);  // the first chunk masked
    std::vector<float> got(d);
    ASSERT_TRUE(mix_q8_bytes(p.data(), n, 1, v.rows(), d, n, d, got.data()));
    EXPECT_EQ(got, bytes_mix_as_specified(p, n, 1, v.rows(), d, n, d));
    for (int i = 32; i < 64; ++i) EXPECT_EQ(got[i], 0.0f) << i;
    std::fill(p.begin(), p.end(), 0.0f);
    ASSERT_TRUE(mix_q8_bytes(p.data(), n, 1, v.rows(), d, n, d, got.data()));
    for (float x : got) EXPECT_EQ(x, 0.0f);
}

// Its weights are unsigned: a negative probability or scale, a NaN or an infinity is refused, and
// attention_mix then takes the f32 loops (which show a NaN).
TEST(BytesMix, NegativeOrNonFiniteInputsFallBackToF32) {
    if (!cpu_has_avx512_vbmi()) GTEST_SKIP() << "no AVX-512 VBMI here";
    constexpr int d = 256, n = 70, nq = 2;
    KernelOptions f32;
    f32.int16_probabilities = false;
    for (bool in_scale : {false, true})
        for (float odd : {-0.5f, std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity()}) {
            SCOPED_TRACE(std::to_string(odd) + (in_scale ? " in a scale" : " in a probability"));
            Q8Values v = random_values(static_cast<std::size_t>(d) * n, 9);
            auto p = random_probabilities(nq * n, 5);
            for (float& x : p) x = std::fabs(x);
            (in_scale ? v.scales[8 * 66 + 3] : p[n + 67]) = odd;
            std::vector<float> got(nq * d), want(nq * d);
            EXPECT_FALSE(mix_q8_bytes(p.data(), n, nq, v.rows(), d, n, d, got.data()));
            attention_mix(p.data(), n, nq, v.rows(), d, n, d, got.data());
            attention_mix(p.data(), n, nq, v.rows(), d, n, d, want.data(), f32);
            for (int i = 0; i < nq * d; ++i) {
                if (std::isnan(want[i])) ASSERT_TRUE(std::isnan(got[i])) << i;
                else ASSERT_EQ(got[i], want[i]) << i;
            }
        }
}

// Rows the kernel does not fit take the f32 loops (blocks other than 32, a row stride that is not
// a multiple of 32), and so does the option off.
TEST(Int16Mix, FitsOnlyBlocksOf32) {
    const std::vector<std::int8_t> q(4096);
    const std::vector<float> s(4096);
    EXPECT_TRUE(int16_mix_fits(Q8Rows(q.data(), s.data(), 32), 128, 128));
    EXPECT_FALSE(int16_mix_fits(Q8Rows(q.data(), s.data(), 16), 128, 128));
    EXPECT_FALSE(int16_mix_fits(Q8Rows(q.data(), s.data(), 32), 72, 72));
    EXPECT_FALSE(int16_mix_fits(Q8Rows(q.data(), s.data(), 32), 128, 144));
    EXPECT_FALSE(int16_mix_fits(Q8Rows(q.data(), s.data(), 32), 1024, 1024));
    EXPECT_TRUE(bytes_mix_fits(Q8Rows(q.data(), s.data(), 32), 256, 320));
    EXPECT_FALSE(bytes_mix_fits(Q8Rows(q.data(), s.data(), 16), 128, 128));
    EXPECT_FALSE(bytes_mix_fits(Q8Rows(q.data(), s.data(), 32), 64, 64));
    EXPECT_FALSE(bytes_mix_fits(Q8Rows(q.data(), s.data(), 32), 192, 192));
    EXPECT_FALSE(bytes_mix_fits(Q8Rows(q.data(), s.data(), 32), 128, 144));
}

}  // namespace
}  // namespace wp::test
