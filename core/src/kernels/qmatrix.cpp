// QMatrix: the size of a weight matrix and its rows widened back to f32 (sgemm's tiles, the
// reference product).
#include "kernels/qmatrix.h"

#include <cstring>
#include <vector>

#include "kernels/avx2_common.h"
#include "kernels/kernel_choice.h"
#include "kernels/q4_layout.h"
#include "kernels/q8_layout.h"
#include "wp/io/float16.h"
#include "kernels/ops.h"

namespace wp {

std::size_t QMatrix::bytes() const {
    const std::size_t n = static_cast<std::size_t>(rows) * cols;
    switch (precision) {
        case Precision::F32: return n * 4;
        case Precision::BF16: return n * 2;
        case Precision::Q8: return n + n / kQuantBlock * 2;
        case Precision::Q4: return n / 2 + n / kQuantBlock * 2;
    }
    return 0;
}

#if defined(__x86_64__)
namespace {
// The same widening, eight weights per step (prefill widens every weight once per call).
WP_AVX2 void dequantize_q8_avx2(const QMatrix& W, int r, float* o) {
    const int nb = W.cols / kQuantBlock;
    for (int b = 0; b < nb; ++b) {
        const __m256 d = _mm256_set1_ps(_cvtsh_ss(W.scales[q8_scale_index(r, b, W.rows, nb)]));
        std::int8_t q[kQuantBlock];
        load_q8_block(W.q8, r, b, W.rows, W.cols, q);
        for (int k = 0; k < 4; ++k) {
            const __m128i v = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(q + 8 * k));
            _mm256_storeu_ps(o + b * kQuantBlock + 8 * k, _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(v))));
        }
    }
}
WP_AVX2 void dequantize_q4_avx2(const QMatrix& W, int r, float* o) {
    const __m128i m4 = _mm_set1_epi8(0x0f), eight = _mm_set1_epi8(8);
    const int nb = W.cols / kQuantBlock;
    for (int b = 0; b < nb; ++b) {
        const __m256 d = _mm256_set1_ps(_cvtsh_ss(W.scales[q8_scale_index(r, b, W.rows, nb)]));
        std::uint8_t bytes[16];
        load_q4_block(W.q4, r, b, W.rows, W.cols, bytes);
        const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(bytes));
        const __m128i lo = _mm_sub_epi8(_mm_and_si128(v, m4), eight);                     // elements 0-15
        const __m128i hi = _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(v, 4), m4), eight);  // 16-31
        const __m128i parts[4] = {lo, _mm_srli_si128(lo, 8), hi, _mm_srli_si128(hi, 8)};
        for (int k = 0; k < 4; ++k)
            _mm256_storeu_ps(o + b * kQuantBlock + 8 * k, _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(parts[k]))));
    }
}
}  // namespace
#endif

void QMatrix::dequantize_rows(int r0, int r1, float* out, const KernelOptions& options) const {
    const int nb = cols / kQuantBlock;
    for (int r = r0; r < r1; ++r) {
        float* o = out + static_cast<std::size_t>(r - r0) * cols;
        const std::size_t base = static_cast<std::size_t>(r) * cols;
        switch (precision) {
            case Precision::F32: std::memcpy(o, f32 + base, sizeof(float) * cols); break;
            case Precision::BF16: ops::bf16_to_f32(bf16 + base, o, cols); break;
            case Precision::Q8:
#if defined(__x86_64__)
                if (use_avx2_kernels(options)) {
                    dequantize_q8_avx2(*this, r, o);
                    break;
                }
#endif
                for (int b = 0; b < nb; ++b) {
                    const float d = f16_to_f32(scales[q8_scale_index(r, b, rows, nb)]);
                    std::int8_t q[kQuantBlock];
                    load_q8_block(q8, r, b, rows, cols, q);
                    for (int i = 0; i < kQuantBlock; ++i) o[b * kQuantBlock + i] = d * q[i];
                }
                break;
            case Precision::Q4:
#if defined(__x86_64__)
                if (use_avx2_kernels(options)) {
                    dequantize_q4_avx2(*this, r, o);
                    break;
                }
#endif
                for (int b = 0; b < nb; ++b) {
                    const float d = f16_to_f32(scales[q8_scale_index(r, b, rows, nb)]);
                    std::uint8_t q[16];
                    load_q4_block(q4, r, b, rows, cols, q);
                    for (int i = 0; i < 16; ++i) {
                        o[b * kQuantBlock + i] = d * (static_cast<int>(q[i] & 0x0f) - 8);
                        o[b * kQuantBlock + i + 16] = d * (static_cast<int>(q[i] >> 4) - 8);
                    }
                }
                break;
        }
    }
}

void matvec_reference(const QMatrix& W, const float* x, float* y) {
    std::vector<float> row(W.cols);
    for (int r = 0; r < W.rows; ++r) {
        W.dequantize_rows(r, r + 1, row.data());
        double s = 0;
        for (int i = 0; i < W.cols; ++i) s += static_cast<double>(row[i]) * x[i];
        y[r] = static_cast<float>(s);
    }
}

}  // namespace wp
