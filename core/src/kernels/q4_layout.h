// Where the bytes and scales of a q4 block lie (docs/KERNELS.md, "q4").
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/q8_layout.h"

namespace wp {

// q4 rows are stored in panels of 16, as q8's (q8_layout.h): a panel holds its rows' blocks one
// after another; block b of a panel is four chunks of 4 m bytes (m rows in the panel), and chunk
// k holds bytes 4k..4k+3 of the block of each row in turn. So one 64-byte load gives, in 32-bit
// lane j, eight weights of row j (four in the low nibbles, four in the high): integer dot
// products against the input's matching words broadcast sum every row's block in its own lane,
// and each block is scaled once for all 16 rows. Within a block, byte i holds element i (low
// nibble) and element i + 16 (high), as in Q4_0, each stored as its value + 8. The scales lie as
// q8's (q8_scale_index). Rows [r0, r1) with r0 % 16 == 0 occupy bytes [r0 cols / 2, r1 cols / 2).

// Byte `byte` (0..15) of block `block` of row `r`, in a matrix of `rows` x `cols`.
inline std::size_t q4_offset(int r, int block, int byte, int rows, int cols) {
    const int p0 = r / kQ8Panel * kQ8Panel, j = r - p0, m = q8_panel_rows(rows, r);
    return static_cast<std::size_t>(p0) * (cols / 2) + static_cast<std::size_t>(16 * m) * block + 4 * m * (byte / 4) + 4 * j +
           byte % 4;
}

// The 16 bytes of block `b` of row `r`, in block order, gathered from the panels or scattered
// into them.
inline void load_q4_block(const std::uint8_t* q4, int r, int b, int rows, int cols, std::uint8_t* bytes) {
    for (int k = 0; k < 4; ++k) std::memcpy(bytes + 4 * k, q4 + q4_offset(r, b, 4 * k, rows, cols), 4);
}
inline void store_q4_block(std::uint8_t* q4, int r, int b, int rows, int cols, const std::uint8_t* bytes) {
    for (int k = 0; k < 4; ++k) std::memcpy(q4 + q4_offset(r, b, 4 * k, rows, cols), bytes + 4 * k, 4);
}

}  // namespace wp
