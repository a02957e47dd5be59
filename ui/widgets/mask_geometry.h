// Where the parts of the mask view sit, in canvas pixels (= exported image pixels): the title row,
// the axes, the scrolled grid area and the thumbnails of small multiples, for one view size and
// zoom; which cell a point hits; the zoom that fits everything. Arithmetic on sizes only: nothing
// here paints or touches a widget.
#pragma once

#include <QFontMetrics>
#include <QPoint>
#include <QPointF>
#include <QRect>
#include <QRectF>
#include <QSize>

namespace wp::ui {

// What the canvas shows: one layer's query x key grid, every layer's grid as a thumbnail, or one
// row per layer of the positions its KV cache holds. The values index per-layout zoom arrays.
enum class MaskLayout { Single = 0, Multiples = 1, CacheRows = 2 };

// Pixels per cell (Single, CacheRows) and thumbnail sizes in pixels (Multiples).
constexpr double kMinZoom = 0.01;
constexpr double kMaxZoom = 64.0;
constexpr double kMaxFitZoom = 48.0;
constexpr double kMinThumb = 48.0;
constexpr double kMaxThumb = 2000.0;

// The sizes the layout depends on besides the view and the zoom.
struct MaskExtent {
    int positions = 0;        // T: rows and columns of a layer's grid
    int layers = 0;
    int cacheWidth = 0;       // cache mode: positions of the longest step
    int tokenLabelWidth = 0;  // room for a token label along an axis
    int rowLabelWidth = 0;    // cache mode: room for "L3 · sliding 512 · 1.2 MB"
};

// A rows x cols grid of cells, cell (0, 0) at origin, sx x sy pixels each; only clip is painted.
struct Grid {
    QPointF origin;
    double sx = 1, sy = 1;
    int rows = 0, cols = 0;
    QRect clip;
    int samples = 1;  // zoomed out: cells sampled per screen pixel along each axis (1..4)
};

// The cells of a grid that meet its clip: rows [r0, r1), columns [c0, c1). False when none do.
bool visibleCells(const Grid& g, int& r0, int& r1, int& c0, int& c1);

// A cell under a point: a layer's (q, k), or in cache mode q = -1 and k the position.
struct MaskHit {
    int layer = -1, q = -1, k = -1;
    bool valid() const { return layer >= 0; }
};

struct MaskGeometry {
    MaskLayout layout = MaskLayout::Single;
    MaskExtent extent;
    QSize view;
    int titleH = 0;
    double ppc = 1;   // cell width
    double rowH = 1;  // cell height
    int left = 0, top = 0;
    bool labels = false;  // token labels on the axes (else position ticks)
    QRect area;           // the scrolled region
    QSize content;        // scrollable size
    // Small multiples.
    int thumb = 0, captionH = 0, gap = 0, cols = 1, rows = 0;

    // zoom: pixels per cell (Single, CacheRows) or thumbnail size in pixels (Multiples).
    static MaskGeometry layOut(MaskLayout layout, const MaskExtent& extent, const QFontMetrics& fm, QSize view,
                               double zoom);
    // The zoom at which the whole grid fits the view; `zoom` when there is nothing to fit. Cells
    // stop just below the size that shows token labels when the labels would not fit.
    static double fitZoom(MaskLayout layout, const MaskExtent& extent, const QFontMetrics& fm, QSize view,
                          double zoom);

    // Small multiples: the thumbnail of a layer (without its caption).
    QRect thumbRect(QPoint scroll, int layer) const;
    // The cell at pos; `shown` is the layer of the single-layer view.
    MaskHit hitTest(QPointF pos, QPoint scroll, int shown) const;
    // Where a cell is; empty when it is not shown in this layout and scroll position.
    QRectF cellRect(QPoint scroll, int shown, int layer, int q, int k) const;
    QRectF cacheCellRect(QPoint scroll, int layer, int position) const;
};

// Cells at least this many pixels wide show token labels on the axes instead of position ticks.
double labelThreshold(const QFontMetrics& fm);
// Positions per tick so that ticks are at least minPx apart: 1, 2, 5, 10, 20, 50, ...
int tickStep(double ppc, double minPx);

}  // namespace wp::ui
