#include "wp/kernels/qmatrix.h"

#include <algorithm>
#include <atomic>
#include <cblas.h>
#include <cmath>
#include <cstring>
#include <new>
#include <sys/mman.h>

#include "wp/error.h"
#include "wp/kernels/huge_pages.h"
#include "wp/kernels/ops.h"
#include "qgemm.h"

#if defined(__x86_64__)
#include <immintrin.h>
#define WP_X86 1
#endif

namespace wp {

const char* precision_name(Precision p) {
    switch (p) {
        case Precision::F32: return "f32";
        case Precision::BF16: return "bf16";
        case Precision::Q8: return "q8";
        case Precision::Q4: return "q4";
    }
    return "?";
}

Precision parse_precision(const std::string& s) {
    if (s == "f32") return Precision::F32;
    if (s == "bf16") return Precision::BF16;
    if (s == "q8") return Precision::Q8;
    if (s == "q4") return Precision::Q4;
    throw Error("unknown precision \"" + s + "\" (f32, bf16, q8 or q4)");
}

namespace {

std::atomic<bool> g_force_scalar{false};

std::uint16_t f32_to_f16(float f) {
    // Round to nearest even; the scales are positive and well inside the f16 range.
    std::uint32_t x;
    std::memcpy(&x, &f, 4);
    const std::uint32_t sign = (x >> 16) & 0x8000u;
    const int exp = static_cast<int>((x >> 23) & 0xff) - 127 + 15;
    std::uint32_t mant = x & 0x7fffffu;
    if (exp <= 0) {
        if (exp < -10) return static_cast<std::uint16_t>(sign);
        mant |= 0x800000u;
        const int shift = 14 - exp;
        std::uint32_t h = mant >> shift;
        const std::uint32_t rem = mant & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (h & 1))) ++h;
        return static_cast<std::uint16_t>(sign | h);
    }
    if (exp >= 31) return static_cast<std::uint16_t>(sign | 0x7c00u);
    std::uint32_t h = (static_cast<std::uint32_t>(exp) << 10) | (mant >> 13);
    const std::uint32_t rem = mant & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1))) ++h;
    return static_cast<std::uint16_t>(sign | h);
}

inline float half(std::uint16_t h) { return ops::f16_to_f32(h); }

// The 16 bytes of block `b` of a q4 row of `nb` blocks, in block order (byte i: element i in the
// low nibble, i + 16 in the high one), gathered from the row's layout (q4_offset) or scattered
// back into it.
void load_q4_block(const std::uint8_t* row, int b, int nb, std::uint8_t* bytes) {
    for (int k = 0; k < 4; ++k) std::memcpy(bytes + 4 * k, row + detail::q4_offset(b, 4 * k, nb), 4);
}
void store_q4_block(std::uint8_t* row, int b, int nb, const std::uint8_t* bytes) {
    for (int k = 0; k < 4; ++k) std::memcpy(row + detail::q4_offset(b, 4 * k, nb), bytes + 4 * k, 4);
}

// ---- scalar kernels (also the reference for the vector ones) ------------------------------

float dot_f32_scalar(const float* w, const float* x, int n) {
    float s = 0;
    for (int i = 0; i < n; ++i) s += w[i] * x[i];
    return s;
}

float dot_bf16_scalar(const std::uint16_t* w, const float* x, int n) {
    float s = 0;
    for (int i = 0; i < n; ++i) s += ops::bf16_to_f32(w[i]) * x[i];
    return s;
}

float dot_q8_scalar(const std::int8_t* w, const std::uint16_t* ws, const std::int8_t* xq, const float* xd, int n) {
    float s = 0;
    for (int b = 0; b < n / kQuantBlock; ++b) {
        int acc = 0;
        for (int i = 0; i < kQuantBlock; ++i) acc += w[b * kQuantBlock + i] * xq[b * kQuantBlock + i];
        s += static_cast<float>(acc) * half(ws[b]) * xd[b];
    }
    return s;
}

float dot_q4_scalar(const std::uint8_t* w, const std::uint16_t* ws, const std::int8_t* xq, const float* xd, int n) {
    float s = 0;
    const int nb = n / kQuantBlock;
    for (int b = 0; b < nb; ++b) {
        std::uint8_t q[16];
        load_q4_block(w, b, nb, q);
        const std::int8_t* x = xq + b * kQuantBlock;
        int acc = 0;
        for (int i = 0; i < 16; ++i) {
            acc += (static_cast<int>(q[i] & 0x0f) - 8) * x[i];
            acc += (static_cast<int>(q[i] >> 4) - 8) * x[i + 16];
        }
        s += static_cast<float>(acc) * half(ws[b]) * xd[b];
    }
    return s;
}

void quantize_vector_scalar(const float* x, int n, std::int8_t* q, float* d) {
    for (int b = 0; b < n / kQuantBlock; ++b) {
        float amax = 0;
        for (int i = 0; i < kQuantBlock; ++i) amax = std::max(amax, std::fabs(x[b * kQuantBlock + i]));
        const float scale = amax / 127.0f;
        const float inv = scale > 0 ? 1.0f / scale : 0.0f;
        d[b] = scale;
        for (int i = 0; i < kQuantBlock; ++i)
            q[b * kQuantBlock + i] = static_cast<std::int8_t>(std::lrintf(x[b * kQuantBlock + i] * inv));
    }
}

// ---- AVX2 / FMA kernels -------------------------------------------------------------------

#ifdef WP_X86
#define WP_AVX2 __attribute__((target("avx2,fma,f16c")))

// How far ahead of the weights being read the bf16 and q8 decode kernels prefetch, into L2 (see
// rows_bf16_avx2 and rows_q8_avx2; the AVX-512 kernels' kPrefetchFar), and f32's, into L1.
constexpr int kPrefetchFarAvx2 = 6144;

WP_AVX2 inline float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

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

// Decoding (`stream`): one row after another, 6 KB ahead prefetched into L1. `bench --avx2` on the
// Zen 4 development machine, interleaved runs, tokens/s: gemma2-2b 3.19/3.82/3.55 with four rows
// at a time and the next four prefetched (as before), 3.23/4.09/3.22 one row 3 KB ahead,
// 4.32/4.28/4.33 6 KB ahead; qwen2-0.5b 23.8/23.5/23.3, 23.2/20.2/22.5 and 24.3/24.4/24.1 (1.5 KB
// ahead: 21.6/21.9/21.7). A few input rows (a short prompt, with the weight rows in cache): three
// rows at a time, prefetching the next three.
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

WP_AVX2 inline __m256 load_bf16(const std::uint16_t* p) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

// bf16 pairs read as 32-bit words: the even element is the low half (shift it up), the odd one
// the high half (mask the low bits away); no shuffles. The input vector is pre-split into the
// even and odd elements of each 16-block (xp), so each 16 weights cost one load, one shift, one
// and, two FMAs.
//
// Decoding (one input row: stream) reads the rows one after another and prefetches 6 KB ahead
// into L2, as the AVX-512 kernel does; several input rows (a short prompt, whose 16 weight rows
// stay in cache) take four rows at a time, sharing the loads of the input. Both sum each row in
// the same order (so a prompt row gets exactly what decoding it would). On the Zen 4
// development machine with the AVX2 kernels forced (`bench --avx2`, qwen2-0.5b, interleaved
// runs, tokens/s), where four rows at a time had prefetched the next four rows into L1:
// 28.3/32.4/30.6/32.5/28.8/33.1 then, 42.1/42.8/43.1/38.7/33.4/43.4 one row with 6 KB into L2
// (3 KB into L1 32.1/34.5/34.5, 6 KB into L1 29.8/34.0/35.7), with four sums per row; in another
// spell one row with the two sums below (the order of the four-row loop) 39.7/41.4/38.0, with
// four 33.4/42.0/41.3, four rows with the next four into L2 34.4/33.8/34.7, two rows each 6 KB
// ahead into L2 34.2/35.7/35.5, and the AVX-512 kernel 40.2/37.7/37.5: one stream per thread is
// what the prefetchers follow best.
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
            for (int i = main; i < cols; ++i) s += ops::bf16_to_f32(w[k][i]) * x[i];
            y[r + k] = s;
        }
    }
    for (; r < r1; ++r) {
        const std::uint16_t* w0 = W + static_cast<std::size_t>(r) * cols;
        const char* ahead = reinterpret_cast<const char*>(w0) + kPrefetchFarAvx2;
        __m256 ae = _mm256_setzero_ps(), ao = ae;
        for (int i = 0; i < main; i += 16) {
            if (stream && i % 32 == 0) _mm_prefetch(ahead + 2 * i, _MM_HINT_T1);
            const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w0 + i));
            ae = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_slli_epi32(v, 16)), _mm256_loadu_ps(xp + i), ae);
            ao = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_and_si256(v, hi_mask)), _mm256_loadu_ps(xp + i + 8), ao);
        }
        float s = hsum(_mm256_add_ps(ae, ao));
        for (int i = main; i < cols; ++i) s += ops::bf16_to_f32(w0[i]) * x[i];
        y[r] = s;
    }
}

// Sum of 32 products of int8 weights and int8 activations, as 8 int32 lanes converted to float.
WP_AVX2 inline __m256 dot32_i8(__m256i w, __m256i x) {
    const __m256i ax = _mm256_sign_epi8(w, w);     // |w|
    const __m256i sx = _mm256_sign_epi8(x, w);     // x * sign(w)
    const __m256i p16 = _mm256_maddubs_epi16(ax, sx);
    const __m256i p32 = _mm256_madd_epi16(p16, _mm256_set1_epi16(1));
    return _mm256_cvtepi32_ps(p32);
}

// The per-block factors d = weight scale x input scale, eight blocks at a time (F16C), so the
// block loop below only broadcasts.
WP_AVX2 inline void block_factors(const std::uint16_t* ws, const float* xd, int nb, float* d) {
    int b = 0;
    for (; b + 8 <= nb; b += 8) {
        const __m256 w = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(ws + b)));
        _mm256_storeu_ps(d + b, _mm256_mul_ps(w, _mm256_loadu_ps(xd + b)));
    }
    for (; b < nb; ++b) d[b] = _cvtsh_ss(ws[b]) * xd[b];
}

WP_AVX2 void rows_q8_avx2(const QMatrix& W, const std::int8_t* xq, const float* xd, float* d, float* y, int r0, int r1) {
    const int nb = W.cols / kQuantBlock;
    for (int r = r0; r < r1; ++r) {
        const std::int8_t* w = W.q8 + static_cast<std::size_t>(r) * W.cols;
        block_factors(W.scales + static_cast<std::size_t>(r) * nb, xd, nb, d);
        __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0;
        // 6 KB ahead into L2 (the rows are contiguous, so that runs on into the following rows),
        // where the next row at the same offset (about a row ahead, into L1) was fetched before:
        // `bench --avx2` on the Zen 4 development machine, qwen2-0.5b, interleaved runs, tokens/s:
        // 60.6/61.8/70.9/69.4/71.0/57.3/58.1 -> 63.7/62.8/77.3/77.0/77.2/58.3/57.7.
        const char* next = reinterpret_cast<const char*>(w) + kPrefetchFarAvx2;
        _mm_prefetch(reinterpret_cast<const char*>(W.scales + static_cast<std::size_t>(r + 1) * nb), _MM_HINT_T0);
        int b = 0;
        for (; b + 2 <= nb; b += 2) {
            _mm_prefetch(next + b * kQuantBlock, _MM_HINT_T1);
            const __m256i w0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + b * kQuantBlock));
            const __m256i w1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + (b + 1) * kQuantBlock));
            const __m256i x0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq + b * kQuantBlock));
            const __m256i x1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq + (b + 1) * kQuantBlock));
            acc0 = _mm256_fmadd_ps(dot32_i8(w0, x0), _mm256_broadcast_ss(d + b), acc0);
            acc1 = _mm256_fmadd_ps(dot32_i8(w1, x1), _mm256_broadcast_ss(d + b + 1), acc1);
        }
        for (; b < nb; ++b) {
            const __m256i wv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + b * kQuantBlock));
            const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq + b * kQuantBlock));
            acc0 = _mm256_fmadd_ps(dot32_i8(wv, xv), _mm256_broadcast_ss(d + b), acc0);
        }
        y[r] = hsum(_mm256_add_ps(acc0, acc1));
    }
}

// q4 with the nibbles kept unsigned (sum (u - 8) x = sum u x - 8 sum x), in the row layout of
// q4_offset read 32 bytes at a time: lanes 0-7 of a group's chunk k are blocks 0-7 of the group,
// lanes 8-15 blocks 8-15. Per half group: the four chunks' low and high nibbles against the
// input arranged for them (arrange_q4_input: the halves of its 64-byte vectors), summed in 16
// bits (each maddubs adds two products u x with u <= 15 and |x| <= 127, 3810; both nibbles of
// four chunks, 8 x 3810 = 30480 < 32767), then once into one int32 per block, which starts at
// the block's correction, and scaled by the eight blocks' factors. Masked: a row's last group
// holds fewer than 16 blocks, so its chunks are 4 m bytes apart and the half's lanes past the
// group's end are not read.
template <bool Masked>
WP_AVX2 inline __m256 q4_half_avx2(const std::uint8_t* w, int stride, const std::uint16_t* ws, const std::int8_t* x,
                                   const std::int32_t* c, const float* xd, __m256i lanes, __m256 acc) {
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    __m256i s = _mm256_setzero_si256();
    for (int k = 0; k < 4; ++k) {
        const __m256i v = Masked ? _mm256_maskload_epi32(reinterpret_cast<const int*>(w + stride * k), lanes)
                                 : _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + stride * k));
        const __m256i xl = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + 128 * k));
        const __m256i xh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + 128 * k + 64));
        s = _mm256_add_epi16(s, _mm256_maddubs_epi16(_mm256_and_si256(v, m4), xl));
        s = _mm256_add_epi16(s, _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(v, 4), m4), xh));
    }
    const __m256i sum = _mm256_add_epi32(_mm256_madd_epi16(s, _mm256_set1_epi16(1)),
                                         _mm256_loadu_si256(reinterpret_cast<const __m256i*>(c)));
    // Past a row's last block the scales read are the next row's (or the storage's slack),
    // against zero input scales.
    const __m256 d = _mm256_mul_ps(_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(ws))), _mm256_loadu_ps(xd));
    return _mm256_fmadd_ps(_mm256_cvtepi32_ps(sum), d, acc);
}

WP_AVX2 void rows_q4_avx2(const QMatrix& W, const std::int8_t* x4, const std::int32_t* c4, const float* xd, float* y,
                          int r0, int r1) {
    const int nb = W.cols / kQuantBlock, full = nb / 16, tail = nb % 16;
    const std::size_t row_bytes = static_cast<std::size_t>(W.cols) / 2;
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i first = _mm256_cmpgt_epi32(_mm256_set1_epi32(tail), lane);       // tail lanes of blocks 0-7
    const __m256i second = _mm256_cmpgt_epi32(_mm256_set1_epi32(tail - 8), lane);  // and of blocks 8-15
    for (int r = r0; r < r1; ++r) {
        const std::uint8_t* w = W.q4 + static_cast<std::size_t>(r) * row_bytes;
        const std::uint16_t* ws = W.scales + static_cast<std::size_t>(r) * nb;
        // The weights 3 KB ahead into L1. With the AVX2 kernels forced on the Zen 4 development
        // machine (`bench --avx2`, qwen2-0.5b, interleaved runs, tokens/s): 106.3/108.4/109.1,
        // 6 KB into L1 111.5/113.2/106.0 (within the noise), 6 KB into L2 96.0/99.9/98.9 (where
        // the AVX-512 kernel gains from L2).
        const char* ahead = reinterpret_cast<const char*>(w) + 3072;
        __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0;
        for (int g = 0; g < full; ++g) {
            for (int k = 0; k < 4; ++k) _mm_prefetch(ahead + 256 * g + 64 * k, _MM_HINT_T0);
            const std::uint8_t* wg = w + 256 * g;
            const std::int8_t* xg = x4 + 512 * g;
            acc0 = q4_half_avx2<false>(wg, 64, ws + 16 * g, xg, c4 + 16 * g, xd + 16 * g, first, acc0);
            acc1 = q4_half_avx2<false>(wg + 32, 64, ws + 16 * g + 8, xg + 32, c4 + 16 * g + 8, xd + 16 * g + 8, first, acc1);
        }
        if (tail > 0) {
            const int g = full;
            for (int k = 0; k < 4; ++k) _mm_prefetch(ahead + 256 * g + 64 * k, _MM_HINT_T0);
            const std::uint8_t* wg = w + 256 * g;
            const std::int8_t* xg = x4 + 512 * g;
            if (tail >= 8)
                acc0 = q4_half_avx2<false>(wg, 4 * tail, ws + 16 * g, xg, c4 + 16 * g, xd + 16 * g, first, acc0);
            else
                acc0 = q4_half_avx2<true>(wg, 4 * tail, ws + 16 * g, xg, c4 + 16 * g, xd + 16 * g, first, acc0);
            if (tail > 8)
                acc1 = q4_half_avx2<true>(wg + 32, 4 * tail, ws + 16 * g + 8, xg + 32, c4 + 16 * g + 8, xd + 16 * g + 8,
                                          second, acc1);
        }
        y[r] = hsum(_mm256_add_ps(acc0, acc1));
    }
}

WP_AVX2 float dot_f32_avx2(const float* a, const float* b, int n) {
    __m256 s0 = _mm256_setzero_ps(), s1 = s0;
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
    }
    float s = hsum(_mm256_add_ps(s0, s1));
    for (; i < n; ++i) s += a[i] * b[i];
    return s;
}
WP_AVX2 float dot_f32_f16_avx2(const float* a, const std::uint16_t* b, int n) {
    __m256 s0 = _mm256_setzero_ps(), s1 = s0;
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b + i))), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8),
                             _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b + i + 8))), s1);
    }
    float s = hsum(_mm256_add_ps(s0, s1));
    for (; i < n; ++i) s += a[i] * _cvtsh_ss(b[i]);
    return s;
}

WP_AVX2 void axpy_f16_avx2(float a, const std::uint16_t* x, float* y, int n) {
    const __m256 av = _mm256_set1_ps(a);
    int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(av, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x + i))),
                                                _mm256_loadu_ps(y + i)));
    for (; i < n; ++i) y[i] += a * _cvtsh_ss(x[i]);
}

WP_AVX2 void f32_to_f16_avx2(const float* src, std::uint16_t* dst, std::size_t n) {
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i), _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; ++i) dst[i] = _cvtss_sh(src[i], _MM_FROUND_TO_NEAREST_INT);
}
#endif  // WP_X86

#ifdef WP_X86
// Shared by the input and weight quantizers: the largest magnitude of a 32-value block (a gets
// the magnitudes), and 32 int32 values packed to int8 in order (saturating).
WP_AVX2 inline float block_amax(const __m256* v, __m256* a) {
    const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    for (int k = 0; k < 4; ++k) a[k] = _mm256_and_ps(v[k], abs_mask);
    const __m256 m = _mm256_max_ps(_mm256_max_ps(a[0], a[1]), _mm256_max_ps(a[2], a[3]));
    __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    h = _mm_max_ss(h, _mm_movehdup_ps(h));
    return _mm_cvtss_f32(h);
}
WP_AVX2 inline __m256i pack_i8(const __m256i* i) {
    const __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(i[0], i[1]), _mm256_packs_epi32(i[2], i[3]));
    return _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));  // undo the lane interleave
}

// The same quantization, eight lanes at a time (cvtps rounds to nearest even, as lrintf does).
WP_AVX2 void quantize_vector_avx2(const float* x, int n, std::int8_t* q, float* d) {
    for (int b = 0; b < n / kQuantBlock; ++b) {
        __m256 v[4], a[4];
        for (int k = 0; k < 4; ++k) v[k] = _mm256_loadu_ps(x + b * kQuantBlock + 8 * k);
        const float scale = block_amax(v, a) / 127.0f;
        const __m256 inv = _mm256_set1_ps(scale > 0 ? 1.0f / scale : 0.0f);
        d[b] = scale;
        __m256i i[4];
        for (int k = 0; k < 4; ++k) i[k] = _mm256_cvtps_epi32(_mm256_mul_ps(v[k], inv));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + b * kQuantBlock), pack_i8(i));
    }
}
#endif

void quantize_vector(const float* x, int n, std::int8_t* q, float* d) {
#ifdef WP_X86
    if (use_avx2_kernels()) return quantize_vector_avx2(x, n, q, d);
#endif
    quantize_vector_scalar(x, n, q, d);
}

// The input vector in the forms the kernels read.
struct Input {
    const float* x = nullptr;
    const float* xp = nullptr;         // bf16: even and odd elements of each 16-block (AVX-512: 32-block)
    const std::int8_t* xq = nullptr;   // q8/q4: int8 blocks
    const float* xd = nullptr;         // their scales
    const std::int8_t* x4 = nullptr;   // q4 (AVX2, AVX-512): groups of 16 blocks as the kernels read them
    const std::int32_t* c4 = nullptr;  // q4: their corrections, one per block
    bool avx512 = false;               // prepared for the AVX-512 kernels (rows follows this, not the switch)
};

// An AVX-512 path runs where the CPU has VNNI, its switch is on and the scalar kernels are not
// forced.
bool avx512_path(const std::atomic<bool>& enabled) {
    static const bool has = detail::cpu_has_avx512_vnni();
    return has && enabled.load(std::memory_order_relaxed) && !g_force_scalar.load(std::memory_order_relaxed);
}
std::atomic<bool> g_int8_gemm{true};
std::atomic<bool> g_avx512_decode{true};
bool use_avx512_decode() { return avx512_path(g_avx512_decode); }

#ifdef WP_X86
// The first 6 KB of rows [r0, r1) (and the first 512 bytes of their scales). The vector kernels
// prefetch ahead of the bytes they read (3 or 6 KB), which never
// covers the start of the rows they are given: each chunk of rows a thread takes (about eight
// per thread and product, 200 products a token) would begin with demand misses, one line after
// another. Once per chunk, not per call of the kernels (a short prompt calls them for every input
// row and 16 weight rows).
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
#endif

// stream: one input row (decoding), whose weights come from memory once, not a block of rows that
// several input rows are run against in cache.
void rows(const QMatrix& W, const Input& in, float* y, int r0, int r1, bool stream) {
    const float* x = in.x;
    const std::int8_t* xq = in.xq;
    const float* xd = in.xd;
#ifdef WP_X86
    if (in.avx512) {
        if (W.precision == Precision::F32) return detail::rows_f32_avx512(W, x, y, r0, r1);
        if (W.precision == Precision::BF16) return detail::rows_bf16_avx512(W, in.xp, x, y, r0, r1);
        if (W.precision == Precision::Q8) return detail::rows_q8_avx512(W, xq, xd, y, r0, r1);
        if (W.precision == Precision::Q4) return detail::rows_q4_avx512(W, in.x4, in.c4, xd, y, r0, r1);
    }
    if (use_avx2_kernels()) {
        // Per-thread block factors of one q8 row (rows have at most a few thousand blocks).
        thread_local std::vector<float> d;
        if (d.size() < static_cast<std::size_t>(W.cols / kQuantBlock)) d.resize(W.cols / kQuantBlock);
        switch (W.precision) {
            case Precision::F32: rows_f32_avx2(W.f32, W.cols, x, y, r0, r1, stream); return;
            case Precision::BF16: rows_bf16_avx2(W.bf16, W.cols, in.xp, x, y, r0, r1, stream); return;
            case Precision::Q8: rows_q8_avx2(W, xq, xd, d.data(), y, r0, r1); return;
            case Precision::Q4: rows_q4_avx2(W, in.x4, in.c4, xd, y, r0, r1); return;
        }
    }
#endif
    const int nb = W.cols / kQuantBlock;
    for (int r = r0; r < r1; ++r) {
        const std::size_t o = static_cast<std::size_t>(r) * W.cols;
        switch (W.precision) {
            case Precision::F32: y[r] = dot_f32_scalar(W.f32 + o, x, W.cols); break;
            case Precision::BF16: y[r] = dot_bf16_scalar(W.bf16 + o, x, W.cols); break;
            case Precision::Q8: y[r] = dot_q8_scalar(W.q8 + o, W.scales + static_cast<std::size_t>(r) * nb, xq, xd, W.cols); break;
            case Precision::Q4: y[r] = dot_q4_scalar(W.q4 + o / 2, W.scales + static_cast<std::size_t>(r) * nb, xq, xd, W.cols); break;
        }
    }
}

}  // namespace

namespace detail {
void quantize_vector_blocks(const float* x, int n, std::int8_t* q, float* d) { quantize_vector(x, n, q, d); }
}  // namespace detail

bool avx512_decode_kernels() { return use_avx512_decode(); }
void set_avx512_decode_kernels_enabled(bool on) { g_avx512_decode = on; }
bool int8_gemm_available() { return avx512_path(g_int8_gemm); }
void set_int8_gemm_enabled(bool on) { g_int8_gemm = on; }

float dot_f32(const float* a, const float* b, int n) {
#ifdef WP_X86
    if (use_avx2_kernels()) return dot_f32_avx2(a, b, n);
#endif
    return dot_f32_scalar(a, b, n);
}

float dot_f32_f16(const float* a, const std::uint16_t* b, int n) {
#ifdef WP_X86
    if (use_avx2_kernels()) return dot_f32_f16_avx2(a, b, n);
#endif
    float s = 0;
    for (int i = 0; i < n; ++i) s += a[i] * half(b[i]);
    return s;
}

void axpy_f16(float a, const std::uint16_t* x, float* y, int n) {
#ifdef WP_X86
    if (use_avx2_kernels()) return axpy_f16_avx2(a, x, y, n);
#endif
    for (int i = 0; i < n; ++i) y[i] += a * half(x[i]);
}

void f32_to_f16_array(const float* src, std::uint16_t* dst, std::size_t n) {
#ifdef WP_X86
    if (use_avx2_kernels()) return f32_to_f16_avx2(src, dst, n);
#endif
    for (std::size_t i = 0; i < n; ++i) dst[i] = f32_to_f16(src[i]);
}

void f16_to_f32_array(const std::uint16_t* src, float* dst, std::size_t n) { ops::f16_to_f32(src, dst, n); }

bool cpu_has_avx2_fma() {
#ifdef WP_X86
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
#else
    return false;
#endif
}

void set_force_scalar_kernels(bool on) { g_force_scalar = on; }

bool use_avx2_kernels() {
    static const bool has = cpu_has_avx2_fma();
    return has && !g_force_scalar.load(std::memory_order_relaxed);
}

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

#ifdef WP_X86
namespace {
// The same widening, eight weights per step (prefill widens every weight once per call).
WP_AVX2 void dequantize_q8_avx2(const std::int8_t* q, const std::uint16_t* sc, int nb, float* o) {
    for (int b = 0; b < nb; ++b) {
        const __m256 d = _mm256_set1_ps(_cvtsh_ss(sc[b]));
        for (int k = 0; k < 4; ++k) {
            const __m128i v = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(q + b * kQuantBlock + 8 * k));
            _mm256_storeu_ps(o + b * kQuantBlock + 8 * k, _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(v))));
        }
    }
}
WP_AVX2 void dequantize_q4_avx2(const std::uint8_t* q, const std::uint16_t* sc, int nb, float* o) {
    const __m128i m4 = _mm_set1_epi8(0x0f), eight = _mm_set1_epi8(8);
    for (int b = 0; b < nb; ++b) {
        const __m256 d = _mm256_set1_ps(_cvtsh_ss(sc[b]));
        std::uint8_t bytes[16];
        load_q4_block(q, b, nb, bytes);
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

void QMatrix::dequantize_rows(int r0, int r1, float* out) const {
    const int nb = cols / kQuantBlock;
    for (int r = r0; r < r1; ++r) {
        float* o = out + static_cast<std::size_t>(r - r0) * cols;
        const std::size_t base = static_cast<std::size_t>(r) * cols;
        const std::uint16_t* sc = scales != nullptr ? scales + static_cast<std::size_t>(r) * nb : nullptr;  // q8/q4
        switch (precision) {
            case Precision::F32: std::memcpy(o, f32 + base, sizeof(float) * cols); break;
            case Precision::BF16: ops::bf16_to_f32(bf16 + base, o, cols); break;
            case Precision::Q8:
#ifdef WP_X86
                if (use_avx2_kernels()) {
                    dequantize_q8_avx2(q8 + base, sc, nb, o);
                    break;
                }
#endif
                for (int b = 0; b < nb; ++b) {
                    const float d = half(sc[b]);
                    for (int i = 0; i < kQuantBlock; ++i) o[b * kQuantBlock + i] = d * q8[base + b * kQuantBlock + i];
                }
                break;
            case Precision::Q4:
#ifdef WP_X86
                if (use_avx2_kernels()) {
                    dequantize_q4_avx2(q4 + base / 2, sc, nb, o);
                    break;
                }
#endif
                for (int b = 0; b < nb; ++b) {
                    const float d = half(sc[b]);
                    std::uint8_t q[16];
                    load_q4_block(q4 + base / 2, b, nb, q);
                    for (int i = 0; i < 16; ++i) {
                        o[b * kQuantBlock + i] = d * (static_cast<int>(q[i] & 0x0f) - 8);
                        o[b * kQuantBlock + i + 16] = d * (static_cast<int>(q[i] >> 4) - 8);
                    }
                }
                break;
        }
    }
}

QStorage::~QStorage() {
    for (const Buffer& b : buffers) munmap(b.base, b.size);
}

void* QStorage::alloc_bytes(std::size_t bytes) {
    const std::size_t need = (bytes + 64 + 63) & ~std::size_t{63};
    if (need > left_) {
        const std::size_t size = std::max(std::size_t{64} << 20, whole_huge_pages(need));
        next_ = static_cast<char*>(map_huge_pages(size));
        left_ = size;
        buffers.push_back({next_, size});
    }
    void* piece = next_;
    next_ += need;
    left_ -= need;
    return piece;  // zero-filled (fresh anonymous memory, never handed out before)
}

void* map_huge_pages(std::size_t bytes) {
    const std::size_t size = whole_huge_pages(bytes);
    // Mapped with 2 MB to spare, then trimmed to start on a 2 MB boundary.
    const std::size_t span = size + kHugePage;
    void* p = mmap(nullptr, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
    char* const raw = static_cast<char*>(p);
    char* const base = reinterpret_cast<char*>(whole_huge_pages(reinterpret_cast<std::uintptr_t>(raw)));
    if (base > raw) munmap(raw, static_cast<std::size_t>(base - raw));
    if (raw + span > base + size) munmap(base + size, static_cast<std::size_t>(raw + span - (base + size)));
#ifdef MADV_HUGEPAGE
    madvise(base, size, MADV_HUGEPAGE);  // before the first touch
#endif
    return base;
}

void unmap_huge_pages(void* p, std::size_t bytes) { munmap(p, whole_huge_pages(bytes)); }

namespace {

// Quantization of weight blocks [b0, b1) at load. Q8: d = amax / 127, q = round(w / d) in
// -127..127. Q4 (as Q4_0): the largest-magnitude value maps to -8, so the range is used fully;
// q = round(w / d) + 8 clamped to 0..15, element i in the low nibble of byte i, element i + 16
// in its high nibble, and the bytes placed in the row layout of q4_offset (blocks of a row:
// nb). The scale is rounded to f16 first and the weights divided by the rounded scale. The AVX2
// version below gives identical results.
void quantize_blocks_scalar(Precision precision, const float* f32, const std::uint16_t* bf16, std::size_t b0,
                            std::size_t b1, int nb, std::uint16_t* sc, std::int8_t* q8, std::uint8_t* q4) {
    float block[kQuantBlock];
    for (std::size_t b = b0; b < b1; ++b) {
        float amax = 0, signed_max = 0;
        for (int i = 0; i < kQuantBlock; ++i) {
            const std::size_t j = b * kQuantBlock + i;
            block[i] = f32 ? f32[j] : ops::bf16_to_f32(bf16[j]);
            if (std::fabs(block[i]) > amax) {
                amax = std::fabs(block[i]);
                signed_max = block[i];
            }
        }
        if (precision == Precision::Q8) {
            sc[b] = f32_to_f16(amax / 127.0f);
            const float dd = half(sc[b]);
            const float inv = dd > 0 ? 1.0f / dd : 0.0f;
            for (int i = 0; i < kQuantBlock; ++i)
                q8[b * kQuantBlock + i] = static_cast<std::int8_t>(std::clamp(std::lrintf(block[i] * inv), -127L, 127L));
        } else {
            sc[b] = f32_to_f16(signed_max / -8.0f);
            const float dd = half(sc[b]);
            const float inv = dd != 0 ? 1.0f / dd : 0.0f;
            std::uint8_t q[16];
            for (int i = 0; i < 16; ++i) {
                const int lo = static_cast<int>(std::clamp(std::lrintf(block[i] * inv) + 8, 0L, 15L));
                const int hi = static_cast<int>(std::clamp(std::lrintf(block[i + 16] * inv) + 8, 0L, 15L));
                q[i] = static_cast<std::uint8_t>(lo | (hi << 4));
            }
            store_q4_block(q4 + b / nb * nb * 16, static_cast<int>(b % nb), nb, q);
        }
    }
}

#ifdef WP_X86
WP_AVX2 void quantize_blocks_avx2(Precision precision, const float* f32, const std::uint16_t* bf16, std::size_t b0,
                                  std::size_t b1, int nb, std::uint16_t* sc, std::int8_t* q8, std::uint8_t* q4) {
    for (std::size_t b = b0; b < b1; ++b) {
        __m256 v[4], a[4];
        for (int k = 0; k < 4; ++k) {
            const std::size_t j = b * kQuantBlock + 8 * k;
            v[k] = f32 ? _mm256_loadu_ps(f32 + j) : load_bf16(bf16 + j);
        }
        const float amax = block_amax(v, a);
        float inv;
        if (precision == Precision::Q8) {
            sc[b] = f32_to_f16(amax / 127.0f);
            const float dd = _cvtsh_ss(sc[b]);  // exact, as half()
            inv = dd > 0 ? 1.0f / dd : 0.0f;
        } else {
            // The first element of largest magnitude, as the scalar scan picks it.
            const __m256 am = _mm256_set1_ps(amax);
            std::uint32_t hits = 0;
            for (int k = 0; k < 4; ++k)
                hits |= static_cast<std::uint32_t>(_mm256_movemask_ps(_mm256_cmp_ps(a[k], am, _CMP_EQ_OQ))) << (8 * k);
            float vals[kQuantBlock];
            for (int k = 0; k < 4; ++k) _mm256_storeu_ps(vals + 8 * k, v[k]);
            const float signed_max = hits != 0 && amax > 0 ? vals[__builtin_ctz(hits)] : 0.0f;
            sc[b] = f32_to_f16(signed_max / -8.0f);
            const float dd = _cvtsh_ss(sc[b]);  // exact, as half()
            inv = dd != 0 ? 1.0f / dd : 0.0f;
        }
        const __m256 iv = _mm256_set1_ps(inv);
        __m256i i[4];
        for (int k = 0; k < 4; ++k) i[k] = _mm256_cvtps_epi32(_mm256_mul_ps(v[k], iv));  // rounds as lrintf
        if (precision == Precision::Q8) {
            const __m256i c = _mm256_max_epi8(pack_i8(i), _mm256_set1_epi8(-127));
            _mm256_storeu_si256(reinterpret_cast<__m256i*>(q8 + b * kQuantBlock), c);
        } else {
            const __m256i lo = _mm256_set1_epi32(0), hi = _mm256_set1_epi32(15), eight = _mm256_set1_epi32(8);
            for (int k = 0; k < 4; ++k) i[k] = _mm256_min_epi32(_mm256_max_epi32(_mm256_add_epi32(i[k], eight), lo), hi);
            // Bytes 0-7 and 8-15: elements 0-7 | 16-23 << 4 and 8-15 | 24-31 << 4.
            const __m256i n0 = _mm256_or_si256(i[0], _mm256_slli_epi32(i[2], 4));
            const __m256i n1 = _mm256_or_si256(i[1], _mm256_slli_epi32(i[3], 4));
            const __m256i p16 = _mm256_packs_epi32(n0, n1);  // per lane: n0 (4), n1 (4)
            const __m256i p8 = _mm256_packus_epi16(p16, p16);
            const __m256i o = _mm256_permutevar8x32_epi32(p8, _mm256_setr_epi32(0, 4, 1, 5, 0, 0, 0, 0));
            std::uint8_t bytes[16];
            _mm_storeu_si128(reinterpret_cast<__m128i*>(bytes), _mm256_castsi256_si128(o));
            store_q4_block(q4 + b / nb * nb * 16, static_cast<int>(b % nb), nb, bytes);
        }
    }
}
#endif

void quantize_blocks(Precision precision, const float* f32, const std::uint16_t* bf16, std::size_t b0, std::size_t b1,
                     int nb, std::uint16_t* sc, std::int8_t* q8, std::uint8_t* q4) {
#ifdef WP_X86
    if (use_avx2_kernels()) return quantize_blocks_avx2(precision, f32, bf16, b0, b1, nb, sc, q8, q4);
#endif
    quantize_blocks_scalar(precision, f32, bf16, b0, b1, nb, sc, q8, q4);
}

}  // namespace

QMatrix make_qmatrix(Precision precision, int rows, int cols, const float* f32, const std::uint16_t* bf16, QStorage& st,
                     ThreadPool* pool) {
    QMatrix m;
    m.rows = rows;
    m.cols = cols;
    const std::size_t n = static_cast<std::size_t>(rows) * cols;
    if ((precision == Precision::Q8 || precision == Precision::Q4) && cols % kQuantBlock != 0) precision = Precision::F32;
    m.precision = precision;
    // Rows [r0, r1) of the conversion, on the pool's threads when there is one.
    auto each_rows = [&](auto&& body) {
        if (pool != nullptr && n >= (std::size_t{1} << 16))
            pool->parallel_for(rows, 64, [&](std::int64_t r0, std::int64_t r1) {
                body(static_cast<std::size_t>(r0), static_cast<std::size_t>(r1));
            });
        else
            body(std::size_t{0}, static_cast<std::size_t>(rows));
    };
    const std::size_t C = static_cast<std::size_t>(cols);
    switch (precision) {
        case Precision::F32:
            if (f32) {
                m.f32 = f32;
            } else {
                float* w = st.alloc<float>(n);
                each_rows([&](std::size_t r0, std::size_t r1) { ops::bf16_to_f32(bf16 + r0 * C, w + r0 * C, (r1 - r0) * C); });
                m.f32 = w;
            }
            break;
        case Precision::BF16:
            if (bf16) {
                m.bf16 = bf16;
            } else {
                std::uint16_t* w = st.alloc<std::uint16_t>(n);
                each_rows([&](std::size_t r0, std::size_t r1) {
                    for (std::size_t i = r0 * C; i < r1 * C; ++i) w[i] = ops::f32_to_bf16(f32[i]);
                });
                m.bf16 = w;
            }
            break;
        case Precision::Q8:
        case Precision::Q4: {
            const std::size_t nb = n / kQuantBlock, row_blocks = C / kQuantBlock;
            // Kernels read whole vectors of blocks past a row's end (the q8 ones the next
            // row's weights, the q4 ones its scales, or past the last row): room for more.
            std::uint16_t* sc = st.alloc<std::uint16_t>(nb + 8);
            std::int8_t* q8 = precision == Precision::Q8 ? st.alloc<std::int8_t>(n) : nullptr;
            std::uint8_t* q4 = precision == Precision::Q4 ? st.alloc<std::uint8_t>(n / 2 + 8 * kQuantBlock / 2) : nullptr;
            each_rows([&](std::size_t r0, std::size_t r1) {
                quantize_blocks(precision, f32, bf16, r0 * row_blocks, r1 * row_blocks, static_cast<int>(row_blocks), sc, q8, q4);
            });
            m.scales = sc;
            m.q8 = q8;
            m.q4 = q4;
            break;
        }
    }
    return m;
}

namespace {

// The input vector in the form W's kernel reads (once per product, or once for several).
Input prepare_input(const QMatrix& W, const float* x, InputScratch& s) {
    Input in;
    in.x = x;
    in.avx512 = use_avx512_decode();
    if (W.precision == Precision::BF16) {
        // Even and odd elements of each 16-block (AVX2) or 32-block (AVX-512), for the bf16 kernel.
        if (s.xp.size() < static_cast<std::size_t>(W.cols)) s.xp.resize(W.cols);
        const int block = in.avx512 ? 32 : 16;
        for (int b = 0; b + block <= W.cols; b += block)
            for (int i = 0; i < block / 2; ++i) {
                s.xp[b + i] = x[b + 2 * i];
                s.xp[b + block / 2 + i] = x[b + 2 * i + 1];
            }
        in.xp = s.xp.data();
    }
    if (W.precision == Precision::Q8 || W.precision == Precision::Q4) {
        // Blocks padded to a multiple of sixteen (the vector kernels' step); the padding is
        // zeroed on every call, since a wider input may have used it before.
        const int nb = W.cols / kQuantBlock, padded = (nb + 15) / 16 * 16;
        const std::size_t bytes = static_cast<std::size_t>(padded) * kQuantBlock;
        if (s.xq.size() < bytes) {
            s.xq.resize(bytes);
            s.xd.resize(padded);
        }
        quantize_vector(x, W.cols, s.xq.data(), s.xd.data());
        std::fill(s.xd.begin() + nb, s.xd.begin() + padded, 0.0f);
        std::fill(s.xq.begin() + static_cast<std::size_t>(nb) * kQuantBlock, s.xq.begin() + bytes, std::int8_t{0});
        in.xq = s.xq.data();
        in.xd = s.xd.data();
        // The vector q4 kernels read the input arranged for their row layout (the scalar one
        // reads xq); as prepared for the AVX-512 kernels, whatever the switches say by now.
        if (W.precision == Precision::Q4 && (in.avx512 || use_avx2_kernels())) {
            if (s.x4.size() < bytes) {
                s.x4.resize(bytes);
                s.c4.resize(padded);
            }
            detail::arrange_q4_input(s.xq.data(), nb, padded, s.x4.data(), s.c4.data());
            in.x4 = s.x4.data();
            in.c4 = s.c4.data();
        }
    }
    return in;
}

}  // namespace

namespace {
std::atomic<int> g_few_rows_override{-1};
}

void set_few_rows_limit(int limit) { g_few_rows_override = limit; }

int few_rows_limit(Precision p) {
    const int forced = g_few_rows_override.load(std::memory_order_relaxed);
    if (forced >= 0) return std::max(1, forced);
    // The int8 product beats the decode kernels from two input rows on (qwen2-0.5b's 4864 x 896
    // up-projection, 2 threads: 42 against 38 GMAC/s at 2 rows in q8, 89 against 36 at 4, 218
    // against 45 at 16).
    if ((p == Precision::Q8 || p == Precision::Q4) && int8_gemm_available()) return 1;
    switch (p) {
        case Precision::F32: return 12;
        case Precision::BF16: return 40;
        case Precision::Q8: return 48;
        case Precision::Q4: return 192;
    }
    return 0;
}

namespace {

// A few input rows (a short prompt, a chat turn): the decode kernels, over blocks of 16 weight
// rows that stay in cache while every input row is run against them, so the weights are read
// from memory once per 64 input rows instead of being widened to f32 for sgemm (which for 4
// rows of a q4 model cost ten times as long as decoding them one by one).
void matmul_few(const QMatrix* const* Ws, const float* X, int n, float* const* Ys, int count, ThreadPool& pool,
                KernelScratch& s) {
    constexpr int kBatch = 64;
    if (s.inputs.size() < static_cast<std::size_t>(std::min(n, kBatch))) s.inputs.resize(std::min(n, kBatch));
    std::int64_t total = 0;
    for (int i = 0; i < count; ++i) total += Ws[i]->rows;
    Input in[kBatch];
    for (int t0 = 0; t0 < n; t0 += kBatch) {
        const int nt = std::min(kBatch, n - t0);
        pool.parallel_for(nt, 1, [&](std::int64_t b, std::int64_t e) {
            for (std::int64_t t = b; t < e; ++t)
                in[t] = prepare_input(*Ws[0], X + static_cast<std::size_t>(t0 + t) * Ws[0]->cols, s.inputs[t]);
        });
        pool.parallel_for(total, 16, [&](std::int64_t b, std::int64_t e) {
            std::int64_t off = 0;
            for (int i = 0; i < count && off < e; off += Ws[i]->rows, ++i) {
                const QMatrix& W = *Ws[i];
                const std::int64_t lo = std::max(b, off), hi = std::min(e, off + W.rows);
                // One input row (decode): the whole range in one call.
                const std::int64_t step = nt == 1 ? std::max<std::int64_t>(1, hi - lo) : 16;
#ifdef WP_X86
                if (lo < hi && use_avx2_kernels()) prefetch_rows_start(W, static_cast<int>(lo - off), static_cast<int>(hi - off));
#endif
                for (std::int64_t r = lo; r < hi; r += step) {
                    const int r0 = static_cast<int>(r - off), r1 = static_cast<int>(std::min(hi, r + step) - off);
                    for (int t = 0; t < nt; ++t)
                        rows(W, in[t], Ys[i] + static_cast<std::size_t>(t0 + t) * W.rows, r0, r1, nt == 1);
                }
            }
        });
    }
}

}  // namespace

void matvec(const QMatrix& W, const float* x, float* y, ThreadPool& pool, KernelScratch& s) { matmul(W, x, 1, y, pool, s); }

void matmul_multi(const QMatrix* const* Ws, const float* X, int n, float* const* Ys, int count, ThreadPool& pool,
                  KernelScratch& s) {
    if (count <= 0 || n <= 0) return;
    bool same = true;
    for (int i = 0; i < count; ++i) same = same && Ws[i]->precision == Ws[0]->precision && Ws[i]->cols == Ws[0]->cols;
    if (same && n <= few_rows_limit(Ws[0]->precision)) return matmul_few(Ws, X, n, Ys, count, pool, s);
    for (int i = 0; i < count; ++i) matmul(*Ws[i], X, n, Ys[i], pool, s);
}

void matmul(const QMatrix& W, const float* X, int n, float* Y, ThreadPool& pool, KernelScratch& s) {
    if (n <= few_rows_limit(W.precision)) {
        const QMatrix* Ws[1] = {&W};
        float* Ys[1] = {Y};
        return matmul_few(Ws, X, n, Ys, 1, pool, s);
    }
    if ((W.precision == Precision::Q8 || W.precision == Precision::Q4) && int8_gemm_available())
        return detail::qgemm_avx512(W, X, n, Y, pool, s);
    if (W.precision == Precision::F32) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, W.rows, W.cols, 1.0f, X, W.cols, W.f32, W.cols, 0.0f, Y,
                    W.rows);
        return;
    }
    // Widen a tile of weight rows, then sgemm against it. Each sgemm call packs the input rows
    // anew and synchronises BLAS's threads, so tiles are large (up to 16 MB, usually a whole
    // matrix of a small model): qwen2-0.5b q4 prefill went from ~127 tokens/s with 2 MB tiles to
    // ~150 with 16 MB ones on the 2-core development machine.
    // The rows are split evenly between the tiles (in whole 16s): at 2304 x 9216, 2 threads,
    // `bench-kernels --avx2 --precision q8 --inputs 512`, cut as 455 x 5 + 29 rows it ran at
    // 94.3/95.4/97.3 GMAC/s, as 384 x 6 at 99.3/99.6/100.7 (a short last tile's sgemm is slow).
    const std::int64_t max_rows = std::max(16, std::min(W.rows, (1 << 22) / std::max(1, W.cols)));
    const std::int64_t tiles = (W.rows + max_rows - 1) / max_rows;
    const int tile_rows = static_cast<int>(std::min<std::int64_t>(W.rows, ((W.rows + tiles - 1) / tiles + 15) / 16 * 16));
    if (s.tile.size() < static_cast<std::size_t>(tile_rows) * W.cols) s.tile.resize(static_cast<std::size_t>(tile_rows) * W.cols);
    for (int r0 = 0; r0 < W.rows; r0 += tile_rows) {
        const int r1 = std::min(W.rows, r0 + tile_rows);
        float* tile = s.tile.data();
        pool.parallel_for(r1 - r0, 4, [&](std::int64_t b, std::int64_t e) {
            W.dequantize_rows(r0 + static_cast<int>(b), r0 + static_cast<int>(e), tile + b * W.cols);
        });
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, r1 - r0, W.cols, 1.0f, X, W.cols, tile, W.cols, 0.0f,
                    Y + r0, W.rows);
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
