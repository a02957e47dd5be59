// The int8 product of q8/q4 weights with many input rows (prompt processing), AVX-512 VNNI.
//
// The input rows are rounded to int8 blocks of 32 exactly as the decode kernels round one input
// vector. Weight rows are taken 32 at a time (two sets of 16 lanes) and repacked into the layout
// vpdpbusd reads: for each block, eight vectors whose lane j holds four consecutive weights of row
// j. Four input rows at a time then run against them: each block's integer sum accumulates in
// int32 (exact), and is scaled once per block by weight scale x input scale into the float sums.
//
// vpdpbusd multiplies unsigned bytes by signed bytes. q4 keeps its unsigned nibbles u = w + 8:
// sum (u - 8) x = sum u x - 8 sum x, so each block's int32 sum starts at -8 sum x. q8 offsets
// the input instead, x + 128 as unsigned: sum w (x + 128) = sum w x + 128 sum w, so each block's
// sum starts at -128 sum w (per weight row, computed while repacking).
#include "qgemm.h"

#include <algorithm>
#include <cstring>
#include <vector>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace wp::detail {

void arrange_q4_input(const std::int8_t* xq, int nb, int blocks, std::int8_t* x4, std::int32_t* c4) {
    for (int g = 0; g < blocks / 16; ++g) {
        std::int8_t* xg = x4 + 512 * g;
        for (int j = 0; j < 16; ++j) {
            const int b = 16 * g + j;
            int sum = 0;
            for (int k = 0; k < 4; ++k) {
                std::int8_t* lo = xg + 128 * k + 4 * j;
                if (b < nb) {
                    std::memcpy(lo, xq + kQuantBlock * b + 4 * k, 4);
                    std::memcpy(lo + 64, xq + kQuantBlock * b + 16 + 4 * k, 4);
                } else {
                    std::memset(lo, 0, 4);
                    std::memset(lo + 64, 0, 4);
                }
            }
            if (b < nb)
                for (int i = 0; i < kQuantBlock; ++i) sum += xq[kQuantBlock * b + i];
            c4[16 * g + j] = -8 * sum;
        }
    }
}

#if defined(__x86_64__)

bool cpu_has_avx512_vnni() {
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni") && cpu_has_avx2_fma();
}

#define WP_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")))

namespace {

constexpr int kGroupRows = 32;  // weight rows repacked together: two sets of 16 lanes
constexpr int kTile = 4;        // input rows run together against them

// One block of 32 columns of a group of 32 weight rows, repacked.
struct alignas(64) PackedBlock {
    __m512i w[2][8];  // [half][k]: lane j = weights 4k..4k+3 of row 16 half + j (q4: u, q8: w)
    __m512 d[2];      // weight scales
    __m512i c[2];     // q8: -128 x sum of the block's weights (the input offset's correction)
};

WP_AVX512 void pack_group(const QMatrix& W, int r0, PackedBlock* out) {
    const int nb = W.cols / kQuantBlock;
    const bool q4 = W.precision == Precision::Q4;
    const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m512i zero = _mm512_setzero_si512(), ones = _mm512_set1_epi8(1), m4 = _mm512_set1_epi8(0x0f);
    for (int h = 0; h < 2; ++h) {
        const int first = r0 + 16 * h;
        const int valid = std::clamp(W.rows - first, 0, 16);
        const __mmask16 mask = static_cast<__mmask16>((1u << valid) - 1);
        if (valid == 0) {
            for (int b = 0; b < nb; ++b) {
                for (int k = 0; k < 8; ++k) out[b].w[h][k] = zero;
                out[b].d[h] = _mm512_setzero_ps();
                out[b].c[h] = zero;
            }
            continue;
        }
        const std::size_t row_bytes = q4 ? W.cols / 2 : W.cols;
        const std::uint8_t* base = q4 ? W.q4 + static_cast<std::size_t>(first) * row_bytes
                                      : reinterpret_cast<const std::uint8_t*>(W.q8) + static_cast<std::size_t>(first) * row_bytes;
        const __m512i widx = _mm512_mullo_epi32(lane, _mm512_set1_epi32(static_cast<int>(row_bytes)));
        const std::uint8_t* sbase = reinterpret_cast<const std::uint8_t*>(W.scales + static_cast<std::size_t>(first) * nb);
        const __m512i sidx = _mm512_mullo_epi32(lane, _mm512_set1_epi32(2 * nb));
        for (int b = 0; b < nb; ++b) {
            PackedBlock& p = out[b];
            if (q4) {
                // Byte i of a block holds element i (low nibble) and element i + 16 (high);
                // bytes 4k..4k+3 lie together (q4_offset).
                for (int k = 0; k < 4; ++k) {
                    const __m512i v = _mm512_mask_i32gather_epi32(zero, mask, widx, base + q4_offset(b, 4 * k, nb), 1);
                    p.w[h][k] = _mm512_and_si512(v, m4);
                    p.w[h][k + 4] = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
                }
                p.c[h] = zero;
            } else {
                __m512i sum = zero;
                for (int k = 0; k < 8; ++k) {
                    const __m512i v = _mm512_mask_i32gather_epi32(zero, mask, widx, base + 32 * b + 4 * k, 1);
                    p.w[h][k] = v;
                    sum = _mm512_dpbusd_epi32(sum, ones, v);
                }
                p.c[h] = _mm512_sub_epi32(zero, _mm512_slli_epi32(sum, 7));
            }
            // The f16 scale of block b of each row: the low half of a 32-bit gather (the
            // scales have slack past the last block).
            const __m512i sv = _mm512_mask_i32gather_epi32(zero, mask, sidx, sbase + 2 * b, 1);
            p.d[h] = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(sv));
        }
    }
}

struct Inputs {
    const std::uint8_t* q;  // [n, cols]: q4: int8 x; q8: x + 128 as unsigned
    const float* d;         // [n, nb] block scales
    const std::int32_t* s;  // q4: [n, nb] -8 x the block's sum
    int cols, nb;
};

template <int T, bool Q4>
WP_AVX512 void run_tile(const PackedBlock* P, const Inputs& in, int t0, float* Y, int ldy, int r0, int rows) {
    __m512 acc[T][2];
    for (int t = 0; t < T; ++t) acc[t][0] = acc[t][1] = _mm512_setzero_ps();
    const std::uint8_t* xr[T];
    for (int t = 0; t < T; ++t) xr[t] = in.q + static_cast<std::size_t>(t0 + t) * in.cols;
    for (int b = 0; b < in.nb; ++b) {
        const PackedBlock& p = P[b];
        __m512i ai[T][2];
        for (int t = 0; t < T; ++t) {
            if constexpr (Q4) {
                ai[t][0] = ai[t][1] = _mm512_set1_epi32(in.s[static_cast<std::size_t>(t0 + t) * in.nb + b]);
            } else {
                ai[t][0] = p.c[0];
                ai[t][1] = p.c[1];
            }
        }
        for (int k = 0; k < 8; ++k) {
            const __m512i w0 = p.w[0][k], w1 = p.w[1][k];
            for (int t = 0; t < T; ++t) {
                std::int32_t xv;
                std::memcpy(&xv, xr[t] + 32 * b + 4 * k, 4);
                const __m512i x = _mm512_set1_epi32(xv);
                if constexpr (Q4) {
                    ai[t][0] = _mm512_dpbusd_epi32(ai[t][0], w0, x);
                    ai[t][1] = _mm512_dpbusd_epi32(ai[t][1], w1, x);
                } else {
                    ai[t][0] = _mm512_dpbusd_epi32(ai[t][0], x, w0);
                    ai[t][1] = _mm512_dpbusd_epi32(ai[t][1], x, w1);
                }
            }
        }
        for (int t = 0; t < T; ++t) {
            const __m512 dx = _mm512_set1_ps(in.d[static_cast<std::size_t>(t0 + t) * in.nb + b]);
            acc[t][0] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(ai[t][0]), _mm512_mul_ps(p.d[0], dx), acc[t][0]);
            acc[t][1] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(ai[t][1]), _mm512_mul_ps(p.d[1], dx), acc[t][1]);
        }
    }
    for (int h = 0; h < 2; ++h) {
        const int valid = std::clamp(rows - (r0 + 16 * h), 0, 16);
        if (valid == 0) continue;
        const __mmask16 mask = static_cast<__mmask16>((1u << valid) - 1);
        for (int t = 0; t < T; ++t)
            _mm512_mask_storeu_ps(Y + static_cast<std::size_t>(t0 + t) * ldy + r0 + 16 * h, mask, acc[t][h]);
    }
}

template <bool Q4>
WP_AVX512 void run_group(const PackedBlock* P, const Inputs& in, int n, float* Y, int ldy, int r0, int rows) {
    int t = 0;
    for (; t + kTile <= n; t += kTile) run_tile<kTile, Q4>(P, in, t, Y, ldy, r0, rows);
    switch (n - t) {
        case 3: run_tile<3, Q4>(P, in, t, Y, ldy, r0, rows); break;
        case 2: run_tile<2, Q4>(P, in, t, Y, ldy, r0, rows); break;
        case 1: run_tile<1, Q4>(P, in, t, Y, ldy, r0, rows); break;
        default: break;
    }
}

}  // namespace

// ---- decode: one input vector -------------------------------------------------------------
//
// q8: 64 weights (two blocks) per vpdpbusd, |w| against x with w's sign (vpdpbusd multiplies
// unsigned by signed bytes); lanes 0-7 hold block b's products, 8-15 block b + 1, and each lane's
// integer sum is scaled by its block's factor (weight scale x input scale, spread to the block's
// lanes by one permute from sixteen factors computed together) into one float sum. q4: a group
// of 16 blocks at a time in the layout of q4_offset, each block's integer sum in its own lane,
// scaled by the sixteen factors as they come (in cache, 2 threads, `bench-kernels --mb 64`:
// 54-61 GB/s at 4864 x 896 and 61-67 at 896 x 4864, where the earlier layout, four blocks per
// load with a permute of the factors per load, gave 39-53 and 42-55).
//
// The weights ahead of those being read are prefetched (the rows are contiguous, so that runs on
// into the following rows): f32 3 KB ahead into L1, bf16, q8 and q4, which spend more time on
// each byte, 6 KB ahead into L2. On the Zen 4 development machine, whose memory reads 32-46 GB/s
// from one minute to the next, qwen2-0.5b decode with 3 KB into L1 for all, then the split
// (interleaved runs, tokens/s): q4 112.7/112.6/111.1 -> 135.3/134.7/132.9, q8 68.4/68.3 ->
// 78.2/78.1, bf16 31.5/37.7/38.1 -> 41.8/43.2/35.4; f32 19.5/23.6/23.6 took 20.1/20.9/21.2 with
// 6 KB into L2, so it keeps 3 KB into L1. (6 KB into L1 did not help q4: 111.4 against 133.0 in
// L2.) The next row's first bytes alone, as the AVX2 kernels fetched then, were too little on an
// earlier machine: q4 20.8 GB/s against 25.3 at 3 KB.

constexpr int kPrefetchAhead = 3072;  // f32, into L1
constexpr int kPrefetchFar = 6144;    // bf16, q8, q4, into L2

WP_AVX512 void rows_bf16_avx512(const QMatrix& W, const float* xp, const float* x, float* y, int r0, int r1) {
    const int cols = W.cols, main = cols / 32 * 32;
    const __m512i hi_mask = _mm512_set1_epi32(static_cast<int>(0xffff0000u));
    for (int r = r0; r < r1; ++r) {
        const std::uint16_t* w = W.bf16 + static_cast<std::size_t>(r) * cols;
        const char* ahead = reinterpret_cast<const char*>(w) + kPrefetchFar;
        __m512 e0 = _mm512_setzero_ps(), o0 = e0, e1 = e0, o1 = e0;
        int i = 0;
        for (; i + 64 <= main; i += 64) {
            _mm_prefetch(ahead + 2 * i, _MM_HINT_T1);
            _mm_prefetch(ahead + 2 * i + 64, _MM_HINT_T1);
            const __m512i v0 = _mm512_loadu_si512(w + i), v1 = _mm512_loadu_si512(w + i + 32);
            e0 = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_slli_epi32(v0, 16)), _mm512_loadu_ps(xp + i), e0);
            o0 = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_and_si512(v0, hi_mask)), _mm512_loadu_ps(xp + i + 16), o0);
            e1 = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_slli_epi32(v1, 16)), _mm512_loadu_ps(xp + i + 32), e1);
            o1 = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_and_si512(v1, hi_mask)), _mm512_loadu_ps(xp + i + 48), o1);
        }
        for (; i < main; i += 32) {
            _mm_prefetch(ahead + 2 * i, _MM_HINT_T1);
            const __m512i v = _mm512_loadu_si512(w + i);
            e0 = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_slli_epi32(v, 16)), _mm512_loadu_ps(xp + i), e0);
            o0 = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_and_si512(v, hi_mask)), _mm512_loadu_ps(xp + i + 16), o0);
        }
        float s = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(e0, o0), _mm512_add_ps(e1, o1)));
        for (; i < cols; ++i) {
            const std::uint32_t bits = static_cast<std::uint32_t>(w[i]) << 16;
            float f;
            std::memcpy(&f, &bits, 4);
            s += f * x[i];
        }
        y[r] = s;
    }
}

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

void qgemm_avx512(const QMatrix& W, const float* X, int n, float* Y, ThreadPool& pool, KernelScratch& s) {
    const int cols = W.cols, nb = cols / kQuantBlock;
    const bool q4 = W.precision == Precision::Q4;
    const std::size_t nq = static_cast<std::size_t>(n) * cols, nd = static_cast<std::size_t>(n) * nb;
    if (s.gemm_q.size() < nq) s.gemm_q.resize(nq);
    if (s.gemm_d.size() < nd) s.gemm_d.resize(nd);
    if (q4 && s.gemm_s.size() < nd) s.gemm_s.resize(nd);
    std::uint8_t* q = s.gemm_q.data();
    float* d = s.gemm_d.data();
    std::int32_t* sums = s.gemm_s.data();
    pool.parallel_for(n, 4, [&](std::int64_t b, std::int64_t e) {
        for (std::int64_t t = b; t < e; ++t) {
            std::int8_t* qt = reinterpret_cast<std::int8_t*>(q + t * cols);
            quantize_vector_blocks(X + t * cols, cols, qt, d + t * nb);
            if (q4) {
                for (int k = 0; k < nb; ++k) {
                    int sum = 0;
                    for (int i = 0; i < kQuantBlock; ++i) sum += qt[kQuantBlock * k + i];
                    sums[t * nb + k] = -8 * sum;
                }
            } else {
                for (int i = 0; i < cols; ++i) q[t * cols + i] = static_cast<std::uint8_t>(qt[i] ^ 0x80);  // x + 128
            }
        }
    });
    const Inputs in{q, d, sums, cols, nb};
    const int groups = (W.rows + kGroupRows - 1) / kGroupRows;
    pool.parallel_for(groups, 1, [&](std::int64_t g0, std::int64_t g1) {
        // The repacked group, per thread; it grows to the widest matrix once.
        thread_local std::vector<PackedBlock> packed;
        if (packed.size() < static_cast<std::size_t>(nb)) packed.resize(nb);
        for (std::int64_t g = g0; g < g1; ++g) {
            const int r0 = static_cast<int>(g) * kGroupRows;
            pack_group(W, r0, packed.data());
            if (q4) run_group<true>(packed.data(), in, n, Y, W.rows, r0, W.rows);
            else run_group<false>(packed.data(), in, n, Y, W.rows, r0, W.rows);
        }
    });
}

#else

bool cpu_has_avx512_vnni() { return false; }
void rows_q8_avx512(const QMatrix&, const std::int8_t*, const float*, float*, int, int) {}
void rows_q4_avx512(const QMatrix&, const std::int8_t*, const std::int32_t*, const float*, float*, int, int) {}
void rows_bf16_avx512(const QMatrix&, const float*, const float*, float*, int, int) {}
void rows_f32_avx512(const QMatrix&, const float*, float*, int, int) {}
void qgemm_avx512(const QMatrix&, const float*, int, float*, ThreadPool&, KernelScratch&) {}

#endif

}  // namespace wp::detail
