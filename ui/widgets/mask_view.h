// What each layer may attend to, what it did attend to, and what the KV cache holds.
//
// MaskView is a toolbar (mode, layer, head, zoom, all layers, export) over one canvas that paints
// only the visible part of the grid. Three modes:
//  - Mask: the query x key grid of a layer (or small multiples of all layers), allowed cells in the
//    layer kind's colour (global or sliding), masked cells left blank, the sliding window's edge
//    drawn as a line. Every cell comes from wp::MaskSpec::reason, the forward pass's own rule.
//  - Attention: the recorded post-softmax probabilities of one head (or the head average) as a
//    heat map over the mask (masked cells grey, allowed cells a faint kind colour).
//  - Cache: per generation step, which absolute positions each layer's KV cache holds.
// Zoomed out below one pixel per cell, each screen pixel shows its block aggregated (the fraction
// of allowed cells, the largest probability), so 4,096-token conversations stay smooth.
//
// The parts, beside this file: mask_view_toolbar (the controls), mask_geometry (where things sit,
// zoom to fit, hit testing), mask_painter (titles, axes, labels, window edge), mask_raster (the
// cells as pixels, pooled attention), mask_palette (colours), mask_view_text (captions, hover texts).
// The data comes from the inference worker as engine/mask_view_data.h.
#pragma once

#include <QImage>
#include <QRectF>
#include <QWidget>

#include "engine/mask_view_data.h"
#include "widgets/mask_geometry.h"
#include "widgets/mask_palette.h"
#include "widgets/mask_raster.h"

class QLabel;
class QPainter;

namespace wp::ui {

class MaskCanvas;
class MaskViewToolbar;

class MaskView : public QWidget {
    Q_OBJECT
public:
    enum class Mode { Mask, Attention, Cache };
    using Colors = MaskColors;

    explicit MaskView(QWidget* parent = nullptr);
    ~MaskView() override;

    void setData(MaskViewData data);
    const MaskViewData& data() const { return data_; }

    Mode mode() const { return mode_; }
    void setMode(Mode mode);
    int layer() const { return layer_; }
    void setLayer(int layer);
    int head() const { return head_; }  // -1: average over heads
    void setHead(int head);
    int cacheStep() const { return step_; }
    void setCacheStep(int step);
    bool smallMultiples() const { return smallMultiples_; }
    void setSmallMultiples(bool on);
    // Attention colours over log10 p from 1e-4 to 1 instead of sqrt(p): the faint attention of
    // long contexts becomes visible.
    bool logScale() const { return logScale_; }
    void setLogScale(bool on);

    // Pixels per cell (per position in cache mode). In small multiples the thumbnails follow it.
    double zoom() const;
    void setZoom(double pixelsPerCell);
    void zoomBy(double factor);  // keeps the centre of the canvas in place
    void fitToView();
    // Scrolls so that cell (q, k) of the single-layer view is visible.
    void scrollToCell(int q, int k);

    // The current view (what the canvas shows, axes included) as PNG / SVG. Same painting code.
    QImage renderImage() const;
    bool exportPng(const QString& path) const;
    bool exportSvg(const QString& path) const;

    // Hover texts.
    QString describeCell(int layer, int q, int k) const;
    QString describeCacheCell(int step, int layer, int position) const;

    // Where a cell is in canvas (= exported image) coordinates; empty when it is not shown now.
    QRectF cellRect(int layer, int q, int k) const;
    QRectF cacheCellRect(int layer, int position) const;

    Colors colors() const;
    // The colour of an allowed cell with probability p in a layer (attention mode).
    QColor heatColor(int layer, float p) const;
    static QString visibleToken(QString piece);  // space -> ·, \n -> ↵, \t -> →

    double lastPaintMs() const { return lastPaintMs_; }
    QWidget* canvas() const;  // the canvas viewport (tests, screenshots)

signals:
    void layerChanged(int layer);
    void modeChanged(wp::ui::MaskView::Mode mode);

protected:
    void changeEvent(QEvent* event) override;

private:
    friend class MaskCanvas;

    MaskLayout maskLayout() const;
    MaskExtent extent() const;
    MaskGeometry gridGeometry(QSize view) const;
    QSize viewSize() const;
    QPoint scrollOffset() const;
    void updateScrollRange();
    void canvasResized();
    void setZoomAt(double ppc, QPointF anchor);
    void paintView(QPainter& p, QSize view, QPoint scroll, bool raster) const;
    MaskHit hitTest(QPointF pos) const;
    QString describeHit(const MaskHit& hit) const;
    void clickAt(QPointF pos);
    void hoverAt(QPointF pos);
    void exportWithDialog(bool svg);
    void syncControls();
    void updateLegend();

    MaskViewData data_;
    Mode mode_ = Mode::Mask;
    int layer_ = 0;
    int head_ = -1;
    int step_ = 0;
    bool smallMultiples_ = false;
    bool logScale_ = false;
    // Per MaskLayout: pixels per cell (Single, CacheRows) or thumbnail size in pixels (Multiples),
    // and whether the zoom follows the canvas size (until the user zooms).
    double zoom_[3] = {8.0, 160.0, 8.0};
    bool fitted_[3] = {true, true, true};
    double lastPaintMs_ = 0;

    HeldPositions held_;  // cache mode: of the shown step
    int cacheWidth_ = 0;  // max length over steps
    int tokenLabelWidth_ = 0;
    int rowLabelWidth_ = 0;

    MaskPalette palette_;        // rebuilt when the widget's palette changes
    mutable MaskRaster raster_;  // repaint caches

    MaskViewToolbar* toolbar_ = nullptr;
    MaskCanvas* canvas_ = nullptr;
    QLabel* status_ = nullptr;
};

}  // namespace wp::ui
