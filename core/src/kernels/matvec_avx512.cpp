// The AVX-512 VNNI decode kernels (matvec_kernels.h), for decode and short prompts alike.
//
// q8 and q4: a panel of 16 weight rows at a time (q8_layout.h, q4_layout.h), lane j holding row
// j's block sums, for one input row or up to four at once (q8_panel and q4_panel below).
//
// The weights ahead of those being read are prefetched (the rows are contiguous, so that runs on
// into the following rows): f32 3 KB ahead into L1; bf16, which spends more time on each byte,
// 6 KB ahead into L2; q4 4 KB into L2; q8 4 KB into L2 and 2 KB into L1. Why these distances:
// docs/KERNELS.md, "Decode kernels".
#include "kernels/matvec_kernels.h"

#include <algorithm>
#include <cstring>

#include "kernels/q8_layout.h"

#if defined(__x86_64__)
#include <immintrin.h>

#define WP_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")))

namespace wp {

namespace {

constexpr int kPrefetchAhead = 3072;  // f32, into L1
constexpr int kPrefetchFar = 6144;    // bf16, into L2
constexpr int kPrefetchQ4 = 4096;     // q4's panels, into L2
// q8's panels, which spend less time on each byte: 4 KB ahead into L2 and 2 KB into L1 (6 KB into
// L2 alone left the loads waiting; docs/KERNELS.md).
constexpr int kPrefetchQ8L2 = 4096, kPrefetchQ8L1 = 2048;

}  // namespace

// Sixteen bf16 weights zero-extended to 32-bit lanes and shifted into the top half, so x is read
// in its natural order. Widening the even and odd halves of a 64-byte load with a shift and a
// mask (the AVX2 kernel's way) ran at half this rate on Zen 5 (docs/KERNELS.md, "Decode kernels").
#define WP_BF16X16(p) _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))), 16))

WP_AVX512 void rows_bf16_avx512(const QMatrix& W, const float* x, float* y, int r0, int r1) {
    const int cols = W.cols, main = cols / 64 * 64;
    for (int r = r0; r < r1; ++r) {
        const std::uint16_t* w = W.bf16 + static_cast<std::size_t>(r) * cols;
        const char* ahead = reinterpret_cast<const char*>(w) + kPrefetchFar;
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        int i = 0;
        for (; i < main; i += 64) {
            _mm_prefetch(ahead + 2 * i, _MM_HINT_T1);
            _mm_prefetch(ahead + 2 * i + 64, _MM_HINT_T1);
            a0 = _mm512_fmadd_ps(WP_BF16X16(w + i), _mm512_loadu_ps(x + i), a0);
            a1 = _mm512_fmadd_ps(WP_BF16X16(w + i + 16), _mm512_loadu_ps(x + i + 16), a1);
            a2 = _mm512_fmadd_ps(WP_BF16X16(w + i + 32), _mm512_loadu_ps(x + i + 32), a2);
            a3 = _mm512_fmadd_ps(WP_BF16X16(w + i + 48), _mm512_loadu_ps(x + i + 48), a3);
        }
        for (; i + 16 <= cols; i += 16) a0 = _mm512_fmadd_ps(WP_BF16X16(w + i), _mm512_loadu_ps(x + i), a0);
        float s = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
        for (; i < cols; ++i) {
            const std::uint32_t bits = static_cast<std::uint32_t>(w[i]) << 16;
            float f;
            std::memcpy(&f, &bits, 4);
            s += f * x[i];
        }
        y[r] = s;
    }
}

#undef WP_BF16X16

WP_AVX512 void rows_f32_avx512(const QMatrix& W, const float* x, float* y, int r0, int r1) {
    const int cols = W.cols, main = cols / 16 * 16;
    for (int r = r0; r < r1; ++r) {
        const float* w = W.f32 + static_cast<std::size_t>(r) * cols;
        const char* ahead = reinterpret_cast<const char*>(w) + kPrefetchAhead;
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        int i = 0;
        for (; i + 64 <= main; i += 64) {
            for (int k = 0; k < 4; ++k) _mm_prefetch(ahead + 4 * i + 64 * k, _MM_HINT_T0);
            a0 = _mm512_fmadd_ps(_mm512_loadu_ps(w + i), _mm512_loadu_ps(x + i), a0);
            a1 = _mm512_fmadd_ps(_mm512_loadu_ps(w + i + 16), _mm512_loadu_ps(x + i + 16), a1);
            a2 = _mm512_fmadd_ps(_mm512_loadu_ps(w + i + 32), _mm512_loadu_ps(x + i + 32), a2);
            a3 = _mm512_fmadd_ps(_mm512_loadu_ps(w + i + 48), _mm512_loadu_ps(x + i + 48), a3);
        }
        for (; i < main; i += 16) {
            _mm_prefetch(ahead + 4 * i, _MM_HINT_T0);
            a0 = _mm512_fmadd_ps(_mm512_loadu_ps(w + i), _mm512_loadu_ps(x + i), a0);
        }
        float s = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
        for (; i < cols; ++i) s += w[i] * x[i];
        y[r] = s;
    }
}

namespace {

// q8, rows [r0, r1) for T input rows at once, a panel of 16 weight rows at a time (q8_layout.h):
// lane j of each 64-byte load holds four weights of row j, against the input's matching four
// bytes broadcast, offset to unsigned (x + 128, as vpdpbusd multiplies unsigned by signed bytes):
// sum (x + 128) w = sum x w + 128 sum w, and sum w comes from the same loads once for all T. Each
// block's exact sum is scaled by weight scale x input scale and added with one fma, block after
// block, so a row's result does not depend on T (nor on the int8 product, which does the same).
// Rows outside [r0, r1) in a panel they share are computed and not stored.
template <int T, bool Tail>
WP_AVX512 inline void q8_panel(const std::uint8_t* w, const std::uint16_t* ws, int nb, int m,
                               const std::uint8_t* const* xu, const float* const* xd, __m512* acc) {
    const __m512i zero = _mm512_setzero_si512(), ones = _mm512_set1_epi8(1);
    const __mmask16 mk = Tail ? static_cast<__mmask16>((1u << m) - 1) : static_cast<__mmask16>(0xffff);
    const std::size_t step = static_cast<std::size_t>(4 * m);  // bytes per chunk
    for (int b = 0; b < nb; ++b) {
        const std::uint8_t* wb = w + 8 * step * b;
        _mm_prefetch(reinterpret_cast<const char*>(ws + static_cast<std::size_t>(m) * b) + 512, _MM_HINT_T1);
        __m512i cs0 = zero, cs1 = zero, a0[T], a1[T];
        for (int t = 0; t < T; ++t) a0[t] = a1[t] = zero;
        for (int k = 0; k < 8; k += 2) {
            const char* at = reinterpret_cast<const char*>(wb + step * k);
            _mm_prefetch(at + kPrefetchQ8L2, _MM_HINT_T1);
            _mm_prefetch(at + kPrefetchQ8L2 + 64, _MM_HINT_T1);
            _mm_prefetch(at + kPrefetchQ8L1, _MM_HINT_T0);
            _mm_prefetch(at + kPrefetchQ8L1 + 64, _MM_HINT_T0);
            const __m512i v0 = Tail ? _mm512_maskz_loadu_epi32(mk, wb + step * k) : _mm512_loadu_si512(wb + step * k);
            const __m512i v1 = Tail ? _mm512_maskz_loadu_epi32(mk, wb + step * (k + 1)) : _mm512_loadu_si512(wb + step * (k + 1));
            cs0 = _mm512_dpbusd_epi32(cs0, ones, v0);
            cs1 = _mm512_dpbusd_epi32(cs1, ones, v1);
            for (int t = 0; t < T; ++t) {
                std::int32_t x0, x1;
                std::memcpy(&x0, xu[t] + kQuantBlock * b + 4 * k, 4);
                std::memcpy(&x1, xu[t] + kQuantBlock * b + 4 * k + 4, 4);
                a0[t] = _mm512_dpbusd_epi32(a0[t], _mm512_set1_epi32(x0), v0);
                a1[t] = _mm512_dpbusd_epi32(a1[t], _mm512_set1_epi32(x1), v1);
            }
        }
        const __m512i cs = _mm512_slli_epi32(_mm512_add_epi32(cs0, cs1), 7);
        const __m512 dw = _mm512_cvtph_ps(Tail ? _mm256_maskz_loadu_epi16(mk, ws + static_cast<std::size_t>(m) * b)
                                               : _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ws + 16 * b)));
        for (int t = 0; t < T; ++t) {
            const __m512i sum = _mm512_sub_epi32(_mm512_add_epi32(a0[t], a1[t]), cs);
            acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum), _mm512_mul_ps(dw, _mm512_set1_ps(xd[t][b])), acc[t]);
        }
    }
}

template <int T>
WP_AVX512 void q8_rows(const QMatrix& W, const std::uint8_t* const* xu, const float* const* xd, float* const* y, int r0,
                       int r1) {
    const int nb = W.cols / kQuantBlock;
    for (int p0 = r0 / kQ8Panel * kQ8Panel; p0 < r1; p0 += kQ8Panel) {
        const int m = std::min(kQ8Panel, W.rows - p0);
        const std::uint8_t* w = reinterpret_cast<const std::uint8_t*>(W.q8) + static_cast<std::size_t>(p0) * W.cols;
        const std::uint16_t* ws = W.scales + static_cast<std::size_t>(p0) * nb;
        __m512 acc[T];
        for (int t = 0; t < T; ++t) acc[t] = _mm512_setzero_ps();
        if (m == kQ8Panel) q8_panel<T, false>(w, ws, nb, m, xu, xd, acc);
        else q8_panel<T, true>(w, ws, nb, m, xu, xd, acc);
        const int lo = std::max(r0, p0) - p0, hi = std::min(r1, p0 + m) - p0;
        const __mmask16 keep = static_cast<__mmask16>(((1u << hi) - 1) & ~((1u << lo) - 1));
        for (int t = 0; t < T; ++t) _mm512_mask_storeu_ps(y[t] + p0, keep, acc[t]);
    }
}

}  // namespace

WP_AVX512 void rows_q8_avx512(const QMatrix& W, const std::uint8_t* xu, const float* xd, float* y, int r0, int r1) {
    q8_rows<1>(W, &xu, &xd, &y, r0, r1);
}

namespace {

// q4, rows [r0, r1) for T input rows at once, a panel of 16 weight rows at a time (q4_layout.h):
// lane j of each 64-byte load holds eight weights of row j, four in the low nibbles and four in
// the high. The low nibbles (v & 0x0f) run against the input's matching word broadcast; the high
// ones are taken in place (v & 0xf0, 16 x their value) into sums of their own, shifted back once
// per block (exactly: they are multiples of 16). Each block's sum starts at -8 sum x (the
// unsigned nibbles' correction, PreparedInput::c4) and is scaled by weight scale x input scale
// and added with one fma, block after block, as every q4 and q8 kernel does, so a row's result
// does not depend on T (nor on the int8 product). Rows outside [r0, r1) in a panel they share are
// computed and not stored.
template <int T, bool Tail>
WP_AVX512 inline void q4_panel(const std::uint8_t* w, const std::uint16_t* ws, int nb, int m, const std::int8_t* const* xq,
                               const std::int32_t* const* c4, const float* const* xd, __m512* acc) {
    const __m512i m4 = _mm512_set1_epi8(0x0f), mf0 = _mm512_set1_epi8(static_cast<char>(0xf0));
    const __mmask16 mk = Tail ? static_cast<__mmask16>((1u << m) - 1) : static_cast<__mmask16>(0xffff);
    const std::size_t step = static_cast<std::size_t>(4 * m);  // bytes per chunk
    for (int b = 0; b < nb; ++b) {
        const std::uint8_t* wb = w + 4 * step * b;
        const char* ahead = reinterpret_cast<const char*>(wb) + kPrefetchQ4;
        for (int k = 0; k < 4; ++k) _mm_prefetch(ahead + 64 * k, _MM_HINT_T1);
        _mm_prefetch(reinterpret_cast<const char*>(ws + static_cast<std::size_t>(m) * b) + 512, _MM_HINT_T1);
        __m512i lo[T], hi[T];
        for (int t = 0; t < T; ++t) {
            lo[t] = _mm512_set1_epi32(c4[t][b]);
            hi[t] = _mm512_setzero_si512();
        }
        for (int k = 0; k < 4; ++k) {
            const __m512i v = Tail ? _mm512_maskz_loadu_epi32(mk, wb + step * k) : _mm512_loadu_si512(wb + step * k);
            const __m512i vl = _mm512_and_si512(v, m4), vh = _mm512_and_si512(v, mf0);
            for (int t = 0; t < T; ++t) {
                std::int32_t xl, xh;
                std::memcpy(&xl, xq[t] + kQuantBlock * b + 4 * k, 4);
                std::memcpy(&xh, xq[t] + kQuantBlock * b + 16 + 4 * k, 4);
                lo[t] = _mm512_dpbusd_epi32(lo[t], vl, _mm512_set1_epi32(xl));
                hi[t] = _mm512_dpbusd_epi32(hi[t], vh, _mm512_set1_epi32(xh));
            }
        }
        const __m512 dw = _mm512_cvtph_ps(Tail ? _mm256_maskz_loadu_epi16(mk, ws + static_cast<std::size_t>(m) * b)
                                               : _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ws + 16 * b)));
        for (int t = 0; t < T; ++t) {
            const __m512i sum = _mm512_add_epi32(lo[t], _mm512_srai_epi32(hi[t], 4));
            acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum), _mm512_mul_ps(dw, _mm512_set1_ps(xd[t][b])), acc[t]);
        }
    }
}

template <int T>
WP_AVX512 void q4_rows(const QMatrix& W, const std::int8_t* const* xq, const std::int32_t* const* c4, const float* const* xd,
                       float* const* y, int r0, int r1) {
    const int nb = W.cols / kQuantBlock;
    for (int p0 = r0 / kQ8Panel * kQ8Panel; p0 < r1; p0 += kQ8Panel) {
        const int m = std::min(kQ8Panel, W.rows - p0);
        const std::uint8_t* w = W.q4 + static_cast<std::size_t>(p0) * (W.cols / 2);
        const std::uint16_t* ws = W.scales + static_cast<std::size_t>(p0) * nb;
        __m512 acc[T];
        for (int t = 0; t < T; ++t) acc[t] = _mm512_setzero_ps();
        if (m == kQ8Panel) q4_panel<T, false>(w, ws, nb, m, xq, c4, xd, acc);
        else q4_panel<T, true>(w, ws, nb, m, xq, c4, xd, acc);
        const int lo = std::max(r0, p0) - p0, hi = std::min(r1, p0 + m) - p0;
        const __mmask16 keep = static_cast<__mmask16>(((1u << hi) - 1) & ~((1u << lo) - 1));
        for (int t = 0; t < T; ++t) _mm512_mask_storeu_ps(y[t] + p0, keep, acc[t]);
    }
}

}  // namespace

WP_AVX512 void rows_q4_avx512(const QMatrix& W, const std::int8_t* xq, const std::int32_t* c4, const float* xd, float* y,
                              int r0, int r1) {
    q4_rows<1>(W, &xq, &c4, &xd, &y, r0, r1);
}

void rows_q8_avx512_multi(const QMatrix& W, int n, const std::uint8_t* const* xu, const float* const* xd, float* const* y,
                          int r0, int r1) {
    for (int t = 0; t < n; t += 4) {
        switch (std::min(4, n - t)) {
            case 4: q8_rows<4>(W, xu + t, xd + t, y + t, r0, r1); break;
            case 3: q8_rows<3>(W, xu + t, xd + t, y + t, r0, r1); break;
            case 2: q8_rows<2>(W, xu + t, xd + t, y + t, r0, r1); break;
            default: q8_rows<1>(W, xu + t, xd + t, y + t, r0, r1); break;
        }
    }
}

void rows_q4_avx512_multi(const QMatrix& W, int n, const std::int8_t* const* xq, const std::int32_t* const* c4,
                          const float* const* xd, float* const* y, int r0, int r1) {
    for (int t = 0; t < n; t += 4) {
        switch (std::min(4, n - t)) {
            case 4: q4_rows<4>(W, xq + t, c4 + t, xd + t, y + t, r0, r1); break;
            case 3: q4_rows<3>(W, xq + t, c4 + t, xd + t, y + t, r0, r1); break;
            case 2: q4_rows<2>(W, xq + t, c4 + t, xd + t, y + t, r0, r1); break;
            default: q4_rows<1>(W, xq + t, c4 + t, xd + t, y + t, r0, r1); break;
        }
    }
}

}  // namespace wp

#else

namespace wp {

void rows_q8_avx512(const QMatrix&, const std::uint8_t*, const float*, float*, int, int) {}
void rows_q4_avx512(const QMatrix&, const std::int8_t*, const std::int32_t*, const float*, float*, int, int) {}
void rows_bf16_avx512(const QMatrix&, const float*, float*, int, int) {}
void rows_f32_avx512(const QMatrix&, const float*, float*, int, int) {}
void rows_q8_avx512_multi(const QMatrix&, int, const std::uint8_t* const*, const float* const*, float* const*, int, int) {}
void rows_q4_avx512_multi(const QMatrix&, int, const std::int8_t* const*, const std::int32_t* const*, const float* const*,
                          float* const*, int, int) {}

}  // namespace wp

#endif
