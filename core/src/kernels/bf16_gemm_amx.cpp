// The bf16 product of bf16 weights with many input rows (prompt processing), AMX-BF16.
//
// tdpbf16ps multiplies a tile of 16 input rows x 32 bf16 columns by a tile of 16 column pairs x
// 16 weight rows and adds the pairs' products into a 16 x 16 tile of f32 sums. The weights are
// repacked 32 rows at a time as the AVX-512 product repacks them (bf16_pack.h): that layout's
// vectors 2 p + h for 16 consecutive pairs p are, 128 bytes apart, a B tile. The input rows are
// rounded to bf16 once (and padded with zero rows to a multiple of 16); an A tile is read from
// them in place. Eight tiles: two of input rows, two of weight rows, four of sums (2 x 2).
#include "kernels/bf16_gemm.h"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>

#include "kernels/bf16_pack.h"

#if defined(__x86_64__)
#include <immintrin.h>

#define WP_AMX_BF16 __attribute__((target("amx-tile,amx-bf16,avx512f")))

namespace wp {

namespace {

// The tile configuration (palette 1): every tile 16 rows of 64 bytes.
struct alignas(64) TileConfig {
    std::uint8_t palette = 1, start_row = 0;
    std::uint8_t reserved[14] = {};
    std::uint16_t colsb[16] = {};
    std::uint8_t rows[16] = {};
};

TileConfig full_tiles() {
    TileConfig c;
    for (int i = 0; i < 8; ++i) {
        c.colsb[i] = 64;
        c.rows[i] = 16;
    }
    return c;
}

// Copies the valid part of a 16 x 16 tile of sums (tokens t0.., weight rows r0..) into Y.
void store_part(const float* tile, float* Y, int ldy, int t0, int tokens, int r0, int rows) {
    const int tv = std::clamp(tokens - t0, 0, 16), rv = std::clamp(rows - r0, 0, 16);
    for (int t = 0; t < tv; ++t)
        std::memcpy(Y + static_cast<std::size_t>(t0 + t) * ldy + r0, tile + 16 * t, sizeof(float) * rv);
}

// Input rows [t0, t0 + 32) (TB = 2) or [t0, t0 + 16) (TB = 1) against packed weight rows r0 ..
// r0 + 31; `n` input rows are real, the rest of xb's rows zero padding.
template <int TB>
WP_AMX_BF16 void run_block(const std::uint8_t* P, const std::uint16_t* xb, int cols, int t0, int n, float* Y, int ldy,
                           int r0, int rows) {
    const std::size_t xstride = static_cast<std::size_t>(cols) * 2;
    const std::uint16_t* a0 = xb + static_cast<std::size_t>(t0) * cols;
    const std::uint16_t* a1 = a0 + static_cast<std::size_t>(16) * cols;
    _tile_zero(0);
    _tile_zero(1);
    if (TB == 2) {
        _tile_zero(2);
        _tile_zero(3);
    }
    for (int k = 0; k < cols; k += 32) {
        // B tiles: pairs k/2 .. k/2 + 15, vectors 2 p (rows r0..) and 2 p + 1 (rows r0 + 16..).
        const std::uint8_t* b = P + static_cast<std::size_t>(k) * 64;
        _tile_loadd(4, a0 + k, xstride);
        _tile_loadd(6, b, 128);
        _tile_loadd(7, b + 64, 128);
        _tile_dpbf16ps(0, 4, 6);
        _tile_dpbf16ps(1, 4, 7);
        if (TB == 2) {
            _tile_loadd(5, a1 + k, xstride);
            _tile_dpbf16ps(2, 5, 6);
            _tile_dpbf16ps(3, 5, 7);
        }
    }
    const std::size_t ystride = static_cast<std::size_t>(ldy) * 4;
    if (t0 + 16 * TB <= n && r0 + 32 <= rows) {
        _tile_stored(0, Y + static_cast<std::size_t>(t0) * ldy + r0, ystride);
        _tile_stored(1, Y + static_cast<std::size_t>(t0) * ldy + r0 + 16, ystride);
        if (TB == 2) {
            _tile_stored(2, Y + static_cast<std::size_t>(t0 + 16) * ldy + r0, ystride);
            _tile_stored(3, Y + static_cast<std::size_t>(t0 + 16) * ldy + r0 + 16, ystride);
        }
        return;
    }
    alignas(64) float tile[256];
    _tile_stored(0, tile, 64);
    store_part(tile, Y, ldy, t0, n, r0, rows);
    _tile_stored(1, tile, 64);
    store_part(tile, Y, ldy, t0, n, r0 + 16, rows);
    if (TB == 2) {
        _tile_stored(2, tile, 64);
        store_part(tile, Y, ldy, t0 + 16, n, r0, rows);
        _tile_stored(3, tile, 64);
        store_part(tile, Y, ldy, t0 + 16, n, r0 + 16, rows);
    }
}

WP_AMX_BF16 void run_groups(const QMatrix& W, const std::uint16_t* xb, int n, float* Y, std::int64_t g0,
                            std::int64_t g1, void* packed) {
    static const TileConfig config = full_tiles();
    _tile_loadconfig(&config);
    const int padded = (n + 15) / 16 * 16;
    for (std::int64_t g = g0; g < g1; ++g) {
        const int r0 = static_cast<int>(g) * 32;
        bf16_pack_group(W, r0, packed);
        const auto* P = static_cast<const std::uint8_t*>(packed);
        int t = 0;
        for (; t + 32 <= padded; t += 32) run_block<2>(P, xb, W.cols, t, n, Y, W.rows, r0, W.rows);
        if (t < padded) run_block<1>(P, xb, W.cols, t, n, Y, W.rows, r0, W.rows);
    }
    // Back to the initial state, so that a context switch need not save the tiles.
    _tile_release();
}

}  // namespace

void bf16_gemm_amx(const QMatrix& W, const float* X, int n, float* Y, ThreadPool& pool, KernelScratch& s) {
    const int cols = W.cols;
    const int padded = (n + 15) / 16 * 16;
    const std::size_t nx = static_cast<std::size_t>(padded) * cols;
    if (s.gemm_bf16.size() < nx) s.gemm_bf16.resize(nx);
    std::uint16_t* xb = s.gemm_bf16.data();
    pool.parallel_for(n, 4, [&](std::int64_t b, std::int64_t e) {
        for (std::int64_t t = b; t < e; ++t) bf16_round_row(X + t * cols, cols, xb + t * cols);
    });
    std::fill(xb + static_cast<std::size_t>(n) * cols, xb + nx, std::uint16_t{0});
    const int groups = (W.rows + 31) / 32;
    if (s.threads.size() < static_cast<std::size_t>(pool.size())) s.threads.resize(pool.size());
    const std::size_t packed_bytes = static_cast<std::size_t>(cols) * 64 + 64;
    for (ThreadScratch& t : s.threads)
        if (t.packed.size() < packed_bytes) t.packed.resize(packed_bytes);
    pool.parallel_for_slots(groups, 1, [&](std::int64_t g0, std::int64_t g1, int slot) {
        std::vector<std::byte>& buf = s.threads[static_cast<std::size_t>(slot)].packed;
        void* p = buf.data();
        std::size_t space = buf.size();
        void* packed = std::align(64, static_cast<std::size_t>(cols) * 64, p, space);
        run_groups(W, xb, n, Y, g0, g1, packed);
    });
}

}  // namespace wp

#else

namespace wp {

void bf16_gemm_amx(const QMatrix&, const float*, int, float*, ThreadPool&, KernelScratch&) {}

}  // namespace wp

#endif
