// The matrix kernels of every precision (scalar, AVX2, AVX-512; decode, short prompts, int8
// product, sgemm tiles) against plain scalar references.
#include <gtest/gtest.h>

#include <cstdio>

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
#include "kernels/f16_vectors.h"
#include "kernels/ops.h"
#include "kernels/q4_layout.h"
#include "kernels/q8_layout.h"
#include "kernels/qmatrix.h"
#include "scalar_kernels.h"
#include "kernels/thread_pool.h"
#include "wp/model/model.h"

namespace wp::test {
namespace {

// Relative error bound of a quantized product: the input vector is quantized to int8 blocks too,
// so each block contributes up to |w|_1 * max|x| / 254.
float quant_bound(const std::vector<float>& deq_row, const float* x, int cols) {
    float bound = 0;
    for (int b = 0; b < cols / kQuantBlock; ++b) {
        float amax = 0, wsum = 0;
        for (int i = 0; i < kQuantBlock; ++i) {
            amax = std::max(amax, std::fabs(x[b * kQuantBlock + i]));
            wsum += std::fabs(deq_row[b * kQuantBlock + i]);
        }
        bound += wsum * amax / 254.0f;
    }
    return bound * 1.01f + 1e-5f;
}

class KernelTest : public testing::TestWithParam<Precision> {};

// The decode kernels the CPU can run: AVX2, and AVX-512 where it has VNNI (the default
// there); each check below runs with every one of them.
// Whether a product of `m` with more input rows than the decode kernels' limit takes the bf16
// dot products (which round the input to bf16).
bool takes_bf16_gemm(const QMatrix& m, const KernelOptions& kernels) {
    return m.precision == Precision::BF16 && m.cols % 32 == 0 && bf16_gemm_available(kernels);
}

// sum |w x| over row r of m: the scale of the int8 and bf16 products' rounding.
double magnitude(const QMatrix& m, int r, const float* x) {
    std::vector<float> row(m.cols);
    m.dequantize_rows(r, r + 1, row.data());
    double mag = 0;
    for (int i = 0; i < m.cols; ++i) mag += std::fabs(row[i] * x[i]);
    return mag;
}

KernelOptions decode_kernels(bool avx512) {
    KernelOptions o;
    o.avx512 = avx512;
    return o;
}
std::vector<bool> decode_kernel_sets() {
    if (avx512_decode_kernels(KernelOptions{})) return {true, false};
    std::printf("no AVX-512 VNNI here: the AVX2 decode kernels only\n");
    return {false};
}

TEST_P(KernelTest, MatvecMatchesScalarAndReference) {
    const Precision prec = GetParam();
    const bool quant = prec == Precision::Q8 || prec == Precision::Q4;
    ThreadPool pool(2);
    for (bool avx512 : decode_kernel_sets())
    for (auto [rows, cols] : std::vector<std::pair<int, int>>{{1, 32}, {7, 64}, {33, 96}, {130, 320}, {5, 37}, {17, 200}, {9, 224}, {6, 48}, {4, 212}, {3, 4864}, {4, 544}, {5, 512}, {3, 6144}}) {
        if (quant && cols % kQuantBlock) continue;
        const KernelOptions kernels = decode_kernels(avx512);
        SCOPED_TRACE(std::to_string(rows) + "x" + std::to_string(cols) + (avx512 ? " AVX-512" : " AVX2"));
        const auto w = randn(static_cast<std::size_t>(rows) * cols, rows * 31 + cols);
        const auto x = randn(cols, cols + 7);
        WeightStorage st;
        const QMatrix m = make_qmatrix(prec, rows, cols, w.data(), nullptr, st);
        ASSERT_EQ(m.precision, prec);
        std::vector<float> ref(rows), fast(rows), scalar(rows);
        matvec_reference(m, x.data(), ref.data());
        KernelScratch ks;
        matvec(m, x.data(), fast.data(), pool, ks, kernels);
        matvec(m, x.data(), scalar.data(), pool, ks, scalar_kernels());
        std::vector<float> row(cols);
        for (int r = 0; r < rows; ++r) {
            EXPECT_NEAR(fast[r], scalar[r], 1e-4f * (1 + std::fabs(scalar[r]))) << "row " << r;
            m.dequantize_rows(r, r + 1, row.data());
            const float tol = quant ? quant_bound(row, x.data(), cols) : 1e-4f * (1 + std::fabs(ref[r]));
            EXPECT_NEAR(fast[r], ref[r], tol) << "row " << r;
        }
        // The dequantized weights stay close to the originals.
        // Rounding error per weight: half a step (q8: amax/127; bf16: 2^-8 relative), and for q4
        // (as Q4_0: amax maps to -8, so +amax clamps to 7) up to a whole step of amax/8.
        const float step = prec == Precision::Q8 ? 0.51f / 127 : prec == Precision::Q4 ? 1.01f / 8 : prec == Precision::BF16 ? 0.51f / 128 : 0.0f;
        for (int r = 0; r < rows; ++r) {
            m.dequantize_rows(r, r + 1, row.data());
            for (int b = 0; b * kQuantBlock < cols; ++b) {
                float amax = 0;
                for (int i = b * kQuantBlock; i < std::min(cols, (b + 1) * kQuantBlock); ++i) amax = std::max(amax, std::fabs(w[r * cols + i]));
                for (int i = b * kQuantBlock; i < std::min(cols, (b + 1) * kQuantBlock); ++i)
                    ASSERT_LE(std::fabs(row[i] - w[r * cols + i]), amax * step + 1e-6f) << "row " << r << " col " << i;
            }
        }
    }
}

// One scratch for products of different widths, wide before narrow, as a forward pass uses it
// (down_proj's input is wider than the next layer's q/k/v): nothing of a wider input may leak
// into a narrower product through the scratch's padding.
TEST_P(KernelTest, ScratchReusedAcrossWidths) {
    const Precision prec = GetParam();
    const bool quant = prec == Precision::Q8 || prec == Precision::Q4;
    ThreadPool pool(2);
    for (bool avx512 : decode_kernel_sets()) {
    const KernelOptions kernels = decode_kernels(avx512);
    KernelScratch ks;
    for (auto [rows, cols] : std::vector<std::pair<int, int>>{{19, 4864}, {21, 896}, {11, 2304}, {13, 96}, {9, 1536}, {7, 160}}) {
        SCOPED_TRACE(std::to_string(rows) + "x" + std::to_string(cols) + (avx512 ? " AVX-512" : " AVX2"));
        const auto w = randn(static_cast<std::size_t>(rows) * cols, rows * 17 + cols);
        const auto x = randn(cols, cols + 3);
        WeightStorage st;
        const QMatrix m = make_qmatrix(prec, rows, cols, w.data(), nullptr, st);
        std::vector<float> ref(rows), fast(rows), row(cols);
        matvec_reference(m, x.data(), ref.data());
        matvec(m, x.data(), fast.data(), pool, ks, kernels);
        for (int r = 0; r < rows; ++r) {
            m.dequantize_rows(r, r + 1, row.data());
            const float tol = quant ? quant_bound(row, x.data(), cols) : 1e-4f * (1 + std::fabs(ref[r]));
            EXPECT_NEAR(fast[r], ref[r], tol) << "row " << r;
        }
    }
    }
}

// Quantization at load gives the same bytes on every path: scalar, AVX2, on a pool's threads,
// from f32 or from bf16 values; blocks of zeros, ties for the largest magnitude (the first one
// sets the q4 scale's sign) and values on rounding boundaries included. Widening back gives the
// same floats on both paths.
TEST(Kernels, QuantizationIsTheSameOnEveryPath) {
    for (Precision prec : {Precision::Q8, Precision::Q4}) {
        SCOPED_TRACE(precision_name(prec));
        const int rows = 259, cols = 320;  // large enough for the pool to be used
        auto w = randn(static_cast<std::size_t>(rows) * cols, 11);
        for (int i = 0; i < 32; ++i) w[64 + i] = 0.0f;                                   // a zero block
        w[128] = 5.5f, w[140] = -5.5f;                                                  // a tie, positive first
        w[160 + 3] = -6.0f, w[160 + 30] = 6.0f;                                         // a tie, negative first
        for (int i = 0; i < 32; ++i) w[192 + i] = static_cast<float>(i - 16) * 0.125f;  // exact halves
        std::vector<std::uint16_t> bf(w.size());
        for (std::size_t i = 0; i < w.size(); ++i) bf[i] = ops::f32_to_bf16(w[i]);
        ThreadPool pool(3);
        for (bool from_bf16 : {false, true}) {
            SCOPED_TRACE(from_bf16 ? "from bf16" : "from f32");
            const float* f = from_bf16 ? nullptr : w.data();
            const std::uint16_t* b = from_bf16 ? bf.data() : nullptr;
            WeightStorage st;
            const QMatrix scalar = make_qmatrix(prec, rows, cols, f, b, st, nullptr, scalar_kernels());
            const QMatrix fast = make_qmatrix(prec, rows, cols, f, b, st);
            const QMatrix pooled = make_qmatrix(prec, rows, cols, f, b, st, &pool);
            const std::size_t nb = static_cast<std::size_t>(rows) * cols / kQuantBlock;
            const std::size_t qbytes = static_cast<std::size_t>(rows) * cols / (prec == Precision::Q4 ? 2 : 1);
            for (const QMatrix* m : {&fast, &pooled}) {
                ASSERT_EQ(0, std::memcmp(scalar.scales, m->scales, nb * 2));
                const void* a = prec == Precision::Q4 ? static_cast<const void*>(scalar.q4) : scalar.q8;
                const void* c = prec == Precision::Q4 ? static_cast<const void*>(m->q4) : m->q8;
                ASSERT_EQ(0, std::memcmp(a, c, qbytes));
            }
            // Widening back (prefill's tiles, the reference products): the same floats on both paths.
            std::vector<float> wide_scalar(static_cast<std::size_t>(rows) * cols), wide(wide_scalar.size());
            scalar.dequantize_rows(0, rows, wide_scalar.data(), scalar_kernels());
            fast.dequantize_rows(0, rows, wide.data());
            ASSERT_EQ(0, std::memcmp(wide_scalar.data(), wide.data(), wide.size() * sizeof(float)));
            // The tie blocks: the first of the two values sets the sign of the q4 scale.
            if (prec == Precision::Q4) {
                EXPECT_LT(ops::f16_to_f32(scalar.scales[q8_scale_index(0, 4, rows, cols / kQuantBlock)]), 0.0f);
                EXPECT_GT(ops::f16_to_f32(scalar.scales[q8_scale_index(0, 5, rows, cols / kQuantBlock)]), 0.0f);
            }
        }
    }
}

// Prompt products: up to few_rows_limit input rows run the decode kernels, so each row gives
// exactly what a product with that row alone gives; more rows go through sgemm on widened
// weights and match the double-precision reference (q8/q4 inputs are not quantized there).
TEST_P(KernelTest, MatmulMatchesRowByRow) {
    const Precision prec = GetParam();
    const bool quantized = prec == Precision::Q8 || prec == Precision::Q4;
    ThreadPool pool(2);
    const int rows = 45;
    // Where the int8 product runs, q8/q4 take it from two input rows on: the decode kernels'
    // path for several rows is then checked with a forced limit.
    const int forced = few_rows_limit(prec, KernelOptions{}) < 2 ? 48 : -1;
    KernelOptions limited;
    limited.few_rows_limit = forced;
    const int limit = few_rows_limit(prec, limited);
    ASSERT_GE(limit, 2);
    for (bool avx512 : decode_kernel_sets()) {
    KernelOptions kernels = decode_kernels(avx512);
    kernels.few_rows_limit = forced;
    SCOPED_TRACE(avx512 ? "AVX-512 kernels" : "AVX2 kernels");
    // Below, at and above the limit; past 64 rows the decode kernels' path takes a second batch.
    std::vector<int> counts = {2, 5, limit, limit + 1};
    if (limit > 64) counts.push_back(67);
    // 4, 9 and 13 blocks of 32: q4's half step alone, a full step and one block, a full step
    // and a step that runs past the row's end.
    // One scratch throughout, widest first: a narrower product must not see the wider one's
    // leftovers.
    KernelScratch ks;
    for (int cols : {416, 288, 212, 128, 37}) {
        // 212 and 37 (not whole blocks: f32/bf16 only): the vector kernels' tails and the
        // scalar remainder, summed in the same order on the prompt and decode paths.
        if (quantized && cols % kQuantBlock) continue;
        const auto w = randn(static_cast<std::size_t>(rows) * cols, 3);
        WeightStorage st;
        const QMatrix m = make_qmatrix(prec, rows, cols, w.data(), nullptr, st);
        for (int n : counts) {
            SCOPED_TRACE("rows of input: " + std::to_string(n) + ", columns: " + std::to_string(cols));
            const auto X = randn(static_cast<std::size_t>(n) * cols, 4 + n);
            std::vector<float> Y(static_cast<std::size_t>(n) * rows, -1.0f), one(rows), ref(rows);
            matmul(m, X.data(), n, Y.data(), pool, ks, kernels);
            for (int t = 0; t < n; ++t) {
                if (n <= limit) {
                    matvec(m, X.data() + static_cast<std::size_t>(t) * cols, one.data(), pool, ks, kernels);
                    for (int r = 0; r < rows; ++r) ASSERT_EQ(Y[t * rows + r], one[r]) << "row " << t << ", " << r;
                } else if (quantized && int8_gemm_available(kernels)) {
                    // The int8 product rounds the input as the decode kernels do.
                    matvec(m, X.data() + static_cast<std::size_t>(t) * cols, one.data(), pool, ks, kernels);
                    for (int r = 0; r < rows; ++r)
                        ASSERT_NEAR(Y[t * rows + r], one[r], 1e-4f * (1 + std::fabs(one[r]))) << "row " << t << ", " << r;
                } else if (takes_bf16_gemm(m, kernels)) {
                    const float* x = X.data() + static_cast<std::size_t>(t) * cols;
                    matvec_reference(m, x, ref.data());
                    for (int r = 0; r < rows; ++r)
                        ASSERT_NEAR(Y[t * rows + r], ref[r], 0x1p-8 * magnitude(m, r, x) + 1e-6) << "row " << t << ", " << r;
                } else {
                    matvec_reference(m, X.data() + static_cast<std::size_t>(t) * cols, ref.data());
                    for (int r = 0; r < rows; ++r)
                        ASSERT_NEAR(Y[t * rows + r], ref[r], 1e-4f * (1 + std::fabs(ref[r]))) << "row " << t << ", " << r;
                }
            }
        }
    }
    }
}

// The int8 product (q8/q4 prompts on CPUs with AVX-512 VNNI) against the decode kernels row by
// row: both round each input row to the same int8 blocks and sum each block exactly, so they
// differ only in the order of the float additions over blocks. Weight-row counts that are not a
// multiple of the 32-row groups (and under 16: one half empty), input-row counts that leave every
// tail of the 4-row tiles, widths of one block up to down_proj's, and one scratch throughout.
// With the path switched off the same products go through sgemm (checked in
// MatmulMatchesRowByRow on CPUs without VNNI).
TEST(Kernels, Int8GemmMatchesDecodeKernels) {
    if (!int8_gemm_available(KernelOptions{})) GTEST_SKIP() << "this CPU has no AVX-512 VNNI: the int8 product does not run here";
    ThreadPool pool(2);
    KernelScratch ks;
    KernelOptions kernels;
    kernels.few_rows_limit = 1;  // every count of input rows from two on
    for (Precision prec : {Precision::Q8, Precision::Q4})
        for (auto [rows, cols] : std::vector<std::pair<int, int>>{{45, 4864}, {100, 896}, {7, 32}, {32, 288}, {33, 64}, {16, 128}}) {
            const auto w = randn(static_cast<std::size_t>(rows) * cols, rows * 7 + cols);
            WeightStorage st;
            const QMatrix m = make_qmatrix(prec, rows, cols, w.data(), nullptr, st);
            for (int n : {2, 3, 4, 5, 6, 7, 9, 70}) {  // every tail of the 4-row tiles
                SCOPED_TRACE(std::string(precision_name(prec)) + " " + std::to_string(rows) + "x" + std::to_string(cols) +
                             ", input rows " + std::to_string(n));
                const auto X = randn(static_cast<std::size_t>(n) * cols, 11 + n + cols);
                std::vector<float> Y(static_cast<std::size_t>(n) * rows + 1, -7.0f), one(rows);
                matmul(m, X.data(), n, Y.data(), pool, ks, kernels);
                ASSERT_EQ(Y.back(), -7.0f) << "wrote past the output";
                // Every output written (a masked store one row short would leave a -7).
                for (float v : Y) ASSERT_TRUE(std::isfinite(v));
                for (int t = 0; t < n; ++t) {
                    const float* x = X.data() + static_cast<std::size_t>(t) * cols;
                    matvec(m, x, one.data(), pool, ks, kernels);
                    for (int r = 0; r < rows; ++r) {
                        // Float rounding: at most ~150 float epsilons of sum |w x| (nb <= 152
                        // block terms), far below one block's share of it, which a wrong scale or
                        // correction moves. (The two agree bit for bit: QuantizedPathsAgreeBitForBit.)
                        ASSERT_NEAR(Y[static_cast<std::size_t>(t) * rows + r], one[r], 1e-5 * magnitude(m, r, x) + 1e-6)
                            << "row " << t << ", " << r;
                    }
                }
            }
        }
}

// q8 and q4 are stored in panels of 16 rows (q8_layout.h, q4_layout.h): every byte and scale of
// every row has a place of its own, inside the matrix, whatever the last panel holds.
TEST(Kernels, PanelLayoutsPlaceEveryByteOnce) {
    for (auto [rows, cols] : std::vector<std::pair<int, int>>{{1, 32}, {16, 64}, {17, 96}, {45, 288}, {40, 32}}) {
        const int nb = cols / kQuantBlock;
        std::vector<int> seen(static_cast<std::size_t>(rows) * cols, 0), seen4(seen.size() / 2, 0),
            scales(static_cast<std::size_t>(rows) * nb, 0);
        for (int r = 0; r < rows; ++r)
            for (int b = 0; b < nb; ++b) {
                for (int i = 0; i < kQuantBlock; ++i) ++seen.at(q8_offset(r, b, i, rows, cols));
                for (int i = 0; i < kQuantBlock / 2; ++i) ++seen4.at(q4_offset(r, b, i, rows, cols));
                ++scales.at(q8_scale_index(r, b, rows, nb));
            }
        for (int c : seen) ASSERT_EQ(c, 1) << "q8 " << rows << "x" << cols;
        for (int c : seen4) ASSERT_EQ(c, 1) << "q4 " << rows << "x" << cols;
        for (int c : scales) ASSERT_EQ(c, 1) << rows << "x" << cols;
    }
}

// Every q8 and q4 path computes each block's exact integer sum times (weight scale x input
// scale), added with one fma, block after block: the scalar, AVX2, AVX-512 and (q8) AMX decode
// kernels, one input row or several at once (AMX: up to 16 per tile, then the rest), and the int8
// product give the same floats. Shapes with a last panel of 8, 13, 7 and 1 rows, one block to 152
// per row.
TEST(Kernels, QuantizedPathsAgreeBitForBit) {
    ThreadPool pool(2);
    KernelScratch ks;
    for (Precision prec : {Precision::Q8, Precision::Q4})
    for (auto [rows, cols] : std::vector<std::pair<int, int>>{{1000, 64}, {45, 288}, {7, 32}, {33, 4864}, {16, 96}, {17, 128}}) {
        SCOPED_TRACE(std::string(precision_name(prec)) + " " + std::to_string(rows) + "x" + std::to_string(cols));
        const auto w = randn(static_cast<std::size_t>(rows) * cols, rows + 3 * cols);
        WeightStorage st;
        const QMatrix m = make_qmatrix(prec, rows, cols, w.data(), nullptr, st);
        const int n = 20;
        const auto X = randn(static_cast<std::size_t>(n) * cols, cols + 5);
        KernelOptions scalar;
        scalar.force_scalar = true;
        std::vector<float> ref(static_cast<std::size_t>(n) * rows);
        for (int t = 0; t < n; ++t)
            matvec(m, X.data() + static_cast<std::size_t>(t) * cols, ref.data() + static_cast<std::size_t>(t) * rows, pool, ks,
                   scalar);
        std::vector<std::pair<std::string, KernelOptions>> paths;
        KernelOptions o;
        o.few_rows_limit = n;
        if (use_avx2_kernels(KernelOptions{})) {
            o.avx512 = false;
            paths.push_back({"AVX2 decode kernels", o});
        }
        if (avx512_decode_kernels(KernelOptions{})) {
            o.avx512 = true;
            o.amx = false;
            paths.push_back({"AVX-512 decode kernels", o});
        }
        if (amx_int8_available(KernelOptions{})) {
            o.amx = true;
            paths.push_back({"AMX decode kernels", o});
        }
        if (int8_gemm_available(KernelOptions{})) {
            o.few_rows_limit = 1;
            o.amx = true;
            paths.push_back({"int8 product", o});
        }
        for (const auto& [name, kernels] : paths) {
            SCOPED_TRACE(name);
            for (int rows_in : {1, 2, 5, 6, 16, 17, n}) {
                std::vector<float> Y(static_cast<std::size_t>(rows_in) * rows, -7.0f);
                matmul(m, X.data(), rows_in, Y.data(), pool, ks, kernels);
                for (std::size_t i = 0; i < Y.size(); ++i) ASSERT_EQ(Y[i], ref[i]) << rows_in << " input rows, output " << i;
            }
        }
    }
}

// The bf16 product (bf16 prompts on CPUs with AVX-512 BF16) against the weights widened to f32:
// the input rounded to bf16 (2^-9 relative) bounds each output's error by 2^-8 x sum |w x|, far
// below what a wrong pair, row or lane would cost. Weight-row counts that are not a multiple of
// the 32-row groups (and under 16: one half empty), input-row counts that leave every tail of
// the 8-row tiles (AVX-512) and of the 16- and 32-row blocks (AMX), widths of one 32 up to
// down_proj's, and one scratch throughout. Returns the worst |error| / sum |w x|.
double check_bf16_product(const KernelOptions& kernels) {
    ThreadPool pool(2);
    KernelScratch ks;
    double worst = 0;
    for (auto [rows, cols] : std::vector<std::pair<int, int>>{{45, 4864}, {100, 896}, {7, 32}, {32, 288}, {33, 64}, {16, 9216}}) {
        const auto w = randn(static_cast<std::size_t>(rows) * cols, rows * 5 + cols);
        WeightStorage st;
        const QMatrix m = make_qmatrix(Precision::BF16, rows, cols, w.data(), nullptr, st);
        for (int n : {2, 3, 4, 5, 6, 7, 8, 11, 13, 16, 17, 31, 32, 33, 48, 70}) {
            SCOPED_TRACE(std::to_string(rows) + "x" + std::to_string(cols) + ", input rows " + std::to_string(n));
            const auto X = randn(static_cast<std::size_t>(n) * cols, 17 + n + cols);
            std::vector<float> Y(static_cast<std::size_t>(n) * rows + 1, -7.0f), ref(rows);
            matmul(m, X.data(), n, Y.data(), pool, ks, kernels);
            EXPECT_EQ(Y.back(), -7.0f) << "wrote past the output";
            for (int t = 0; t < n; ++t) {
                const float* x = X.data() + static_cast<std::size_t>(t) * cols;
                matvec_reference(m, x, ref.data());
                for (int r = 0; r < rows; ++r) {
                    const double mag = magnitude(m, r, x);
                    const double err = std::fabs(Y[static_cast<std::size_t>(t) * rows + r] - ref[r]);
                    EXPECT_LE(err, 0x1p-8 * mag + 1e-6) << "row " << t << ", " << r;
                    if (err > 0x1p-8 * mag + 1e-6) return worst;
                    worst = std::max(worst, err / mag);
                }
            }
        }
    }
    return worst;
}

TEST(Kernels, Bf16GemmMatchesWidenedWeights) {
    if (!bf16_gemm_available(KernelOptions{})) GTEST_SKIP() << "this CPU has no AVX-512 BF16: the bf16 product does not run here";
    KernelOptions kernels;
    kernels.few_rows_limit = 1;  // every count of input rows from two on
    kernels.amx = false;
    const double worst = check_bf16_product(kernels);
    // The measured bound, for the record (docs/KERNELS.md quotes it).
    RecordProperty("worst_error_over_sum_abs_wx", std::to_string(worst));
    std::printf("bf16 product: worst |error| / sum |w x| = %.3g\n", worst);
}

// The same on AMX tiles, where the CPU has AMX-BF16 (and the OS grants the tiles).
TEST(Kernels, Bf16AmxMatchesWidenedWeights) {
    if (!amx_bf16_available(KernelOptions{})) GTEST_SKIP() << "this CPU (or its OS) offers no AMX-BF16: the tiles do not run here";
    KernelOptions kernels;
    kernels.few_rows_limit = 1;
    const double worst = check_bf16_product(kernels);
    RecordProperty("worst_error_over_sum_abs_wx", std::to_string(worst));
    std::printf("bf16 product on AMX tiles: worst |error| / sum |w x| = %.3g\n", worst);
}

TEST(Kernels, Bf16FromTheFileIsUsedInPlace) {
    std::vector<std::uint16_t> h(64 * 3);
    const auto w = randn(h.size(), 9);
    for (std::size_t i = 0; i < h.size(); ++i) h[i] = ops::f32_to_bf16(w[i]);
    WeightStorage st;
    const QMatrix m = make_qmatrix(Precision::BF16, 3, 64, nullptr, h.data(), st);
    EXPECT_EQ(m.bf16, h.data());  // no copy
    EXPECT_TRUE(st.mappings().empty());
    EXPECT_EQ(m.bytes(), h.size() * 2);
}

TEST(Kernels, HalfPrecisionKvHelpers) {
    for (int n : {1, 8, 15, 16, 48, 257}) {
        const auto a = randn(n, n + 3), x = randn(n, n + 4);
        std::vector<std::uint16_t> h(n);
        f32_to_f16_array(x.data(), h.data(), n);
        std::vector<float> back(n);
        f16_to_f32_array(h.data(), back.data(), n);
        double ref = 0;
        for (int i = 0; i < n; ++i) {
            EXPECT_NEAR(back[i], x[i], std::fabs(x[i]) * 1e-3 + 1e-7) << "f16 rounding";
            ref += static_cast<double>(a[i]) * back[i];
        }
        EXPECT_NEAR(dot_f32_f16(a.data(), h.data(), n), ref, 1e-4 * (1 + std::fabs(ref)));
        std::vector<float> y(a), want(a);
        axpy_f16(0.5f, h.data(), y.data(), n);
        for (int i = 0; i < n; ++i) EXPECT_NEAR(y[i], want[i] + 0.5f * back[i], 1e-5);
    }
}

TEST(Kernels, DotF32) {
    for (int n : {0, 1, 15, 16, 33, 257}) {
        const auto a = randn(n, n + 1), b = randn(n, n + 2);
        double ref = 0;
        for (int i = 0; i < n; ++i) ref += static_cast<double>(a[i]) * b[i];
        EXPECT_NEAR(dot_f32(a.data(), b.data(), n), ref, 1e-4 * (1 + std::fabs(ref)));
    }
}

// Several matrices sharing one input: each output row is what that matrix gives for that input
// row alone (bit for bit on the decode kernels' path, within 1e-4 of the double reference on
// sgemm's), for every precision, one input row or several (67: a second batch of 64), on both
// paths, and for a mix of precisions (which falls back to separate products).
TEST(Kernels, MatmulMultiMatchesRowByRow) {
    ThreadPool pool(2);
    KernelScratch ks;
    for (Precision p : {Precision::F32, Precision::BF16, Precision::Q8, Precision::Q4})
        for (int n : {1, 3, 67})
            for (int limit : {-1, 1 << 20})
                for (bool mixed : {false, true}) {
                    SCOPED_TRACE(std::string(precision_name(p)) + " n=" + std::to_string(n) + " limit=" +
                                 std::to_string(limit) + (mixed ? " mixed" : ""));
                    KernelOptions kernels;
                    kernels.few_rows_limit = limit;
                    const int cols = 96;
                    const int rows[3] = {37, 5, 64};
                    WeightStorage st;
                    std::vector<std::vector<float>> w;  // f32 matrices are views of these
                    std::vector<QMatrix> ms;
                    for (int i = 0; i < 3; ++i) {
                        w.push_back(randn(static_cast<std::size_t>(rows[i]) * cols, 40 + i));
                        ms.push_back(
                            make_qmatrix(mixed && i == 1 ? Precision::F32 : p, rows[i], cols, w.back().data(), nullptr, st));
                    }
                    const auto X = randn(static_cast<std::size_t>(n) * cols, 99);
                    std::vector<float> fused[3];
                    for (int i = 0; i < 3; ++i) fused[i].assign(static_cast<std::size_t>(n) * rows[i], -1.0f);
                    const QMatrix* Ws[3] = {&ms[0], &ms[1], &ms[2]};
                    float* ys[3] = {fused[0].data(), fused[1].data(), fused[2].data()};
                    matmul_multi(Ws, X.data(), n, ys, 3, pool, ks, kernels);
                    for (int i = 0; i < 3; ++i) {
                        const bool quantized = ms[i].precision == Precision::Q8 || ms[i].precision == Precision::Q4;
                        const bool few = n <= few_rows_limit(ms[i].precision, kernels);
                        // The int8 product rounds the input as the decode kernels do.
                        const bool int8 = !few && quantized && int8_gemm_available(kernels);
                        const bool bf16 = !few && takes_bf16_gemm(ms[i], kernels);
                        std::vector<float> want(rows[i]);
                        for (int t = 0; t < n; ++t) {
                            const float* x = X.data() + static_cast<std::size_t>(t) * cols;
                            if (few || int8) matvec(ms[i], x, want.data(), pool, ks, kernels);
                            else matvec_reference(ms[i], x, want.data());
                            for (int r = 0; r < rows[i]; ++r) {
                                const float got = fused[i][static_cast<std::size_t>(t) * rows[i] + r];
                                if (few) ASSERT_EQ(got, want[r]) << i << " " << t << " " << r;
                                else if (bf16) ASSERT_NEAR(got, want[r], 0x1p-8 * magnitude(ms[i], r, x) + 1e-6) << i << " " << t << " " << r;
                                else ASSERT_NEAR(got, want[r], 1e-4f * (1 + std::fabs(want[r]))) << i << " " << t << " " << r;
                            }
                        }
                    }
                }
}

INSTANTIATE_TEST_SUITE_P(Precisions, KernelTest,
                         testing::Values(Precision::F32, Precision::BF16, Precision::Q8, Precision::Q4),
                         [](const auto& info) { return std::string(precision_name(info.param)); });

}  // namespace
}  // namespace wp::test
