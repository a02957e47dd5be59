// The AVX-512 VNNI decode kernels (matvec_kernels.h), for decode and short prompts alike.
//
// q8: 64 weights (two blocks) per vpdpbusd, |w| against x with w's sign (vpdpbusd multiplies
// unsigned by signed bytes); lanes 0-7 hold block b's products, 8-15 block b + 1, and each lane's
// integer sum is scaled by its block's factor (weight scale x input scale, spread to the block's
// lanes by one permute from sixteen factors computed together) into one float sum. q4: a group
// of 16 blocks at a time in the layout of q4_offset, each block's integer sum in its own lane,
// scaled by the sixteen factors as they come.
//
// The weights ahead of those being read are prefetched (the rows are contiguous, so that runs on
// into the following rows): f32 3 KB ahead into L1; bf16, q8 and q4, which spend more time on
// each byte, 6 KB ahead into L2. Why these distances: docs/KERNELS.md, "Decode kernels".
#include "kernels/matvec_kernels.h"

#include <algorithm>
#include <cstring>

#if defined(__x86_64__)
#include <immintrin.h>

#define WP_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")))

namespace wp {

namespace {

constexpr int kPrefetchAhead = 3072;  // f32, into L1
constexpr int kPrefetchFar = 6144;    // bf16, q8, q4, into L2

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

WP_AVX512 void rows_q8_avx512(const QMatrix& W, const std::int8_t* xq, const float* xd, float* y, int r0, int r1) {
    const int nb = W.cols / kQuantBlock;
    const __m512i zero = _mm512_setzero_si512();
    const __m512i pair = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);  // lanes to blocks
    for (int r = r0; r < r1; ++r) {
        const std::int8_t* w = W.q8 + static_cast<std::size_t>(r) * W.cols;
        const std::uint16_t* ws = W.scales + static_cast<std::size_t>(r) * nb;
        const char* next = reinterpret_cast<const char*>(w) + kPrefetchFar;
        __m512 acc0 = _mm512_setzero_ps(), acc1 = acc0;
        for (int b0 = 0; b0 < nb; b0 += 16) {
            const int n16 = std::min(16, nb - b0);
            const __mmask16 m = static_cast<__mmask16>((1u << n16) - 1);
            const __m512 dv = _mm512_mul_ps(_mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, ws + b0)), _mm512_loadu_ps(xd + b0));
            for (int j = 0; 2 * j < n16; ++j) {
                const int b = b0 + 2 * j;
                _mm_prefetch(next + kQuantBlock * b, _MM_HINT_T1);
                // Blocks past the row's end (odd block counts) read the next row's bytes, or the
                // storage's zeroed slack, against zero inputs and factors.
                const __m512i v = _mm512_loadu_si512(w + kQuantBlock * b);
                const __m512i x = _mm512_loadu_si512(xq + kQuantBlock * b);
                const __m512i sx = _mm512_mask_sub_epi8(x, _mm512_movepi8_mask(v), zero, x);
                const __m512i sum = _mm512_dpbusd_epi32(zero, _mm512_abs_epi8(v), sx);
                const __m512 d = _mm512_permutexvar_ps(_mm512_add_epi32(pair, _mm512_set1_epi32(2 * j)), dv);
                if (j & 1) acc1 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum), d, acc1);
                else acc0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum), d, acc0);
            }
        }
        y[r] = _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
    }
}

// One group of 16 blocks (m < 16 in a row's last group: Tail) of a q4 row: four chunks, each
// against its input's low-nibble and high-nibble vectors. The high nibbles are taken in place
// (v & 0xf0, 16 x their value) into their own sums, shifted back once per group (exactly: they
// are multiples of 16), which saves a shift per chunk; the sums of each block stay in its lane.
// The tail's masks keep the loads inside the row (lanes past the group's end would read the
// next row's bytes, against zero inputs).
template <bool Tail>
WP_AVX512 inline __m512 q4_group(const std::uint8_t* w, const std::uint16_t* ws, const std::int8_t* x, const std::int32_t* c,
                                 const float* xd, int m, __m512 acc) {
    const __m512i m4 = _mm512_set1_epi8(0x0f), mf0 = _mm512_set1_epi8(static_cast<char>(0xf0));
    const __mmask16 mk = Tail ? static_cast<__mmask16>((1u << m) - 1) : static_cast<__mmask16>(0xffff);
    const __m256i sc = Tail ? _mm256_maskz_loadu_epi16(mk, ws) : _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ws));
    __m512i lo = _mm512_loadu_si512(c), hi = _mm512_setzero_si512();
    for (int k = 0; k < 4; ++k) {
        const __m512i v = Tail ? _mm512_maskz_loadu_epi32(mk, w + 4 * m * k) : _mm512_loadu_si512(w + 64 * k);
        lo = _mm512_dpbusd_epi32(lo, _mm512_and_si512(v, m4), _mm512_loadu_si512(x + 128 * k));
        hi = _mm512_dpbusd_epi32(hi, _mm512_and_si512(v, mf0), _mm512_loadu_si512(x + 128 * k + 64));
    }
    const __m512i sum = _mm512_add_epi32(lo, _mm512_srai_epi32(hi, 4));
    return _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum), _mm512_mul_ps(_mm512_cvtph_ps(sc), _mm512_loadu_ps(xd)), acc);
}

WP_AVX512 void rows_q4_avx512(const QMatrix& W, const std::int8_t* x4, const std::int32_t* c4, const float* xd, float* y,
                              int r0, int r1) {
    const int nb = W.cols / kQuantBlock, full = nb / 16, tail = nb % 16;
    const std::size_t row_bytes = static_cast<std::size_t>(W.cols) / 2;
    for (int r = r0; r < r1; ++r) {
        const std::uint8_t* w = W.q4 + static_cast<std::size_t>(r) * row_bytes;
        const std::uint16_t* ws = W.scales + static_cast<std::size_t>(r) * nb;
        const char* ahead = reinterpret_cast<const char*>(w) + kPrefetchFar;
        __m512 acc0 = _mm512_setzero_ps(), acc1 = acc0;
        int g = 0;
        for (; g + 2 <= full; g += 2) {
            for (int k = 0; k < 8; ++k) _mm_prefetch(ahead + 256 * g + 64 * k, _MM_HINT_T1);
            acc0 = q4_group<false>(w + 256 * g, ws + 16 * g, x4 + 512 * g, c4 + 16 * g, xd + 16 * g, 16, acc0);
            acc1 = q4_group<false>(w + 256 * (g + 1), ws + 16 * (g + 1), x4 + 512 * (g + 1), c4 + 16 * (g + 1),
                                   xd + 16 * (g + 1), 16, acc1);
        }
        if (g < full) {
            for (int k = 0; k < 4; ++k) _mm_prefetch(ahead + 256 * g + 64 * k, _MM_HINT_T1);
            acc0 = q4_group<false>(w + 256 * g, ws + 16 * g, x4 + 512 * g, c4 + 16 * g, xd + 16 * g, 16, acc0);
            ++g;
        }
        if (tail > 0) {
            for (int k = 0; k < 4; ++k) _mm_prefetch(ahead + 256 * g + 64 * k, _MM_HINT_T1);
            acc1 = q4_group<true>(w + 256 * g, ws + 16 * g, x4 + 512 * g, c4 + 16 * g, xd + 16 * g, tail, acc1);
        }
        y[r] = _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
    }
}

// Several input rows against each weight row: the weight loads (and for q8 their absolute
// values and signs, for q4 their nibbles) are shared, and every input row's sum runs the
// one-row kernels' operations in their order, so each row's result is theirs bit for bit.
namespace {

template <int T>
WP_AVX512 void q8_rows_multi(const QMatrix& W, const std::int8_t* const* xq, const float* const* xd, float* const* y,
                             int r0, int r1) {
    const int nb = W.cols / kQuantBlock;
    const __m512i zero = _mm512_setzero_si512();
    const __m512i pair = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
    for (int r = r0; r < r1; ++r) {
        const std::int8_t* w = W.q8 + static_cast<std::size_t>(r) * W.cols;
        const std::uint16_t* ws = W.scales + static_cast<std::size_t>(r) * nb;
        const char* next = reinterpret_cast<const char*>(w) + kPrefetchFar;
        __m512 acc0[T], acc1[T];
        for (int t = 0; t < T; ++t) acc0[t] = acc1[t] = _mm512_setzero_ps();
        for (int b0 = 0; b0 < nb; b0 += 16) {
            const int n16 = std::min(16, nb - b0);
            const __mmask16 m = static_cast<__mmask16>((1u << n16) - 1);
            const __m512 wsf = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, ws + b0));
            __m512 dv[T];
            for (int t = 0; t < T; ++t) dv[t] = _mm512_mul_ps(wsf, _mm512_loadu_ps(xd[t] + b0));
            for (int j = 0; 2 * j < n16; ++j) {
                const int b = b0 + 2 * j;
                _mm_prefetch(next + kQuantBlock * b, _MM_HINT_T1);
                const __m512i v = _mm512_loadu_si512(w + kQuantBlock * b);
                const __mmask64 neg = _mm512_movepi8_mask(v);
                const __m512i av = _mm512_abs_epi8(v);
                const __m512i idx = _mm512_add_epi32(pair, _mm512_set1_epi32(2 * j));
                for (int t = 0; t < T; ++t) {
                    const __m512i x = _mm512_loadu_si512(xq[t] + kQuantBlock * b);
                    const __m512i sx = _mm512_mask_sub_epi8(x, neg, zero, x);
                    const __m512i sum = _mm512_dpbusd_epi32(zero, av, sx);
                    const __m512 d = _mm512_permutexvar_ps(idx, dv[t]);
                    if (j & 1) acc1[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum), d, acc1[t]);
                    else acc0[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum), d, acc0[t]);
                }
            }
        }
        for (int t = 0; t < T; ++t) y[t][r] = _mm512_reduce_add_ps(_mm512_add_ps(acc0[t], acc1[t]));
    }
}

// q4_group for T input rows at once (same operations per row).
template <int T, bool Tail>
WP_AVX512 inline void q4_group_multi(const std::uint8_t* w, const std::uint16_t* ws, const std::int8_t* const* x,
                                     const std::int32_t* const* c, const float* const* xd, std::size_t g, int m,
                                     __m512* acc) {
    const __m512i m4 = _mm512_set1_epi8(0x0f), mf0 = _mm512_set1_epi8(static_cast<char>(0xf0));
    const __mmask16 mk = Tail ? static_cast<__mmask16>((1u << m) - 1) : static_cast<__mmask16>(0xffff);
    const __m256i sc = Tail ? _mm256_maskz_loadu_epi16(mk, ws) : _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ws));
    __m512i lo[T], hi[T];
    for (int t = 0; t < T; ++t) {
        lo[t] = _mm512_loadu_si512(c[t] + 16 * g);
        hi[t] = _mm512_setzero_si512();
    }
    for (int k = 0; k < 4; ++k) {
        const __m512i v = Tail ? _mm512_maskz_loadu_epi32(mk, w + 4 * m * k) : _mm512_loadu_si512(w + 64 * k);
        const __m512i vl = _mm512_and_si512(v, m4), vh = _mm512_and_si512(v, mf0);
        for (int t = 0; t < T; ++t) {
            lo[t] = _mm512_dpbusd_epi32(lo[t], vl, _mm512_loadu_si512(x[t] + 512 * g + 128 * k));
            hi[t] = _mm512_dpbusd_epi32(hi[t], vh, _mm512_loadu_si512(x[t] + 512 * g + 128 * k + 64));
        }
    }
    const __m512 scf = _mm512_cvtph_ps(sc);
    for (int t = 0; t < T; ++t) {
        const __m512i sum = _mm512_add_epi32(lo[t], _mm512_srai_epi32(hi[t], 4));
        acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum), _mm512_mul_ps(scf, _mm512_loadu_ps(xd[t] + 16 * g)), acc[t]);
    }
}

template <int T>
WP_AVX512 void q4_rows_multi(const QMatrix& W, const std::int8_t* const* x4, const std::int32_t* const* c4,
                             const float* const* xd, float* const* y, int r0, int r1) {
    const int nb = W.cols / kQuantBlock, full = nb / 16, tail = nb % 16;
    const std::size_t row_bytes = static_cast<std::size_t>(W.cols) / 2;
    for (int r = r0; r < r1; ++r) {
        const std::uint8_t* w = W.q4 + static_cast<std::size_t>(r) * row_bytes;
        const std::uint16_t* ws = W.scales + static_cast<std::size_t>(r) * nb;
        const char* ahead = reinterpret_cast<const char*>(w) + kPrefetchFar;
        __m512 acc0[T], acc1[T];
        for (int t = 0; t < T; ++t) acc0[t] = acc1[t] = _mm512_setzero_ps();
        std::size_t g = 0;
        for (; static_cast<int>(g) + 2 <= full; g += 2) {
            for (int k = 0; k < 8; ++k) _mm_prefetch(ahead + 256 * g + 64 * k, _MM_HINT_T1);
            q4_group_multi<T, false>(w + 256 * g, ws + 16 * g, x4, c4, xd, g, 16, acc0);
            q4_group_multi<T, false>(w + 256 * (g + 1), ws + 16 * (g + 1), x4, c4, xd, g + 1, 16, acc1);
        }
        if (static_cast<int>(g) < full) {
            for (int k = 0; k < 4; ++k) _mm_prefetch(ahead + 256 * g + 64 * k, _MM_HINT_T1);
            q4_group_multi<T, false>(w + 256 * g, ws + 16 * g, x4, c4, xd, g, 16, acc0);
            ++g;
        }
        if (tail > 0) {
            for (int k = 0; k < 4; ++k) _mm_prefetch(ahead + 256 * g + 64 * k, _MM_HINT_T1);
            q4_group_multi<T, true>(w + 256 * g, ws + 16 * g, x4, c4, xd, g, tail, acc1);
        }
        for (int t = 0; t < T; ++t) y[t][r] = _mm512_reduce_add_ps(_mm512_add_ps(acc0[t], acc1[t]));
    }
}

}  // namespace

void rows_q8_avx512_multi(const QMatrix& W, int n, const std::int8_t* const* xq, const float* const* xd, float* const* y,
                          int r0, int r1) {
    for (int t = 0; t < n; t += 4) {
        switch (std::min(4, n - t)) {
            case 4: q8_rows_multi<4>(W, xq + t, xd + t, y + t, r0, r1); break;
            case 3: q8_rows_multi<3>(W, xq + t, xd + t, y + t, r0, r1); break;
            case 2: q8_rows_multi<2>(W, xq + t, xd + t, y + t, r0, r1); break;
            default: rows_q8_avx512(W, xq[t], xd[t], y[t], r0, r1); break;
        }
    }
}

void rows_q4_avx512_multi(const QMatrix& W, int n, const std::int8_t* const* x4, const std::int32_t* const* c4,
                          const float* const* xd, float* const* y, int r0, int r1) {
    for (int t = 0; t < n; t += 4) {
        switch (std::min(4, n - t)) {
            case 4: q4_rows_multi<4>(W, x4 + t, c4 + t, xd + t, y + t, r0, r1); break;
            case 3: q4_rows_multi<3>(W, x4 + t, c4 + t, xd + t, y + t, r0, r1); break;
            case 2: q4_rows_multi<2>(W, x4 + t, c4 + t, xd + t, y + t, r0, r1); break;
            default: rows_q4_avx512(W, x4[t], c4[t], xd[t], y[t], r0, r1); break;
        }
    }
}

}  // namespace wp

#else

namespace wp {

void rows_q8_avx512(const QMatrix&, const std::int8_t*, const float*, float*, int, int) {}
void rows_q4_avx512(const QMatrix&, const std::int8_t*, const std::int32_t*, const float*, float*, int, int) {}
void rows_bf16_avx512(const QMatrix&, const float*, float*, int, int) {}
void rows_f32_avx512(const QMatrix&, const float*, float*, int, int) {}
void rows_q8_avx512_multi(const QMatrix&, int, const std::int8_t* const*, const float* const*, float* const*, int, int) {}
void rows_q4_avx512_multi(const QMatrix&, int, const std::int8_t* const*, const std::int32_t* const*, const float* const*,
                          float* const*, int, int) {}

}  // namespace wp

#endif
