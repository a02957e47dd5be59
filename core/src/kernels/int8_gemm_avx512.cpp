// The int8 product of q8/q4 weights with many input rows (prompt processing), AVX-512 VNNI.
//
// The input rows are rounded to int8 blocks of 32 exactly as the decode kernels round one input
// vector. Weight rows are taken 32 at a time (two sets of 16 lanes) in the layout vpdpbusd reads:
// for each block, eight vectors whose lane j holds four consecutive weights of row j (the panels
// of q8_layout.h and q4_layout.h already lie so; q4's nibbles are split apart). Four input rows at a time then run
// against them: each block's integer sum accumulates in int32 (exact), and is scaled once per
// block by weight scale x input scale into the float sums with one fma, as the q8 decode kernels
// do, so a q8 prompt row equals decoding it bit for bit.
//
// vpdpbusd multiplies unsigned bytes by signed bytes. q4 keeps its unsigned nibbles u = w + 8:
// sum (u - 8) x = sum u x - 8 sum x, so each block's int32 sum starts at -8 sum x. q8 offsets
// the input instead, x + 128 as unsigned: sum w (x + 128) = sum w x + 128 sum w, so each block's
// sum starts at -128 sum w (per weight row, computed while packing).
#include "kernels/int8_gemm.h"

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <memory>

#include "kernels/prepared_input.h"

#if defined(__x86_64__)
#include <immintrin.h>

#define WP_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")))

namespace wp {

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
        // q8 and q4 rows are stored in panels of 16 (q8_layout.h, q4_layout.h): these 16 rows are
        // one panel, laid out as the product reads them.
        const std::size_t row_bytes = q4 ? W.cols / 2 : W.cols;
        const std::uint8_t* base = q4 ? W.q4 + static_cast<std::size_t>(first) * row_bytes
                                      : reinterpret_cast<const std::uint8_t*>(W.q8) + static_cast<std::size_t>(first) * row_bytes;
        const std::uint16_t* scales = W.scales + static_cast<std::size_t>(first) * nb;
        for (int b = 0; b < nb; ++b) {
            PackedBlock& p = out[b];
            p.d[h] = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(mask, scales + static_cast<std::size_t>(valid) * b));
            if (q4) {
                // Byte i of a block holds element i (low nibble) and element i + 16 (high).
                const std::uint8_t* block = base + static_cast<std::size_t>(16 * valid) * b;
                for (int k = 0; k < 4; ++k) {
                    const __m512i v = _mm512_maskz_loadu_epi32(mask, block + 4 * valid * k);
                    p.w[h][k] = _mm512_and_si512(v, m4);
                    p.w[h][k + 4] = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
                }
                p.c[h] = zero;
            } else {
                const std::uint8_t* block = base + static_cast<std::size_t>(32 * valid) * b;
                __m512i sum = zero;
                for (int k = 0; k < 8; ++k) {
                    const __m512i v = _mm512_maskz_loadu_epi32(mask, block + 4 * valid * k);
                    p.w[h][k] = v;
                    sum = _mm512_dpbusd_epi32(sum, ones, v);
                }
                p.c[h] = _mm512_sub_epi32(zero, _mm512_slli_epi32(sum, 7));
            }
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

void int8_gemm_avx512(const QMatrix& W, const float* X, int n, float* Y, ThreadPool& pool, KernelScratch& s,
                      const KernelOptions& options) {
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
            quantize_input_blocks(X + t * cols, cols, qt, d + t * nb, options);
            if (q4) {
                q4_corrections(qt, nb, sums + t * nb);
            } else {
                for (int i = 0; i < cols; ++i) q[t * cols + i] = static_cast<std::uint8_t>(qt[i] ^ 0x80);  // x + 128
            }
        }
    });
    const Inputs in{q, d, sums, cols, nb};
    const int groups = (W.rows + kGroupRows - 1) / kGroupRows;
    // Every pool thread repacks its groups into its own slot, sized here for the widest matrix
    // met so far.
    static_assert(alignof(PackedBlock) <= 64);
    s.reserve_packed(pool.size(), static_cast<std::size_t>(nb) * sizeof(PackedBlock));
    pool.parallel_for_slots(groups, 1, [&](std::int64_t g0, std::int64_t g1, int slot) {
        auto* packed = static_cast<PackedBlock*>(s.threads[static_cast<std::size_t>(slot)].packed_room());
        for (std::int64_t g = g0; g < g1; ++g) {
            const int r0 = static_cast<int>(g) * kGroupRows;
            pack_group(W, r0, packed);
            if (q4) run_group<true>(packed, in, n, Y, W.rows, r0, W.rows);
            else run_group<false>(packed, in, n, Y, W.rows, r0, W.rows);
        }
    });
}

}  // namespace wp

#else

namespace wp {

void int8_gemm_avx512(const QMatrix&, const float*, int, float*, ThreadPool&, KernelScratch&, const KernelOptions&) {}

}  // namespace wp

#endif
