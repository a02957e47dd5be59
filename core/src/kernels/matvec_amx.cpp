// q8 weights against several input rows at once on AMX-INT8 tiles (matvec_kernels.h).
//
// A block of a q8 panel (q8_layout.h: eight chunks, chunk k holding bytes 4k..4k+3 of each of
// the panel's 16 rows) is exactly a B tile of tdpbssd: 8 rows of 64 bytes, row k the four
// weights of each output column at k. The A tile is the input rows' int8 values of the same
// block (n rows of 32 bytes), so one tdpbssd gives every input row's exact integer sum for all
// 16 weight rows. Each sum is then scaled as the AVX-512 kernel scales it (one fma per block,
// block after block), so the results equal rows_q8_avx512's bit for bit; the vpdpbusd count the
// AVX-512 kernel needs (one per 64 weights and input row) is what this replaces.
#include "kernels/matvec_kernels.h"

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstring>
#include <utility>

#include "kernels/amx_tiles.h"
#include "kernels/q8_layout.h"

#if defined(__x86_64__)
#include <immintrin.h>

#define WP_AMX_INT8 __attribute__((target("amx-tile,amx-int8,avx512f,avx512bw,avx512vl,f16c")))

namespace wp {

namespace {

constexpr int kMaxInputs = 16;  // an A tile's rows
// As the AVX-512 q8 kernel: 4 KB ahead into L2, 2 KB into L1 (8 KB, 16 KB, L2 or L1 alone: no
// faster; none: 20% slower).
constexpr int kAheadL2 = 4096, kAheadL1 = 2048;

// One block's sums (T rows of 16 int32, as the tile was stored) scaled into acc.
template <int T>
WP_AMX_INT8 inline void scale_block(const std::int32_t* sums, __m512 dw, const float* const* xd, int b, __m512* acc) {
    for (int t = 0; t < T; ++t)
        acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_load_si512(sums + 16 * t)),
                                 _mm512_mul_ps(dw, _mm512_set1_ps(xd[t][b])), acc[t]);
}

// Block b of a panel of m rows as a B tile: in place, or (a last panel, m < 16) through
// edge[b % 2], eight 64-byte rows zero past 4 m bytes, so that the tile never reads past the matrix.
WP_AMX_INT8 inline const std::int8_t* weights(const std::int8_t* w, std::size_t block_bytes, int m, int b,
                                              std::int8_t (*edge)[512]) {
    const std::int8_t* wb = w + block_bytes * b;
    if (m == kQ8Panel) return wb;
    for (int k = 0; k < 8; ++k) std::memcpy(edge[b % 2] + 64 * k, wb + 4 * m * k, 4 * static_cast<std::size_t>(m));
    return edge[b % 2];
}

// Block b's weight scales, one per row of the panel.
WP_AMX_INT8 inline __m512 scales(const std::uint16_t* ws, int m, __mmask16 mk, int b) {
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(mk, ws + static_cast<std::size_t>(m) * b));
}

// Panels of rows [r0, r1) for T input rows: x holds them T rows of `ldx` bytes apart (int8
// blocks), xd their scales.
template <int T>
WP_AMX_INT8 void panels_amx(const QMatrix& W, const std::int8_t* x, std::size_t ldx, const float* const* xd,
                            float* const* y, int r0, int r1) {
    // Tiles 0 and 1 the sums (T rows of 16 int32), 2 and 3 the weights (a block each), 4 and 5
    // the input rows (T rows of one block's 32 bytes): two of each, so two blocks are in flight.
    TileConfig cfg;
    for (int i : {0, 1}) cfg.rows[i] = T, cfg.colsb[i] = 64;
    for (int i : {2, 3}) cfg.rows[i] = 8, cfg.colsb[i] = 64;
    for (int i : {4, 5}) cfg.rows[i] = T, cfg.colsb[i] = 32;
    _tile_loadconfig(&cfg);
    const int nb = W.cols / kQuantBlock;
    alignas(64) std::int32_t sums[2][kMaxInputs * 16];
    alignas(64) std::int8_t edge[2][512];
    for (int p0 = r0 / kQ8Panel * kQ8Panel; p0 < r1; p0 += kQ8Panel) {
        const int m = std::min(kQ8Panel, W.rows - p0);
        const std::size_t block_bytes = static_cast<std::size_t>(32) * m;
        const std::int8_t* w = W.q8 + static_cast<std::size_t>(p0) * W.cols;
        const std::uint16_t* ws = W.scales + static_cast<std::size_t>(p0) * nb;
        const __mmask16 mk = static_cast<__mmask16>((1u << m) - 1);
        if (m < kQ8Panel) std::memset(edge, 0, sizeof edge);
        __m512 acc[T];
        for (int t = 0; t < T; ++t) acc[t] = _mm512_setzero_ps();
        int b = 0;
        for (; b + 2 <= nb; b += 2) {
            const char* at = reinterpret_cast<const char*>(w + block_bytes * b);
            for (int i = 0; i < 16; ++i) {
                _mm_prefetch(at + kAheadL2 + 64 * i, _MM_HINT_T1);
                _mm_prefetch(at + kAheadL1 + 64 * i, _MM_HINT_T0);
            }
            _tile_loadd(2, weights(w, block_bytes, m, b, edge), 64);
            _tile_loadd(3, weights(w, block_bytes, m, b + 1, edge), 64);
            _tile_loadd(4, x + kQuantBlock * b, ldx);
            _tile_loadd(5, x + kQuantBlock * (b + 1), ldx);
            _tile_zero(0);
            _tile_zero(1);
            _tile_dpbssd(0, 4, 2);
            _tile_dpbssd(1, 5, 3);
            _tile_stored(0, sums[0], 64);
            _tile_stored(1, sums[1], 64);
            scale_block<T>(sums[0], scales(ws, m, mk, b), xd, b, acc);
            scale_block<T>(sums[1], scales(ws, m, mk, b + 1), xd, b + 1, acc);
        }
        if (b < nb) {
            _tile_loadd(2, weights(w, block_bytes, m, b, edge), 64);
            _tile_loadd(4, x + kQuantBlock * b, ldx);
            _tile_zero(0);
            _tile_dpbssd(0, 4, 2);
            _tile_stored(0, sums[0], 64);
            scale_block<T>(sums[0], scales(ws, m, mk, b), xd, b, acc);
        }
        const int lo = std::max(r0, p0) - p0, hi = std::min(r1, p0 + m) - p0;
        const __mmask16 keep = static_cast<__mmask16>(((1u << hi) - 1) & ~((1u << lo) - 1));
        for (int t = 0; t < T; ++t) _mm512_mask_storeu_ps(y[t] + p0, keep, acc[t]);
    }
    // Back to the initial state, so that a context switch need not save the tiles.
    _tile_release();
}

using PanelsFn = void (*)(const QMatrix&, const std::int8_t*, std::size_t, const float* const*, float* const*, int, int);

template <int... I>
constexpr std::array<PanelsFn, sizeof...(I)> panels_table(std::integer_sequence<int, I...>) {
    return {&panels_amx<I + 1>...};
}

constexpr auto kPanels = panels_table(std::make_integer_sequence<int, kMaxInputs>{});

}  // namespace

void rows_q8_amx_multi(const QMatrix& W, int n, const std::int8_t* x, std::size_t ldx, const float* const* xd,
                       float* const* y, int r0, int r1) {
    for (int t = 0; t < n; t += kMaxInputs) {
        const int count = std::min(kMaxInputs, n - t);
        kPanels[count - 1](W, x + static_cast<std::size_t>(t) * ldx, ldx, xd + t, y + t, r0, r1);
    }
}

}  // namespace wp

#else

namespace wp {
void rows_q8_amx_multi(const QMatrix&, int, const std::int8_t*, std::size_t, const float* const*, float* const*, int,
                       int) {}
}  // namespace wp

#endif
