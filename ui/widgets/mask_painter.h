// Paints the mask view onto any QPainter: the canvas, a PNG, an SVG. One layer's grid with token
// labels or position ticks on the axes and the sliding window's edge; small multiples of every
// layer with captions; the cache rows with their layer labels and where the step ends; and the
// title row with the colour legend. The cells themselves come from MaskRaster.
#pragma once

#include <QColor>
#include <QFont>
#include <QPoint>

#include "engine/mask_view_data.h"
#include "widgets/mask_geometry.h"
#include "widgets/mask_view.h"

class QPainter;

namespace wp::ui {

class HeldPositions;
class MaskPalette;
class MaskRaster;

// What one paint reads (the widget's state, borrowed for the paint).
struct MaskScene {
    const MaskViewData& data;
    MaskView::Mode mode;
    int layer;  // shown alone; highlighted among small multiples
    int head;   // attention: -1 for the average over heads
    int step;   // cache mode
    bool logScale;
    const MaskPalette& palette;
    const HeldPositions& held;  // of `step`
    MaskRaster& raster;
    QFont font;
    QColor highlight;  // the frame of the current layer among small multiples
};

// raster: the target is an image (else a vector device such as QSvgGenerator).
void paintMaskView(QPainter& p, const MaskScene& scene, const MaskGeometry& g, QPoint scroll, bool raster);

}  // namespace wp::ui
