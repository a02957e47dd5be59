// The AVX2/FMA decode kernels (matvec_kernels.h). Prefetch distances and their measurements:
// docs/KERNELS.md, "Decode kernels".
#include "kernels/matvec_kernels.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstring>

#include "kernels/avx2_common.h"
#include "kernels/q8_layout.h"
#include "wp/io/float16.h"

#if defined(__x86_64__)

namespace wp {

using avx2::hsum;

namespace {

// How far ahead of the weights being read the f32 decode kernel prefetches (into L1); q4 reads
// 3 KB ahead into L1. Rows (q8, q4: panels of rows) are contiguous, so the prefetch runs on into
// the following ones.
constexpr int kPrefetchFarAvx2 = 6144;
constexpr int kPrefetchQ4Avx2 = 3072;
// bf16 decoding, one row at a time: 4 KB ahead into L2 and 2 KB into L1, faster than 6 KB into
// L2 alone (docs/KERNELS.md).
constexpr int kPrefetchBf16L2 = 4096, kPrefetchBf16L1 = 2048;
// q8's panels: 4 KB ahead into L2 and 2 KB into L1, as the AVX-512 kernel.
constexpr int kPrefetchQ8L2 = 4096, kPrefetchQ8L1 = 2048;

// R rows' sums (R = 1 decoding, R = 3 a short prompt, sharing the loads of x), each in the order
// every f32 path uses, so that a prompt row equals decoding it: four sums over steps of 32
// floats, the rest in steps of 8 into the first, added as (0+1)+(2+3), then the scalar tail
// (fused on every path alike). Each step prefetches as many bytes at `pf` as it reads of the rows.
template <int R>
WP_AVX2 inline void sum_rows_f32_avx2(const float* w0, int cols, const float* x, float* y, const char* pf) {
    __m256 a[R][4];
    for (auto& row : a)
        for (auto& v : row) v = _mm256_setzero_ps();
    int i = 0;
    for (; i + 32 <= cols; i += 32) {
        for (int k = 0; k < 2 * R; ++k) _mm_prefetch(pf + 4 * R * i + 64 * k, _MM_HINT_T0);
        for (int k = 0; k < 4; ++k) {
            const __m256 xv = _mm256_loadu_ps(x + i + 8 * k);
            for (int j = 0; j < R; ++j)
                a[j][k] = _mm256_fmadd_ps(_mm256_loadu_ps(w0 + static_cast<std::size_t>(j) * cols + i + 8 * k), xv, a[j][k]);
        }
    }
    for (; i + 8 <= cols; i += 8) {
        const __m256 xv = _mm256_loadu_ps(x + i);
        for (int j = 0; j < R; ++j)
            a[j][0] = _mm256_fmadd_ps(_mm256_loadu_ps(w0 + static_cast<std::size_t>(j) * cols + i), xv, a[j][0]);
    }
    for (int j = 0; j < R; ++j) {
        const float* w = w0 + static_cast<std::size_t>(j) * cols;
        float s = hsum(_mm256_add_ps(_mm256_add_ps(a[j][0], a[j][1]), _mm256_add_ps(a[j][2], a[j][3])));
        for (int c = i; c < cols; ++c) s = std::fma(w[c], x[c], s);
        y[j] = s;
    }
}

}  // namespace

// Decoding (`stream`): one row after another, 6 KB ahead prefetched into L1. A few input rows
// (a short prompt, with the weight rows in cache): three rows at a time, prefetching the next
// three.
WP_AVX2 void rows_f32_avx2(const float* W, int cols, const float* x, float* y, int r0, int r1, bool stream) {
    int r = r0;
    for (; !stream && r + 3 <= r1; r += 3) {
        const float* w = W + static_cast<std::size_t>(r) * cols;
        sum_rows_f32_avx2<3>(w, cols, x, y + r, reinterpret_cast<const char*>(w + 3 * static_cast<std::size_t>(cols)));
    }
    for (; r < r1; ++r) {
        const float* w = W + static_cast<std::size_t>(r) * cols;
        sum_rows_f32_avx2<1>(w, cols, x, y + r, reinterpret_cast<const char*>(w) + kPrefetchFarAvx2);
    }
}

// bf16 pairs read as 32-bit words: the even element is the low half (shift it up), the odd one
// the high half (mask the low bits away); no shuffles. The input vector is pre-split into the
// even and odd elements of each 16-block (xp), so each 16 weights cost one load, one shift, one
// and, two FMAs.
//
// Decoding (`stream`) reads the rows one after another and prefetches 4 KB ahead into L2 and 2 KB
// into L1: one stream per thread is what the hardware prefetchers follow best.
// Several input rows (a short prompt, whose 16 weight rows stay in cache) take four rows at a
// time, sharing the loads of the input. Both sum each row in the same order.
WP_AVX2 void rows_bf16_avx2(const std::uint16_t* W, int cols, const float* xp, const float* x, float* y, int r0, int r1,
                            bool stream) {
    const int main = cols / 16 * 16;
    const __m256i hi_mask = _mm256_set1_epi32(static_cast<int>(0xffff0000u));
    int r = r0;
    for (; !stream && r + 4 <= r1; r += 4) {
        const std::uint16_t* w[4];
        for (int k = 0; k < 4; ++k) w[k] = W + static_cast<std::size_t>(r + k) * cols;
        __m256 ae[4], ao[4];
        for (int k = 0; k < 4; ++k) ae[k] = ao[k] = _mm256_setzero_ps();
        // The next four rows while these are summed (each step consumes 128 bytes here and
        // touches the next 128 bytes there): the first input row run against a block of rows
        // reads them from memory.
        const char* next = reinterpret_cast<const char*>(w[3] + cols);
        for (int i = 0; i < main; i += 16) {
            _mm_prefetch(next + 8 * i, _MM_HINT_T0);
            _mm_prefetch(next + 8 * i + 64, _MM_HINT_T0);
            const __m256 xe = _mm256_loadu_ps(xp + i), xo = _mm256_loadu_ps(xp + i + 8);
            for (int k = 0; k < 4; ++k) {
                const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w[k] + i));
                ae[k] = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_slli_epi32(v, 16)), xe, ae[k]);
                ao[k] = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_and_si256(v, hi_mask)), xo, ao[k]);
            }
        }
        for (int k = 0; k < 4; ++k) {
            float s = hsum(_mm256_add_ps(ae[k], ao[k]));
            for (int i = main; i < cols; ++i) s += bf16_to_f32(w[k][i]) * x[i];
            y[r + k] = s;
        }
    }
    for (; r < r1; ++r) {
        const std::uint16_t* w0 = W + static_cast<std::size_t>(r) * cols;
        __m256 ae = _mm256_setzero_ps(), ao = ae;
        for (int i = 0; i < main; i += 16) {
            if (stream && i % 32 == 0) {
                _mm_prefetch(reinterpret_cast<const char*>(w0 + i) + kPrefetchBf16L2, _MM_HINT_T1);
                _mm_prefetch(reinterpret_cast<const char*>(w0 + i) + kPrefetchBf16L1, _MM_HINT_T0);
            }
            const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w0 + i));
            ae = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_slli_epi32(v, 16)), _mm256_loadu_ps(xp + i), ae);
            ao = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_and_si256(v, hi_mask)), _mm256_loadu_ps(xp + i + 8), ao);
        }
        float s = hsum(_mm256_add_ps(ae, ao));
        for (int i = main; i < cols; ++i) s += bf16_to_f32(w0[i]) * x[i];
        y[r] = s;
    }
}

namespace {

// Block b's exact sums of a panel's rows 0-7 (s0) and 8-15 (s1), scaled by weight scale x input
// scale and added with one fma each (Tail: a last panel of m < 16 rows, its scales m per block).
template <bool Tail>
WP_AVX2 inline void add_block_avx2(const std::uint16_t* ws, int m, int b, float xd, __m256i s0, __m256i s1, __m256& acc0,
                                   __m256& acc1) {
    __m256 d0, d1;
    if (Tail) {
        std::uint16_t sc[16] = {};
        std::memcpy(sc, ws + static_cast<std::size_t>(m) * b, 2 * static_cast<std::size_t>(m));
        d0 = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(sc)));
        d1 = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(sc + 8)));
    } else {
        d0 = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(ws + 16 * b)));
        d1 = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(ws + 16 * b + 8)));
    }
    const __m256 dx = _mm256_set1_ps(xd);
    acc0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s0), _mm256_mul_ps(d0, dx), acc0);
    acc1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s1), _mm256_mul_ps(d1, dx), acc1);
}

// q8 on a panel of weight rows (q8_layout.h), rows 0-7 in acc0's lanes and 8-15 in acc1's: per
// chunk, |w| against the broadcast input word with w's sign (maddubs multiplies unsigned by signed
// bytes; two products of |w| <= 128 and |x| <= 127 stay within int16), pairs summed to int32.
// Each block's exact sum is scaled and added with one fma, block after block, as every q8 kernel
// does (the AVX-512 and scalar ones give the same floats). Tail: a last panel of m < 16 rows,
// whose chunks are 4 m bytes apart and whose lanes past m are not read.
template <bool Tail>
WP_AVX2 inline void q8_panel_avx2(const std::uint8_t* w, const std::uint16_t* ws, int nb, int m, const std::int8_t* xq,
                                  const float* xd, __m256& acc0, __m256& acc1) {
    const __m256i ones = _mm256_set1_epi16(1), lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i mask0 = _mm256_cmpgt_epi32(_mm256_set1_epi32(m), lane);
    const __m256i mask1 = _mm256_cmpgt_epi32(_mm256_set1_epi32(m - 8), lane);
    const bool second = !Tail || m > 8;
    const std::size_t step = static_cast<std::size_t>(4 * m);
    for (int b = 0; b < nb; ++b) {
        const std::uint8_t* wb = w + 8 * step * b;
        __m256i s0 = _mm256_setzero_si256(), s1 = s0;
        for (int k = 0; k < 8; ++k) {
            _mm_prefetch(reinterpret_cast<const char*>(wb + step * k) + kPrefetchQ8L2, _MM_HINT_T1);
            _mm_prefetch(reinterpret_cast<const char*>(wb + step * k) + kPrefetchQ8L1, _MM_HINT_T0);
            std::int32_t xv;
            std::memcpy(&xv, xq + kQuantBlock * b + 4 * k, 4);
            const __m256i x = _mm256_set1_epi32(xv);
            const std::uint8_t* c = wb + step * k;
            const __m256i v0 = Tail ? _mm256_maskload_epi32(reinterpret_cast<const int*>(c), mask0)
                                    : _mm256_loadu_si256(reinterpret_cast<const __m256i*>(c));
            s0 = _mm256_add_epi32(s0, _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_sign_epi8(v0, v0), _mm256_sign_epi8(x, v0)), ones));
            if (second) {
                const __m256i v1 = Tail ? _mm256_maskload_epi32(reinterpret_cast<const int*>(c + 32), mask1)
                                        : _mm256_loadu_si256(reinterpret_cast<const __m256i*>(c + 32));
                s1 = _mm256_add_epi32(s1, _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_sign_epi8(v1, v1), _mm256_sign_epi8(x, v1)), ones));
            }
        }
        add_block_avx2<Tail>(ws, m, b, xd[b], s0, s1, acc0, acc1);
    }
}


// q4 on a panel of weight rows (q4_layout.h), rows 0-7 in acc0's lanes and 8-15 in acc1's, the
// nibbles kept unsigned (sum (u - 8) x = sum u x - 8 sum x): per chunk, the low nibbles against
// the broadcast input word of elements 4k..4k+3 and the high ones against 16+4k..16+4k+3
// (maddubs multiplies unsigned by signed bytes), summed in 16 bits over the block's four chunks
// (each maddubs adds two products u x with u <= 15 and |x| <= 127, 3810; eight of them, 30480 <
// 32767), then into one int32 per row that starts at the block's correction. Each block's exact
// sum is scaled and added with one fma, block after block, as every q4 kernel does (the AVX-512
// and scalar ones give the same floats). Tail as q8_panel_avx2.
template <bool Tail>
WP_AVX2 inline void q4_panel_avx2(const std::uint8_t* w, const std::uint16_t* ws, int nb, int m, const std::int8_t* xq,
                                  const std::int32_t* c4, const float* xd, __m256& acc0, __m256& acc1) {
    const __m256i ones = _mm256_set1_epi16(1), m4 = _mm256_set1_epi8(0x0f), lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i mask0 = _mm256_cmpgt_epi32(_mm256_set1_epi32(m), lane);
    const __m256i mask1 = _mm256_cmpgt_epi32(_mm256_set1_epi32(m - 8), lane);
    const bool second = !Tail || m > 8;
    const std::size_t step = static_cast<std::size_t>(4 * m);
    for (int b = 0; b < nb; ++b) {
        const std::uint8_t* wb = w + 4 * step * b;
        __m256i s0 = _mm256_setzero_si256(), s1 = s0;
        for (int k = 0; k < 4; ++k) {
            const std::uint8_t* c = wb + step * k;
            _mm_prefetch(reinterpret_cast<const char*>(c) + kPrefetchQ4Avx2, _MM_HINT_T0);
            std::int32_t xl, xh;
            std::memcpy(&xl, xq + kQuantBlock * b + 4 * k, 4);
            std::memcpy(&xh, xq + kQuantBlock * b + 16 + 4 * k, 4);
            const __m256i lo = _mm256_set1_epi32(xl), hi = _mm256_set1_epi32(xh);
            const __m256i v0 = Tail ? _mm256_maskload_epi32(reinterpret_cast<const int*>(c), mask0)
                                    : _mm256_loadu_si256(reinterpret_cast<const __m256i*>(c));
            s0 = _mm256_add_epi16(s0, _mm256_maddubs_epi16(_mm256_and_si256(v0, m4), lo));
            s0 = _mm256_add_epi16(s0, _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(v0, 4), m4), hi));
            if (second) {
                const __m256i v1 = Tail ? _mm256_maskload_epi32(reinterpret_cast<const int*>(c + 32), mask1)
                                        : _mm256_loadu_si256(reinterpret_cast<const __m256i*>(c + 32));
                s1 = _mm256_add_epi16(s1, _mm256_maddubs_epi16(_mm256_and_si256(v1, m4), lo));
                s1 = _mm256_add_epi16(s1, _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(v1, 4), m4), hi));
            }
        }
        const __m256i corr = _mm256_set1_epi32(c4[b]);
        const __m256i i0 = _mm256_add_epi32(_mm256_madd_epi16(s0, ones), corr);
        const __m256i i1 = _mm256_add_epi32(_mm256_madd_epi16(s1, ones), corr);
        add_block_avx2<Tail>(ws, m, b, xd[b], i0, i1, acc0, acc1);
    }
}

// Rows [r0, r1) of a q8 or q4 matrix, a panel at a time.
template <bool Q4>
WP_AVX2 void panel_rows_avx2(const QMatrix& W, const std::int8_t* xq, const std::int32_t* c4, const float* xd, float* y,
                             int r0, int r1) {
    const int nb = W.cols / kQuantBlock;
    for (int p0 = r0 / kQ8Panel * kQ8Panel; p0 < r1; p0 += kQ8Panel) {
        const int m = std::min(kQ8Panel, W.rows - p0);
        const std::uint16_t* ws = W.scales + static_cast<std::size_t>(p0) * nb;
        __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0;
        if constexpr (Q4) {
            const std::uint8_t* w = W.q4 + static_cast<std::size_t>(p0) * (W.cols / 2);
            if (m == kQ8Panel) q4_panel_avx2<false>(w, ws, nb, m, xq, c4, xd, acc0, acc1);
            else q4_panel_avx2<true>(w, ws, nb, m, xq, c4, xd, acc0, acc1);
        } else {
            const std::uint8_t* w = reinterpret_cast<const std::uint8_t*>(W.q8) + static_cast<std::size_t>(p0) * W.cols;
            if (m == kQ8Panel) q8_panel_avx2<false>(w, ws, nb, m, xq, xd, acc0, acc1);
            else q8_panel_avx2<true>(w, ws, nb, m, xq, xd, acc0, acc1);
        }
        float out[kQ8Panel];
        _mm256_storeu_ps(out, acc0);
        _mm256_storeu_ps(out + 8, acc1);
        for (int r = std::max(r0, p0); r < std::min(r1, p0 + m); ++r) y[r] = out[r - p0];
    }
}

}  // namespace

WP_AVX2 void rows_q8_avx2(const QMatrix& W, const std::int8_t* xq, const float* xd, float* y, int r0, int r1) {
    panel_rows_avx2<false>(W, xq, nullptr, xd, y, r0, r1);
}

WP_AVX2 void rows_q4_avx2(const QMatrix& W, const std::int8_t* xq, const std::int32_t* c4, const float* xd, float* y,
                          int r0, int r1) {
    panel_rows_avx2<true>(W, xq, c4, xd, y, r0, r1);
}

void prefetch_rows_start(const QMatrix& W, int r0, int r1) {
    const std::size_t n = static_cast<std::size_t>(r1 - r0), cols = static_cast<std::size_t>(W.cols);
    const char* w = nullptr;
    std::size_t row_bytes = 0;
    switch (W.precision) {
        case Precision::F32: w = reinterpret_cast<const char*>(W.f32 + r0 * cols); row_bytes = 4 * cols; break;
        case Precision::BF16: w = reinterpret_cast<const char*>(W.bf16 + r0 * cols); row_bytes = 2 * cols; break;
        case Precision::Q8: w = reinterpret_cast<const char*>(W.q8 + r0 * cols); row_bytes = cols; break;
        case Precision::Q4: w = reinterpret_cast<const char*>(W.q4 + r0 * cols / 2); row_bytes = cols / 2; break;
    }
    const std::size_t bytes = std::min<std::size_t>(n * row_bytes, 6144);
    for (std::size_t o = 0; o < bytes; o += 64) _mm_prefetch(w + o, _MM_HINT_T0);
    if (W.scales != nullptr) {
        const char* sc = reinterpret_cast<const char*>(W.scales + r0 * (cols / kQuantBlock));
        const std::size_t sb = std::min<std::size_t>(n * (cols / kQuantBlock) * 2, 512);
        for (std::size_t o = 0; o < sb; o += 64) _mm_prefetch(sc + o, _MM_HINT_T0);
    }
}

}  // namespace wp

#endif  // __x86_64__
