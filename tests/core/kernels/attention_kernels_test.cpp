// The attention kernels (scores, mix, softmax, the AVX-512 prompt kernels, elementwise
// functions) against double-precision references.
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "kernels/kernel_choice.h"
#include "test_support.h"
#include "kernels/attention_kernels.h"
#include "kernels/attention_mix_q8.h"
#include "kernels/f16_vectors.h"
#include "kernels/ops.h"
#include "kernels/qmatrix.h"
#include "scalar_kernels.h"
#include "kernels/thread_pool.h"
#include "wp/cache/kv_cache.h"
#include "wp/model/model.h"

namespace wp::test {
namespace {

// Decode attention kernels (grouped query heads, f16 and f32 caches) against double-precision
// sums, for every group size up to 9 (beyond the 8 done at once), odd key counts and head sizes.
// Prompt attention's AVX-512 kernels (keys transposed in blocks, 8 query rows) against double
// sums: every count of query rows, head sizes that leave a partial 16- or 32-lane slice, key
// counts that leave every tail of the 32-key steps and span several of the mix's key chunks, and nothing written past the rows and keys asked.
TEST(AttentionKernels, PromptKernelsMatchReference) {
    if (!avx512_decode_kernels(KernelOptions{})) GTEST_SKIP() << "no AVX-512 VNNI here: prompt attention takes the decode kernels";
    for (int d : {16, 40, 48, 64, 256})
        for (int nq : {1, 3, 8})
            for (int n : {1, 15, 16, 33, 70, 300}) {
                SCOPED_TRACE("d=" + std::to_string(d) + " nq=" + std::to_string(nq) + " n=" + std::to_string(n));
                auto q = randn(static_cast<std::size_t>(8) * d, d + nq);
                std::fill(q.begin() + static_cast<std::size_t>(nq) * d, q.end(), 0.0f);
                const std::size_t kts = static_cast<std::size_t>(n) + 5, vs = static_cast<std::size_t>(d) + 8;
                const auto kt = randn(kts * d, n + 1);
                const auto v = randn(vs * n, n + 2);
                const std::size_t ps = static_cast<std::size_t>(n) + 3;
                auto p = randn(8 * ps, n + 3);
                std::vector<float> S(8 * ps, -7.0f), out(static_cast<std::size_t>(8) * d, -7.0f);
                // The keys in the kernel's blocks of 32 (the last one partly filled with garbage).
                const int nb = (n + kPromptKeyBlock - 1) / kPromptKeyBlock;
                std::vector<float> blocks(static_cast<std::size_t>(nb) * kPromptKeyBlock * d, 1e30f);
                for (int c = 0; c < d; ++c)
                    for (int j = 0; j < n; ++j)
                        blocks[(static_cast<std::size_t>(j / kPromptKeyBlock) * d + c) * kPromptKeyBlock + j % kPromptKeyBlock] =
                            kt[c * kts + j];
                prompt_scores_avx512(q.data(), nq, d, blocks.data(), n, S.data(), ps);
                auto acc = out;
                for (int i = 0; i < nq * d; ++i) acc[i] = 1.0f;
                prompt_mix_avx512(p.data(), ps, nq, v.data(), vs, n, d, out.data(), false);
                prompt_mix_avx512(p.data(), ps, nq, v.data(), vs, n, d, acc.data(), true);
                for (int i = 0; i < 8; ++i) {
                    for (int j = 0; j < n; ++j) {
                        double r = 0;
                        for (int c = 0; c < d; ++c) r += static_cast<double>(q[i * d + c]) * kt[c * kts + j];
                        if (i < nq) ASSERT_NEAR(S[i * ps + j], r, 1e-4 * (1 + std::fabs(r))) << i << " " << j;
                        else ASSERT_EQ(S[i * ps + j], -7.0f) << "wrote a row past nq";
                    }
                    for (std::size_t j = n; j < ps; ++j) ASSERT_EQ(S[i * ps + j], -7.0f) << "wrote past the keys";
                    for (int c = 0; c < d; ++c) {
                        double r = 0;
                        for (int j = 0; j < n; ++j) r += static_cast<double>(p[i * ps + j]) * v[j * vs + c];
                        if (i < nq) {
                            ASSERT_NEAR(out[i * d + c], r, 1e-4 * (1 + std::fabs(r))) << i << " " << c;
                            ASSERT_NEAR(acc[i * d + c], r + 1.0, 1e-4 * (2 + std::fabs(r))) << i << " " << c;
                        } else {
                            ASSERT_EQ(out[i * d + c], -7.0f) << "wrote a row past nq";
                        }
                    }
                }
            }
}

// Each test below runs the default kernels, the AVX2 ones (avx512 off) and the scalar loops.
const char* const kSetNames[] = {"default", "AVX2", "scalar"};
KernelOptions kernel_set(int set) {
    KernelOptions k = scalar_kernels(set == 2);
    if (set == 1) k.avx512 = false;
    return k;
}

TEST(AttentionKernels, ScoresAndMixMatchReference) {
    for (int set = 0; set < 3; ++set) {
        const KernelOptions kernels = kernel_set(set);
        for (int d : {8, 64, 72, 256})
            for (int nq : {1, 2, 3, 4, 5, 7, 8, 9})
                for (int n : {0, 1, 5, 67, 130}) {
                    SCOPED_TRACE("d=" + std::to_string(d) + " nq=" + std::to_string(nq) + " n=" + std::to_string(n) + " " +
                                 kSetNames[set]);
                    const std::size_t stride = static_cast<std::size_t>(d) * 3 + 8;  // rows of a wider cache
                    const auto q = randn(static_cast<std::size_t>(nq) * d, d + nq);
                    const auto kv = randn(stride * std::max(n, 1), n + 5);
                    std::vector<std::uint16_t> kv16(kv.size());
                    f32_to_f16_array(kv.data(), kv16.data(), kv.size(), kernels);
                    std::vector<float> kvh(kv.size());
                    f16_to_f32_array(kv16.data(), kvh.data(), kv.size());
                    const std::size_t os = static_cast<std::size_t>(n) + 3;
                    std::vector<float> s32(nq * os, -7.0f), s16(nq * os, -7.0f);
                    attention_scores(q.data(), nq, d, kv.data() + d, stride, n, s32.data(), os, kernels);
                    attention_scores(q.data(), nq, d, kv16.data() + d, stride, n, s16.data(), os, kernels);
                    for (int h = 0; h < nq; ++h) {
                        for (int j = 0; j < n; ++j) {
                            double r32 = 0, r16 = 0;
                            for (int i = 0; i < d; ++i) {
                                r32 += static_cast<double>(q[h * d + i]) * kv[j * stride + d + i];
                                r16 += static_cast<double>(q[h * d + i]) * kvh[j * stride + d + i];
                            }
                            ASSERT_NEAR(s32[h * os + j], r32, 1e-4 * (1 + std::fabs(r32)));
                            ASSERT_NEAR(s16[h * os + j], r16, 1e-4 * (1 + std::fabs(r16)));
                        }
                        ASSERT_EQ(s32[h * os + n], -7.0f) << "wrote past the keys";
                    }
                    // Probabilities with some exact zeros (masked keys are skipped by callers
                    // or weigh nothing).
                    auto p = randn(nq * os, 11);
                    for (std::size_t i = 0; i < p.size(); ++i) p[i] = i % 5 == 0 ? 0.0f : std::fabs(p[i]);
                    std::vector<float> o32(static_cast<std::size_t>(nq) * d, 9.0f), o16(o32);
                    attention_mix(p.data(), os, nq, kv.data() + d, stride, n, d, o32.data(), kernels);
                    attention_mix(p.data(), os, nq, kv16.data() + d, stride, n, d, o16.data(), kernels);
                    for (int h = 0; h < nq; ++h)
                        for (int i = 0; i < d; ++i) {
                            double r32 = 0, r16 = 0;
                            for (int j = 0; j < n; ++j) {
                                r32 += static_cast<double>(p[h * os + j]) * kv[j * stride + d + i];
                                r16 += static_cast<double>(p[h * os + j]) * kvh[j * stride + d + i];
                            }
                            ASSERT_NEAR(o32[h * d + i], r32, 1e-4 * (1 + std::fabs(r32)));
                            ASSERT_NEAR(o16[h * d + i], r16, 1e-4 * (1 + std::fabs(r16)));
                        }
                }
    }
}

// x rounded in place to int8 in blocks of `block`: d = amax / 127, round(x / d) d, ties to even.
void round_to_int8_blocks(std::vector<float>& x, std::size_t block) {
    for (std::size_t b = 0; b < x.size(); b += block) {
        float amax = 0;
        for (std::size_t i = b; i < b + block; ++i) amax = std::max(amax, std::fabs(x[i]));
        if (amax == 0) continue;
        const float d = amax / 127.0f;
        for (std::size_t i = b; i < b + block; ++i) x[i] = std::nearbyint(x[i] * (1.0f / d)) * d;
    }
}

// q8 rows (a q8 KV cache's): every kernel set (AVX-512, AVX2, scalar) against sums in double over
// the values the int8 and scales stand for.
TEST(AttentionKernels, Q8ScoresAndMixMatchReference) {
    struct Set {
        const char* name;
        KernelOptions kernels;
    };
    std::vector<Set> sets = {{"default", KernelOptions{}}, {"scalar", scalar_kernels(true)}};
    KernelOptions no512;
    no512.avx512 = false;
    sets.push_back({"AVX2", no512});
    KernelOptions f32_queries;
    f32_queries.int8_queries = false;
    sets.push_back({"AVX-512, f32 queries", f32_queries});
    KernelOptions f32_mix;
    f32_mix.int16_probabilities = false;
    sets.push_back({"AVX-512, f32 mix", f32_mix});
    KernelOptions no_amx;
    no_amx.amx = false;
    sets.push_back({"AVX-512, no AMX", no_amx});
    for (const Set& set : sets)
        for (int d : {8, 16, 64, 72, 128, 256})
            for (int nq : {1, 2, 3, 4, 5, 6, 7, 8, 11})  // each head count the kernels group differently
                for (int n : {0, 1, 67, 130}) {
                    SCOPED_TRACE("d=" + std::to_string(d) + " nq=" + std::to_string(nq) + " n=" + std::to_string(n) + " " + set.name);
                    const int block = kv_q8_block(d);
                    const std::size_t stride = static_cast<std::size_t>(d) * 2;  // rows of a wider cache
                    const std::size_t total = stride * std::max(n, 1) + d;
                    std::vector<std::int8_t> q8(total);
                    std::vector<float> scales(total / block + 1), widened(total);
                    std::mt19937 rng(static_cast<unsigned>(d * 131 + n));
                    std::uniform_int_distribution<int> digit(-127, 127);
                    std::uniform_real_distribution<float> scale(0.001f, 0.05f);
                    for (auto& x : q8) x = static_cast<std::int8_t>(digit(rng));
                    for (auto& x : scales) x = scale(rng);
                    for (std::size_t i = 0; i < total; ++i) widened[i] = q8[i] * scales[i / block];
                    const Q8Rows rows(q8.data() + d, scales.data() + d / block, block);
                    const auto q = randn(static_cast<std::size_t>(nq) * d, d + nq);
                    // The same query rounded to int8 in blocks of 32 (one scale each, amax / 127):
                    // what attention hands a q8 cache's kernels (queries_as_scored).
                    std::vector<float> qr(q);
                    if (d % 32 == 0) round_to_int8_blocks(qr, 32);
                    const std::size_t os = static_cast<std::size_t>(n) + 3;
                    auto check_scores = [&](const std::vector<float>& query, const std::vector<float>& as_if, const char* what) {
                        SCOPED_TRACE(what);
                        std::vector<float> sc(nq * os, -7.0f);
                        attention_scores(query.data(), nq, d, rows, stride, n, sc.data(), os, set.kernels);
                        for (int h = 0; h < nq; ++h) {
                            for (int j = 0; j < n; ++j) {
                                double r = 0;
                                for (int i = 0; i < d; ++i) r += static_cast<double>(as_if[h * d + i]) * widened[j * stride + d + i];
                                ASSERT_NEAR(sc[h * os + j], r, 1e-4 * (1 + std::fabs(r)));
                            }
                            ASSERT_EQ(sc[h * os + n], -7.0f) << "wrote past the keys";
                        }
                    };
                    check_scores(qr, qr, "a rounded query");
                    // An unrounded query: the integer kernel (AVX-512 VNNI, blocks of 32, head_dim
                    // a multiple of 64) rounds it itself; the others take it as it is.
                    const bool integer = set.kernels.int8_queries && !set.kernels.force_scalar && set.kernels.avx512 &&
                                         cpu_has_avx512_vnni() && block == 32 && d % 64 == 0 && stride % 64 == 0;
                    check_scores(q, integer ? qr : q, integer ? "an unrounded query, rounded by the kernel" : "an unrounded query");
                    auto p = randn(nq * os, 11);
                    for (std::size_t i = 0; i < p.size(); ++i) p[i] = i % 5 == 0 ? 0.0f : std::fabs(p[i]);
                    std::vector<float> o(static_cast<std::size_t>(nq) * d, 9.0f);
                    attention_mix(p.data(), os, nq, rows, stride, n, d, o.data(), set.kernels);
                    // The integer mixes (attention_mix_q8.h) round each weight p * s to within
                    // half of pm * sm / levels, pm and sm their chunk's largest probability and
                    // scale: int16 from kInt16MixMinHeads query heads (chunks of 256, 32767
                    // levels), two bytes below (head_dim 128 or 256, AVX-512 VBMI; chunks of 64,
                    // 65535 levels).
                    const bool integer_mix = set.kernels.int16_probabilities && !set.kernels.force_scalar &&
                                             set.kernels.avx512 && cpu_has_avx512_vnni() && block == 32 &&
                                             d % 32 == 0 && stride % 32 == 0;
                    const bool int16 = integer_mix && nq >= kInt16MixMinHeads;
                    const bool bytes = integer_mix && !int16 && cpu_has_avx512_vbmi() && (d == 128 || d == 256);
                    const int chunk = int16 ? kInt16MixKeys : kBytesMixKeys;
                    const double levels = int16 ? 32767 : 65535;
                    auto chunk_max = [&](int j, auto&& f) {  // the largest f(t) over key j's chunk
                        double x = 0;
                        for (int t = j / chunk * chunk; t < std::min(n, j / chunk * chunk + chunk); ++t) x = std::max(x, f(t));
                        return x;
                    };
                    for (int h = 0; h < nq; ++h)
                        for (int i = 0; i < d; ++i) {
                            double r = 0, rounding = 0, pm = 0, sm = 0;
                            for (int j = 0; j < n; ++j) {
                                r += static_cast<double>(p[h * os + j]) * widened[j * stride + d + i];
                                if (!int16 && !bytes) continue;
                                if (j % chunk == 0) {
                                    pm = chunk_max(j, [&](int t) { return static_cast<double>(std::fabs(p[h * os + t])); });
                                    sm = chunk_max(j, [&](int t) { return static_cast<double>(rows.scales[(t * stride + i) / 32]); });
                                }
                                rounding += 0.5 * pm * sm / levels * std::abs(rows.q[j * stride + i]);
                            }
                            ASSERT_NEAR(o[h * d + i], r, 1e-4 * (1 + std::fabs(r)) + rounding);
                        }
                }
}

// A q8 cache's scores on AMX tiles (attention_scores_amx.h) equal the AVX-512 VNNI kernel's bit
// for bit: every head count and head size the tiles take, key counts with and without a tail
// past the last sixteen, keys packed and in a wider cache, scales from one to a hundred thousand
// times apart.
TEST(AttentionKernels, Q8ScoresOnAmxEqualVnniBitForBit) {
    if (!amx_int8_available(KernelOptions{})) GTEST_SKIP() << "no AMX-INT8 tiles here";
    KernelOptions vnni;
    vnni.amx = false;
    int compared = 0;
    for (int d : {64, 128, 256})
        for (int nq = 2; nq <= 8; ++nq)
            for (int n : {16, 67, 1040})
                for (int wide : {1, 2}) {
                    SCOPED_TRACE("d=" + std::to_string(d) + " nq=" + std::to_string(nq) + " n=" + std::to_string(n) +
                                 " stride x" + std::to_string(wide));
                    const std::size_t stride = static_cast<std::size_t>(d) * wide;
                    std::vector<std::int8_t> q8(stride * n);
                    std::vector<float> scales(q8.size() / 32);
                    std::mt19937 rng(static_cast<unsigned>(d * 7 + nq * 131 + n));
                    std::uniform_int_distribution<int> digit(-128, 127);
                    std::uniform_real_distribution<float> exponent(-5.0f, 0.0f);
                    for (auto& x : q8) x = static_cast<std::int8_t>(digit(rng));
                    for (auto& x : scales) x = std::pow(10.0f, exponent(rng));
                    const Q8Rows rows(q8.data(), scales.data(), 32);
                    const auto q = randn(static_cast<std::size_t>(nq) * d, d + nq + n);
                    std::vector<float> tiles(static_cast<std::size_t>(nq) * n), lanes(tiles.size());
                    attention_scores(q.data(), nq, d, rows, stride, n, tiles.data(), n);
                    attention_scores(q.data(), nq, d, rows, stride, n, lanes.data(), n, vnni);
                    ASSERT_EQ(0, std::memcmp(tiles.data(), lanes.data(), tiles.size() * sizeof(float)));
                    ++compared;
                }
    EXPECT_EQ(compared, 3 * 7 * 3 * 2);
}

// A query the integer kernel cannot round (a NaN, an infinity, or values too small for their
// scale's inverse) is scored on the f32 loops: a NaN shows in its scores instead of turning into 0.
TEST(AttentionKernels, Q8ScoresOfUnroundableQueriesFallBackToF32) {
    constexpr int d = 128, n = 40;
    std::vector<std::int8_t> q8(static_cast<std::size_t>(n) * d, 3);
    std::vector<float> scales(static_cast<std::size_t>(n) * d / 32, 0.01f);
    const Q8Rows rows(q8.data(), scales.data(), 32);
    KernelOptions f32;
    f32.int8_queries = false;
    for (float odd : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(), 1e-39f}) {
        SCOPED_TRACE(odd);
        std::vector<float> q(d, 0.5f);
        if (odd < 1e-30f) std::fill(q.begin() + 32, q.begin() + 64, odd);  // a block of subnormals
        else q[70] = odd;
        std::vector<float> got(n), want(n);
        attention_scores(q.data(), 1, d, rows, d, n, got.data(), n);
        attention_scores(q.data(), 1, d, rows, d, n, want.data(), n, f32);
        for (int j = 0; j < n; ++j) {
            if (std::isnan(want[j])) ASSERT_TRUE(std::isnan(got[j])) << j;
            else ASSERT_EQ(got[j], want[j]) << j;
        }
    }
}

TEST(AttentionKernels, SoftmaxRowWithCapAndMask) {
    for (int set = 0; set < 3; ++set) {
        const KernelOptions kernels = kernel_set(set);
        SCOPED_TRACE(kSetNames[set]);
        for (int n : {1, 7, 8, 9, 100, 1031})
            for (float cap : {0.0f, 50.0f}) {
                SCOPED_TRACE("n=" + std::to_string(n) + " cap=" + std::to_string(cap));
                auto x = randn(n, n);
                for (auto& v : x) v *= 40;  // well into tanh's flat part
                std::vector<float> bias(n, 0.0f);
                for (int i = 0; i < n; i += 3) bias[i] = -std::numeric_limits<float>::infinity();
                bias[n - 1] = 0.0f;  // at least one key is visible
                for (const float* b : {static_cast<const float*>(nullptr), static_cast<const float*>(bias.data())}) {
                    std::vector<double> ref(n);
                    double mx = -1e300, sum = 0;
                    for (int i = 0; i < n; ++i) {
                        double v = x[i] * 0.125;
                        if (cap > 0) v = cap * std::tanh(v / cap);
                        if (b && std::isinf(b[i])) v = -INFINITY;
                        ref[i] = v;
                        mx = std::max(mx, v);
                    }
                    for (auto& v : ref) sum += v = std::isinf(v) ? 0.0 : std::exp(v - mx);
                    std::vector<float> y(x);
                    softmax_row(y.data(), n, 0.125f, cap, b, kernels);
                    for (int i = 0; i < n; ++i) {
                        if (b && std::isinf(b[i])) {
                            ASSERT_EQ(y[i], 0.0f) << "a masked key must weigh exactly 0";
                        }
                        ASSERT_NEAR(y[i], ref[i] / sum, 2e-6 * (ref[i] / sum) + 1e-7) << i;
                    }
                }
            }
    }
}

// A soft-capped row on AVX-512 gives the AVX2 loop's floats bit for bit (the same operations per
// element, the sum in the same order, the same scalar tail), so a model's results do not depend
// on which of the two the CPU runs.
TEST(AttentionKernels, CappedSoftmaxRowSameOnAvx512AndAvx2) {
    const KernelOptions avx512 = kernel_set(0), avx2 = kernel_set(1);
    if (!avx512_decode_kernels(avx512)) GTEST_SKIP() << "this CPU runs no AVX-512 decode kernels";
    for (int n : {1, 7, 8, 9, 15, 16, 17, 23, 24, 31, 100, 1031, 8192})
        for (float cap : {50.0f, 30.0f})
            for (bool masked : {false, true}) {
                SCOPED_TRACE("n=" + std::to_string(n) + " cap=" + std::to_string(cap) + (masked ? " masked" : ""));
                auto x = randn(n, 3 * n + 1);
                for (std::size_t i = 0; i < x.size(); ++i) x[i] *= i % 5 == 0 ? 400.0f : 20.0f;  // both sides of 0.625
                std::vector<float> bias(n, 0.0f);
                for (int i = 0; i < n; i += 4) bias[i] = -std::numeric_limits<float>::infinity();
                bias[n - 1] = 0.0f;
                const float* b = masked ? bias.data() : nullptr;
                std::vector<float> y512(x), y2(x);
                const float l512 = softmax_row(y512.data(), n, 0.0625f, cap, b, avx512);
                const float l2 = softmax_row(y2.data(), n, 0.0625f, cap, b, avx2);
                ASSERT_EQ(std::memcmp(&l512, &l2, sizeof l2), 0) << l512 << " against " << l2;
                for (int i = 0; i < n; ++i) ASSERT_EQ(std::memcmp(&y512[i], &y2[i], sizeof(float)), 0) << i << ": " << y512[i] << " against " << y2[i];
            }
}

TEST(AttentionKernels, ElementwiseFunctionsMatchLibm) {
    for (bool force_scalar : {false, true}) {
        const KernelOptions kernels = scalar_kernels(force_scalar);
        std::vector<float> x;
        for (float v = -30.0f; v <= 30.0f; v += 0.0137f) x.push_back(v);
        for (float v : {0.0f, 1e-8f, -1e-8f, 0.6249f, 0.625f, 0.6251f, 88.0f, -100.0f, 200.0f}) x.push_back(v);
        const std::size_t n = x.size();
        std::vector<float> up(n), y(n), z(x);
        for (std::size_t i = 0; i < n; ++i) up[i] = 0.5f + static_cast<float>(i % 7) * 0.25f;
        vec_tanh(x.data(), y.data(), n, kernels);
        for (std::size_t i = 0; i < n; ++i) ASSERT_NEAR(y[i], std::tanh(static_cast<double>(x[i])), 2e-7 * std::fabs(std::tanh(x[i])) + 1e-9) << x[i];
        vec_softcap(z.data(), n, 30.0f, kernels);
        for (std::size_t i = 0; i < n; ++i) ASSERT_NEAR(z[i], 30.0 * std::tanh(x[i] / 30.0), 6e-6 * std::fabs(z[i]) + 1e-7) << x[i];
        vec_gelu_tanh_mul(x.data(), up.data(), y.data(), n, kernels);
        for (std::size_t i = 0; i < n; ++i) {
            const double g = x[i];
            const double ref = 0.5 * g * (1 + std::tanh(0.7978845608028654 * (g + 0.044715 * g * g * g))) * up[i];
            // 1 + tanh cancels for large negative g: one f32 ulp of 1, scaled by g * up.
            ASSERT_NEAR(y[i], ref, 1e-6 * std::fabs(ref) + 1.2e-7 * std::fabs(g * up[i]) + 1e-7) << x[i];
        }
        vec_silu_mul(x.data(), up.data(), y.data(), n, kernels);
        for (std::size_t i = 0; i < n; ++i) {
            const double g = x[i];
            const double ref = g / (1 + std::exp(-g)) * up[i];
            ASSERT_NEAR(y[i], ref, 1e-6 * std::fabs(ref) + 1e-7) << x[i];
        }
    }
}

}  // namespace
}  // namespace wp::test
