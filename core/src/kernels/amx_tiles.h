// AMX's tile configuration, the 64-byte operand of LDTILECFG (palette 1): each tile's rows and
// bytes per row. Each product fills in the tiles it uses and loads it before them.
#pragma once

#include <cstdint>

namespace wp {

struct alignas(64) TileConfig {
    std::uint8_t palette = 1, start_row = 0;
    std::uint8_t reserved[14] = {};
    std::uint16_t colsb[16] = {};
    std::uint8_t rows[16] = {};
};

}  // namespace wp
