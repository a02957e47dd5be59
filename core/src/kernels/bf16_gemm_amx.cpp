// The bf16 product of bf16 weights with many input rows (prompt processing), AMX-BF16.
//
// tdpbf16ps multiplies an A tile (16 rows x 32 bf16 columns) by a B tile (16 column pairs x 16
// columns of pairs) into a 16 x 16 tile of f32 sums. The weights are the A tiles, read in place
// from their rows (nothing repacked, so a short prompt streams them once at the memory's rate);
// the input rows, rounded to bf16 once and padded with zero rows to a multiple of 16, are repacked
// into B tiles: per 16 input rows and 32 columns, the 16 x 16 transpose of their column pairs.
// Eight tiles: two of weight rows, two of input rows, four of sums (32 weight rows x 32 input
// rows per pass over the columns); each tile of sums is transposed back into the output's rows.
#include "kernels/bf16_gemm.h"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>

#include "kernels/amx_tiles.h"
#include "kernels/bf16_pack.h"

#if defined(__x86_64__)
#include <immintrin.h>

#define WP_AMX_BF16 __attribute__((target("amx-tile,amx-bf16,avx512f,avx512bw")))

namespace wp {

namespace {

// Every tile 16 rows of 64 bytes.
TileConfig full_tiles() {
    TileConfig c;
    for (int i = 0; i < 8; ++i) {
        c.colsb[i] = 64;
        c.rows[i] = 16;
    }
    return c;
}

constexpr int kAhead = 8;  // column steps (64 bytes of each weight row) prefetched ahead

// Tile `tile` of sums (16 weight rows from r0 x 16 input rows from t0) into Y[t][r], the valid
// part only: stored, transposed so that each input row's 16 sums are one vector.
WP_AMX_BF16 void store_sums(int tile, float* Y, int ldy, int t0, int n, int r0, int rows) {
    alignas(64) __m512i v[16];
    switch (tile) {
        case 0: _tile_stored(0, v, 64); break;
        case 1: _tile_stored(1, v, 64); break;
        case 2: _tile_stored(2, v, 64); break;
        default: _tile_stored(3, v, 64); break;
    }
    transpose16x16_dwords(v);
    const int tv = std::clamp(n - t0, 0, 16), rv = std::clamp(rows - r0, 0, 16);
    const __mmask16 m = static_cast<__mmask16>((1u << rv) - 1);
    for (int t = 0; t < tv; ++t)
        _mm512_mask_storeu_ps(Y + static_cast<std::size_t>(t0 + t) * ldy + r0, m, _mm512_castsi512_ps(v[t]));
}

// Weight rows [r0, r0 + 32) (a0: their first, stride wstride bytes; the second 16 at a1) against
// every block of 32 padded input rows. xp: the packed input, block (tb, k) of 16 input rows and
// 32 columns at xp + (tb * steps + k) * 1 KB.
WP_AMX_BF16 void run_weight_rows(const std::uint16_t* a0, const std::uint16_t* a1, std::size_t wstride,
                                 const std::uint8_t* xp, int steps, int n, int padded, float* Y, int ldy, int r0,
                                 int rows) {
    const int tblocks = padded / 16;
    for (int tb = 0; tb < tblocks; tb += 2) {
        const bool two = tb + 1 < tblocks;
        const std::uint8_t* b0 = xp + static_cast<std::size_t>(tb) * steps * 1024;
        const std::uint8_t* b1 = b0 + static_cast<std::size_t>(steps) * 1024;
        _tile_zero(0);
        _tile_zero(1);
        _tile_zero(2);
        _tile_zero(3);
        for (int k = 0; k < steps; ++k) {
            if (tb == 0 && k + kAhead < steps) {
                // The first pass streams the weights from memory; later ones find them in L2.
                const char* p0 = reinterpret_cast<const char*>(a0 + 32 * (k + kAhead));
                const char* p1 = reinterpret_cast<const char*>(a1 + 32 * (k + kAhead));
                for (int j = 0; j < 16; ++j) {
                    _mm_prefetch(p0 + j * wstride, _MM_HINT_T0);
                    _mm_prefetch(p1 + j * wstride, _MM_HINT_T0);
                }
            }
            _tile_loadd(4, a0 + 32 * k, wstride);
            _tile_loadd(5, a1 + 32 * k, wstride);
            _tile_loadd(6, b0 + static_cast<std::size_t>(k) * 1024, 64);
            _tile_dpbf16ps(0, 4, 6);
            _tile_dpbf16ps(1, 5, 6);
            if (two) {
                _tile_loadd(7, b1 + static_cast<std::size_t>(k) * 1024, 64);
                _tile_dpbf16ps(2, 4, 7);
                _tile_dpbf16ps(3, 5, 7);
            }
        }
        store_sums(0, Y, ldy, 16 * tb, n, r0, rows);
        store_sums(1, Y, ldy, 16 * tb, n, r0 + 16, rows);
        if (two) {
            store_sums(2, Y, ldy, 16 * tb + 16, n, r0, rows);
            store_sums(3, Y, ldy, 16 * tb + 16, n, r0 + 16, rows);
        }
    }
}

// Blocks of 32 weight rows [g0, g1). A last block past W.rows is copied, zero-padded, into `edge`
// (32 x cols) so that no tile reads past the matrix.
WP_AMX_BF16 void run_blocks(const QMatrix& W, const std::uint8_t* xp, int n, float* Y, std::int64_t g0, std::int64_t g1,
                            std::uint16_t* edge) {
    static const TileConfig config = full_tiles();
    _tile_loadconfig(&config);
    const int cols = W.cols, steps = cols / 32, padded = (n + 15) / 16 * 16;
    const std::size_t stride = static_cast<std::size_t>(cols) * 2;
    for (std::int64_t g = g0; g < g1; ++g) {
        const int r0 = static_cast<int>(g) * 32;
        const std::uint16_t* a0 = W.bf16 + static_cast<std::size_t>(r0) * cols;
        if (r0 + 32 > W.rows) {
            const std::size_t valid = static_cast<std::size_t>(W.rows - r0) * cols;
            std::memcpy(edge, a0, valid * 2);
            std::fill(edge + valid, edge + static_cast<std::size_t>(32) * cols, std::uint16_t{0});
            a0 = edge;
        }
        run_weight_rows(a0, a0 + static_cast<std::size_t>(16) * cols, stride, xp, steps, n, padded, Y, W.rows, r0,
                        W.rows);
    }
    // Back to the initial state, so that a context switch need not save the tiles.
    _tile_release();
}

// Input rows [16 tb, 16 tb + 16) of xb, columns [32 k, 32 k + 32): their 16 column pairs
// transposed into the B tile at xp's block (tb, k).
WP_AMX_BF16 void pack_input_block(const std::uint16_t* xb, int cols, int tb, int k, int steps, std::uint8_t* xp) {
    alignas(64) __m512i v[16];
    for (int t = 0; t < 16; ++t)
        v[t] = _mm512_loadu_si512(xb + static_cast<std::size_t>(16 * tb + t) * cols + 32 * k);
    transpose16x16_dwords(v);
    std::memcpy(xp + (static_cast<std::size_t>(tb) * steps + k) * 1024, v, sizeof v);
}

}  // namespace

void bf16_gemm_amx(const QMatrix& W, const float* X, int n, float* Y, ThreadPool& pool, KernelScratch& s) {
    const int cols = W.cols, steps = cols / 32;
    const int padded = (n + 15) / 16 * 16;
    const std::size_t nx = static_cast<std::size_t>(padded) * cols;
    // The rounded rows, then their packed copy (64-byte aligned: one more KB).
    if (s.gemm_bf16.size() < 2 * nx + 512) s.gemm_bf16.resize(2 * nx + 512);
    std::uint16_t* xb = s.gemm_bf16.data();
    void* p = xb + nx;
    std::size_t space = (nx + 512) * 2;
    auto* xp = static_cast<std::uint8_t*>(std::align(64, nx * 2, p, space));
    pool.parallel_for(n, 4, [&](std::int64_t b, std::int64_t e) {
        for (std::int64_t t = b; t < e; ++t) bf16_round_row(X + t * cols, cols, xb + t * cols);
    });
    std::fill(xb + static_cast<std::size_t>(n) * cols, xb + nx, std::uint16_t{0});
    const int tblocks = padded / 16;
    pool.parallel_for(static_cast<std::int64_t>(tblocks) * steps, 16, [&](std::int64_t b, std::int64_t e) {
        for (std::int64_t i = b; i < e; ++i)
            pack_input_block(xb, cols, static_cast<int>(i / steps), static_cast<int>(i % steps), steps, xp);
    });
    const int groups = (W.rows + 31) / 32;
    s.reserve_packed(pool.size(), static_cast<std::size_t>(cols) * 64);  // a padded last block
    pool.parallel_for_slots(groups, 1, [&](std::int64_t g0, std::int64_t g1, int slot) {
        auto* edge = static_cast<std::uint16_t*>(s.threads[static_cast<std::size_t>(slot)].packed_room());
        run_blocks(W, xp, n, Y, g0, g1, edge);
    }, Chunks::Streams);
}

}  // namespace wp

#else

namespace wp {

void bf16_gemm_amx(const QMatrix&, const float*, int, float*, ThreadPool&, KernelScratch&) {}

}  // namespace wp

#endif
