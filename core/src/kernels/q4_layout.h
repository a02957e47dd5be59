// Where the bytes of a q4 block lie within its row (docs/KERNELS.md, "q4").
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace wp {

// A row's blocks are taken 16 at a time (a group; the last one may hold fewer, m); a group's
// 16 m bytes are four chunks of 4 m bytes, and chunk k holds bytes 4k..4k+3 of each block in
// turn. So one 64-byte load of a whole group gives, in 32-bit lane j, four bytes of block j:
// integer dot products accumulate each block's sum in its own lane over the four chunks, and are
// scaled once per 16 blocks with no shuffles. Within a block, byte i holds element i (low
// nibble) and element i + 16 (high), as in Q4_0, each stored as its value + 8. The offset of
// byte `byte` of block `block` within a row of `nb` blocks:
inline std::size_t q4_offset(int block, int byte, int nb) {
    const int g = block / 16, j = block % 16, m = nb - 16 * g < 16 ? nb - 16 * g : 16;
    return static_cast<std::size_t>(256) * g + static_cast<std::size_t>(4 * m * (byte / 4) + 4 * j + byte % 4);
}

// The 16 bytes of block `b` of a q4 row of `nb` blocks, in block order, gathered from the row's
// layout or scattered back into it.
inline void load_q4_block(const std::uint8_t* row, int b, int nb, std::uint8_t* bytes) {
    for (int k = 0; k < 4; ++k) std::memcpy(bytes + 4 * k, row + q4_offset(b, 4 * k, nb), 4);
}
inline void store_q4_block(std::uint8_t* row, int b, int nb, const std::uint8_t* bytes) {
    for (int k = 0; k < 4; ++k) std::memcpy(row + q4_offset(b, 4 * k, nb), bytes + 4 * k, 4);
}

}  // namespace wp
