// The bf16 product of bf16 weights with many input rows (prompt processing), AVX-512 BF16.
//
// vdpbf16ps multiplies pairs of bf16 values and adds both products to an f32 lane. Weight rows are
// taken 32 at a time (two sets of 16 lanes) and repacked so that for each pair of columns one
// vector holds, in lane j, that pair of row j (a row's pair is one word: a word transpose). The input
// rows are rounded to bf16 once; a tile of input rows then runs against the group, each input pair
// broadcast to every lane, so each lane sums one output. Nothing is reduced across lanes.
#include "kernels/bf16_gemm.h"
#include "kernels/bf16_pack.h"

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <memory>

#if defined(__x86_64__)
#include <immintrin.h>

#define WP_AVX512_BF16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16,avx2,fma")))

// GCC 12 reports the self-initialised placeholder of _mm512_undefined_* inside the unpack
// intrinsics as maybe uninitialised.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace wp {

namespace {

constexpr int kGroupRows = 32;  // weight rows repacked together: two sets of 16 lanes
constexpr int kTile = 8;        // input rows run together against them (16 accumulators)

// Transposes 16 vectors of 16 words in place: afterwards r[k] holds word k of every input vector.
WP_AVX512_BF16 inline void transpose16(__m512i* r) {
    __m512i t[16];
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);
    }
    for (int i = 0; i < 16; i += 4) {
        r[i] = _mm512_unpacklo_epi64(t[i], t[i + 2]);
        r[i + 1] = _mm512_unpackhi_epi64(t[i], t[i + 2]);
        r[i + 2] = _mm512_unpacklo_epi64(t[i + 1], t[i + 3]);
        r[i + 3] = _mm512_unpackhi_epi64(t[i + 1], t[i + 3]);
    }
    for (int i = 0; i < 16; i += 8)
        for (int j = 0; j < 4; ++j) {
            t[i + j] = _mm512_shuffle_i32x4(r[i + j], r[i + j + 4], 0x88);
            t[i + j + 4] = _mm512_shuffle_i32x4(r[i + j], r[i + j + 4], 0xdd);
        }
    for (int j = 0; j < 8; ++j) {
        r[j] = _mm512_shuffle_i32x4(t[j], t[j + 8], 0x88);
        r[j + 8] = _mm512_shuffle_i32x4(t[j], t[j + 8], 0xdd);
    }
}

// Pair p of rows r0 + 16 h + j (j = 0..15) into out[2 p + h]; rows past W.rows are zero. A row's
// pair is one word, so 16 rows x 16 pairs is a 16 x 16 word transpose (shuffles: gathers were
// four times slower here).
WP_AVX512_BF16 void pack_group(const QMatrix& W, int r0, __m512i* out) {
    const int pairs = W.cols / 2;  // a multiple of 16
    for (int h = 0; h < 2; ++h) {
        const int first = r0 + 16 * h;
        const int valid = std::clamp(W.rows - first, 0, 16);
        const std::uint16_t* base = W.bf16 + static_cast<std::size_t>(first) * W.cols;
        for (int p = 0; p < pairs; p += 16) {
            __m512i r[16];
            for (int j = 0; j < 16; ++j)
                r[j] = j < valid ? _mm512_loadu_si512(base + static_cast<std::size_t>(j) * W.cols + 2 * p)
                                 : _mm512_setzero_si512();
            transpose16(r);
            for (int k = 0; k < 16; ++k) out[2 * (p + k) + h] = r[k];
        }
    }
}

}  // namespace

WP_AVX512_BF16 void transpose16x16_dwords(void* v) { transpose16(static_cast<__m512i*>(v)); }

WP_AVX512_BF16 void bf16_round_row(const float* x, int cols, std::uint16_t* out) {
    for (int i = 0; i < cols; i += 32) {
        const __m512bh v = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(x + i + 16), _mm512_loadu_ps(x + i));
        _mm512_storeu_si512(out + i, reinterpret_cast<__m512i>(v));
    }
}

namespace {

template <int T>
WP_AVX512_BF16 void run_tile(const __m512i* P, const std::uint16_t* xb, int cols, int t0, float* Y, int ldy, int r0,
                             int rows) {
    __m512 acc[T][2];
    for (int t = 0; t < T; ++t) acc[t][0] = acc[t][1] = _mm512_setzero_ps();
    const std::uint16_t* xr[T];
    for (int t = 0; t < T; ++t) xr[t] = xb + static_cast<std::size_t>(t0 + t) * cols;
    const int pairs = cols / 2;
    for (int p = 0; p < pairs; ++p) {
        const __m512bh w0 = reinterpret_cast<__m512bh>(P[2 * p]), w1 = reinterpret_cast<__m512bh>(P[2 * p + 1]);
        for (int t = 0; t < T; ++t) {
            std::int32_t pair;
            std::memcpy(&pair, xr[t] + 2 * p, 4);
            const __m512bh x = reinterpret_cast<__m512bh>(_mm512_set1_epi32(pair));
            acc[t][0] = _mm512_dpbf16_ps(acc[t][0], w0, x);
            acc[t][1] = _mm512_dpbf16_ps(acc[t][1], w1, x);
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

WP_AVX512_BF16 void run_group(const __m512i* P, const std::uint16_t* xb, int cols, int n, float* Y, int ldy, int r0,
                              int rows) {
    int t = 0;
    for (; t + kTile <= n; t += kTile) run_tile<kTile>(P, xb, cols, t, Y, ldy, r0, rows);
    switch (n - t) {
        case 7: run_tile<7>(P, xb, cols, t, Y, ldy, r0, rows); break;
        case 6: run_tile<6>(P, xb, cols, t, Y, ldy, r0, rows); break;
        case 5: run_tile<5>(P, xb, cols, t, Y, ldy, r0, rows); break;
        case 4: run_tile<4>(P, xb, cols, t, Y, ldy, r0, rows); break;
        case 3: run_tile<3>(P, xb, cols, t, Y, ldy, r0, rows); break;
        case 2: run_tile<2>(P, xb, cols, t, Y, ldy, r0, rows); break;
        case 1: run_tile<1>(P, xb, cols, t, Y, ldy, r0, rows); break;
        default: break;
    }
}

}  // namespace

void bf16_gemm_avx512(const QMatrix& W, const float* X, int n, float* Y, ThreadPool& pool, KernelScratch& s) {
    const int cols = W.cols;
    const std::size_t nx = static_cast<std::size_t>(n) * cols;
    if (s.gemm_bf16.size() < nx) s.gemm_bf16.resize(nx);
    std::uint16_t* xb = s.gemm_bf16.data();
    pool.parallel_for(n, 4, [&](std::int64_t b, std::int64_t e) {
        for (std::int64_t t = b; t < e; ++t) bf16_round_row(X + t * cols, cols, xb + t * cols);
    });
    const int groups = (W.rows + kGroupRows - 1) / kGroupRows;
    // Every pool thread repacks its groups into its own slot: cols / 2 pairs x two vectors.
    s.reserve_packed(pool.size(), static_cast<std::size_t>(cols) * 64);
    pool.parallel_for_slots(groups, 1, [&](std::int64_t g0, std::int64_t g1, int slot) {
        auto* packed = static_cast<__m512i*>(s.threads[static_cast<std::size_t>(slot)].packed_room());
        for (std::int64_t g = g0; g < g1; ++g) {
            const int r0 = static_cast<int>(g) * kGroupRows;
            pack_group(W, r0, packed);
            run_group(packed, xb, cols, n, Y, W.rows, r0, W.rows);
        }
    });
}

}  // namespace wp

#pragma GCC diagnostic pop

#else

namespace wp {

void bf16_gemm_avx512(const QMatrix&, const float*, int, float*, ThreadPool&, KernelScratch&) {}
void bf16_round_row(const float*, int, std::uint16_t*) {}
void transpose16x16_dwords(void*) {}

}  // namespace wp

#endif
