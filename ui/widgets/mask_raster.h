// The cells of the mask view as pixels: a layer's mask or attention heat map, and the cache rows.
//
// Only the visible part of a grid is coloured. Cells of a pixel or more get one colour each
// (raster: a cell-sized image scaled up without smoothing; vector output such as SVG: one rectangle
// per run of equal cells in a row). Smaller cells are aggregated per screen pixel: the fraction of
// allowed (or held) cells, sampled up to 4 x 4 times per pixel, and the largest probability, read
// from max-pooled copies of the attention (a pyramid of 2^level blocks) so that 4,096 positions
// zoomed out do not visit 16 million cells per repaint. Nothing is allocated per cell.
#pragma once

#include <QImage>
#include <QRgb>
#include <cstddef>
#include <cstdint>
#include <map>
#include <tuple>
#include <vector>

#include "engine/mask_view_data.h"
#include "widgets/mask_geometry.h"

class QPainter;

namespace wp::ui {

class MaskPalette;

// Cache mode: which positions each layer holds at one step, as bits and prefix counts (a pixel
// covering many positions counts them in constant time).
class HeldPositions {
public:
    // width: positions per row (the longest step's length).
    void rebuild(const MaskViewData& data, int step, int width);
    bool held(int layer, int position) const { return bits_[static_cast<std::size_t>(layer) * width_ + position] != 0; }
    // Positions of [a, b) held by a layer.
    int count(int layer, int a, int b) const {
        const int* pre = prefix_.data() + static_cast<std::size_t>(layer) * (width_ + 1);
        return pre[b] - pre[a];
    }

private:
    std::vector<std::uint8_t> bits_;  // [layer * width + position]
    std::vector<int> prefix_;         // [layer * (width + 1) + position]: held positions before it
    int width_ = 0;
};

// How paintLayer colours a layer's cells.
struct LayerCells {
    int layer = 0;
    bool attention = false;  // the recorded probabilities over the mask, else the mask alone
    int head = -1;           // attention: one head, or -1 for the average over heads
    bool logScale = false;
};

// Paints cells and keeps what repaints reuse: the scratch image and the pooled probabilities.
class MaskRaster {
public:
    // Forgets the pooled probabilities (new data).
    void clear();
    void paintLayer(QPainter& p, const Grid& grid, bool raster, const MaskViewData& data, const MaskPalette& palette,
                    const LayerCells& cells);
    void paintCacheRows(QPainter& p, const Grid& grid, bool raster, const MaskViewData& data, const HeldPositions& held,
                        const MaskPalette& palette);

private:
    // Max-pooled probabilities of a layer and head (-1: average) over 2^level x 2^level blocks,
    // built from the next finer level already pooled when there is one.
    const std::vector<float>& pooled(const MaskViewData& data, int layer, int head, int level);

    // (layer, head, level) -> [ceil(T / 2^level)]^2; dropped whole when over a size limit.
    std::map<std::tuple<int, int, int>, std::vector<float>> pooled_;
    std::size_t pooledFloats_ = 0;
    QImage scratch_;
};

}  // namespace wp::ui
