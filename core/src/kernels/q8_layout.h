// Where the bytes and scales of a q8 block lie (docs/KERNELS.md, "q8").
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace wp {

// q8 rows are stored in panels of 16 (the last may hold fewer, m). A panel holds its rows' blocks
// one after another; block b of a panel is eight chunks of 4 m bytes, and chunk k holds bytes
// 4k..4k+3 of the block of each row in turn. So one 64-byte load gives, in 32-bit lane j, four
// weights of row j: integer dot products against a broadcast input word sum every row's block in
// its own lane, and each block is scaled once for all 16 rows, for one input row or several
// alike. A panel's scales are likewise block by block, m per block. Panels start at row 16 P, so
// rows [r0, r1) with r0 % 16 == 0 occupy bytes [r0 cols, r1 cols) and scales [r0 nb, r1 nb).
constexpr int kQ8Panel = 16;

inline int q8_panel_rows(int rows, int r) { return std::min(kQ8Panel, rows - r / kQ8Panel * kQ8Panel); }

// Byte `byte` (0..31) of block `block` of row `r`, in a matrix of `rows` x `cols`.
inline std::size_t q8_offset(int r, int block, int byte, int rows, int cols) {
    const int p0 = r / kQ8Panel * kQ8Panel, j = r - p0, m = q8_panel_rows(rows, r);
    return static_cast<std::size_t>(p0) * cols + static_cast<std::size_t>(32 * m) * block + 4 * m * (byte / 4) + 4 * j + byte % 4;
}

// The scale of block `block` of row `r` (nb blocks a row).
inline std::size_t q8_scale_index(int r, int block, int rows, int nb) {
    const int p0 = r / kQ8Panel * kQ8Panel;
    return static_cast<std::size_t>(p0) * nb + static_cast<std::size_t>(q8_panel_rows(rows, r)) * block + (r - p0);
}

// The 32 values of block `b` of row `r`, in element order, gathered from the panels or scattered
// into them.
inline void load_q8_block(const std::int8_t* q8, int r, int b, int rows, int cols, std::int8_t* out) {
    for (int k = 0; k < 8; ++k) std::memcpy(out + 4 * k, q8 + q8_offset(r, b, 4 * k, rows, cols), 4);
}
inline void store_q8_block(std::int8_t* q8, int r, int b, int rows, int cols, const std::int8_t* in) {
    for (int k = 0; k < 8; ++k) std::memcpy(q8 + q8_offset(r, b, 4 * k, rows, cols), in + 4 * k, 4);
}

}  // namespace wp
