#include "widgets/mask_view.h"

#include <QAbstractScrollArea>
#include <QComboBox>
#include <QElapsedTimer>
#include <QEvent>
#include <QFileDialog>
#include <QFileInfo>
#include <QHBoxLayout>
#include <QHelpEvent>
#include <QImage>
#include <QLabel>
#include <QMenu>
#include <QMouseEvent>
#include <QPainter>
#include <QPolygonF>
#include <QScrollBar>
#include <QShortcut>
#include <QSlider>
#include <QSvgGenerator>
#include <QToolButton>
#include <QToolTip>
#include <QVBoxLayout>
#include <QWheelEvent>
#include <algorithm>
#include <cmath>
#include <cstring>

#include "widgets/mask_view_text.h"

namespace wp::ui {

namespace {

constexpr qint64 kMaxVectorCells = 250000;  // vector output: one rectangle run per row above this
constexpr std::size_t kMaxPooledFloats = std::size_t(40) << 20;
constexpr double kSampleBudget = 6.0e6;   // mask evaluations per paint when zoomed out

// The cells one screen pixel covers along one axis, and up to 4 of them to sample.
struct Range {
    int a = 0, b = 0, n = 0;
    int s[4] = {0, 0, 0, 0};
};

void makeRanges(std::vector<Range>& out, int first, int count, double origin, double scale, int cells, int samples) {
    out.resize(count);
    for (int i = 0; i < count; ++i) {
        const double px = first + i;
        int a = static_cast<int>(std::floor((px - origin) / scale));
        int b = static_cast<int>(std::floor((px + 1 - origin) / scale));
        a = std::clamp(a, 0, cells - 1);
        b = std::clamp(b, a + 1, cells);
        Range& r = out[i];
        r.a = a;
        r.b = b;
        const int len = b - a;
        r.n = std::min(len, samples);
        for (int j = 0; j < r.n; ++j) r.s[j] = a + static_cast<int>((std::int64_t(2 * j + 1) * len) / (2 * r.n));
    }
}

void ensureScratch(QImage& scratch, int w, int h) {
    if (scratch.width() < w || scratch.height() < h)
        scratch = QImage(std::max(w, scratch.width()), std::max(h, scratch.height()), QImage::Format_RGB32);
}

void blit(QPainter& p, const QRectF& target, QImage& scratch, int w, int h, bool raster) {
    if (raster) {
        p.drawImage(target, scratch, QRectF(0, 0, w, h));
    } else {
        // QSvgGenerator writes the whole image and ignores the source rectangle.
        p.drawImage(target, scratch.copy(0, 0, w, h));
    }
}

// Paints the visible part of a grid. Cells of a pixel or more: one colour per visible cell
// (raster: a cell-sized image scaled up without smoothing; vector: one rectangle per run of equal
// cells in a row). Smaller cells: one colour per screen pixel from its block of cells.
// cell(row, col) -> QRgb; block(const Range& rows, const Range& cols) -> QRgb.
template <class Cell, class Block>
void paintGrid(QPainter& p, const Grid& g, bool raster, QImage& scratch, const Cell& cell, const Block& block) {
    int r0, r1, c0, c1;
    if (!visibleCells(g, r0, r1, c0, c1)) return;
    const int nr = r1 - r0, nc = c1 - c0;
    const bool whole = g.sx >= 1 && g.sy >= 1;
    if (whole && raster) {
        ensureScratch(scratch, nc, nr);
        for (int r = 0; r < nr; ++r) {
            QRgb* line = reinterpret_cast<QRgb*>(scratch.scanLine(r));
            for (int c = 0; c < nc; ++c) line[c] = cell(r0 + r, c0 + c);
        }
        blit(p, QRectF(g.origin.x() + c0 * g.sx, g.origin.y() + r0 * g.sy, nc * g.sx, nr * g.sy), scratch, nc, nr,
             true);
        return;
    }
    if (whole && qint64(nr) * nc <= kMaxVectorCells) {
        for (int r = r0; r < r1; ++r) {
            int start = c0;
            QRgb run = cell(r, c0);
            for (int c = c0 + 1; c <= c1; ++c) {
                const QRgb v = c < c1 ? cell(r, c) : ~run;
                if (v == run) continue;
                p.fillRect(QRectF(g.origin.x() + start * g.sx, g.origin.y() + r * g.sy, (c - start) * g.sx, g.sy),
                           QColor(run));
                start = c;
                run = v;
            }
        }
        return;
    }
    const QRect content =
        QRectF(g.origin, QSizeF(g.cols * g.sx, g.rows * g.sy)).toAlignedRect() & g.clip;
    if (content.isEmpty()) return;
    std::vector<Range> cols, rows;
    makeRanges(cols, content.left(), content.width(), g.origin.x(), g.sx, g.cols, g.samples);
    makeRanges(rows, content.top(), content.height(), g.origin.y(), g.sy, g.rows, g.samples);
    ensureScratch(scratch, content.width(), content.height());
    for (int y = 0; y < content.height(); ++y) {
        QRgb* line = reinterpret_cast<QRgb*>(scratch.scanLine(y));
        const Range& ry = rows[y];
        for (int x = 0; x < content.width(); ++x) line[x] = block(ry, cols[x]);
    }
    blit(p, QRectF(content), scratch, content.width(), content.height(), raster);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// The canvas: a scroll area whose viewport MaskView paints; no child widgets, no per-cell items.

class MaskCanvas : public QAbstractScrollArea {
public:
    explicit MaskCanvas(MaskView* view) : QAbstractScrollArea(view), view_(view) {
        setObjectName(QStringLiteral("maskCanvas"));
        viewport()->setObjectName(QStringLiteral("maskCanvasViewport"));
        viewport()->setMouseTracking(true);
        viewport()->setAttribute(Qt::WA_OpaquePaintEvent);
        viewport()->setAttribute(Qt::WA_NoSystemBackground);
        horizontalScrollBar()->setSingleStep(24);
        verticalScrollBar()->setSingleStep(24);
        setFocusPolicy(Qt::StrongFocus);
    }

protected:
    void paintEvent(QPaintEvent*) override {
        QElapsedTimer timer;
        timer.start();
        QPainter p(viewport());
        view_->paintView(p, viewport()->size(), view_->scroll(), true);
        p.end();
        view_->lastPaintMs_ = timer.nsecsElapsed() / 1e6;
    }
    void resizeEvent(QResizeEvent* e) override {
        QAbstractScrollArea::resizeEvent(e);
        view_->canvasResized();
    }
    void scrollContentsBy(int, int) override { viewport()->update(); }
    void wheelEvent(QWheelEvent* e) override {
        if (e->modifiers() & Qt::ControlModifier) {
            const double steps = e->angleDelta().y() / 120.0;
            if (steps != 0) view_->setZoomAt(view_->zoom() * std::pow(1.25, steps), e->position());
            e->accept();
            return;
        }
        QAbstractScrollArea::wheelEvent(e);
    }
    void mouseMoveEvent(QMouseEvent* e) override { view_->hoverAt(e->position()); }
    void mousePressEvent(QMouseEvent* e) override {
        if (e->button() == Qt::LeftButton) view_->clickAt(e->position());
    }
    bool viewportEvent(QEvent* e) override {
        if (e->type() == QEvent::ToolTip) {
            auto* he = static_cast<QHelpEvent*>(e);
            const QString text = view_->describeHit(view_->hitTest(he->pos()));
            if (text.isEmpty())
                QToolTip::hideText();
            else
                QToolTip::showText(he->globalPos(), text, viewport());
            return true;
        }
        if (e->type() == QEvent::Leave) view_->hoverAt(QPointF(-1, -1));
        return QAbstractScrollArea::viewportEvent(e);
    }

private:
    MaskView* view_;
};

// ---------------------------------------------------------------------------------------------

MaskView::MaskView(QWidget* parent) : QWidget(parent) {
    setObjectName(QStringLiteral("maskView"));
    auto* outer = new QVBoxLayout(this);
    outer->setContentsMargins(0, 0, 0, 0);
    outer->setSpacing(4);

    auto* bar = new QHBoxLayout;
    bar->setSpacing(6);
    modeBox_ = new QComboBox(this);
    modeBox_->setObjectName(QStringLiteral("maskModeBox"));
    modeBox_->addItem(tr("Mask"));
    modeBox_->addItem(tr("Attention"));
    modeBox_->addItem(tr("KV cache"));
    modeBox_->setToolTip(tr("Mask: what each layer may attend to. Attention: what it did attend to. "
                            "KV cache: which positions each layer keeps."));
    connect(modeBox_, &QComboBox::currentIndexChanged, this, [this](int i) {
        if (!syncing_) setMode(static_cast<Mode>(i));
    });
    bar->addWidget(modeBox_);

    layerBox_ = new QComboBox(this);
    layerBox_->setObjectName(QStringLiteral("maskLayerBox"));
    layerBox_->setToolTip(tr("Layer"));
    layerBox_->setSizeAdjustPolicy(QComboBox::AdjustToContents);
    connect(layerBox_, &QComboBox::currentIndexChanged, this, [this](int i) {
        if (!syncing_ && i >= 0) setLayer(i);
    });
    bar->addWidget(layerBox_);

    headBox_ = new QComboBox(this);
    headBox_->setObjectName(QStringLiteral("maskHeadBox"));
    headBox_->setToolTip(tr("Attention head, or the average over all heads"));
    headBox_->setSizeAdjustPolicy(QComboBox::AdjustToContents);
    connect(headBox_, &QComboBox::currentIndexChanged, this, [this](int i) {
        if (!syncing_ && i >= 0) setHead(i - 1);
    });
    bar->addWidget(headBox_);

    logButton_ = new QToolButton(this);
    logButton_->setObjectName(QStringLiteral("maskLogScaleButton"));
    logButton_->setText(tr("log p"));
    logButton_->setCheckable(true);
    logButton_->setToolTip(tr("Colour by log\u2081\u2080 p from 10\u207b\u2074 to 1 instead of \u221ap: "
                              "shows the faint attention of long contexts"));
    connect(logButton_, &QToolButton::toggled, this, [this](bool on) {
        if (!syncing_) setLogScale(on);
    });
    bar->addWidget(logButton_);

    multiplesButton_ = new QToolButton(this);
    multiplesButton_->setObjectName(QStringLiteral("maskMultiplesButton"));
    multiplesButton_->setText(tr("All layers"));
    multiplesButton_->setCheckable(true);
    multiplesButton_->setToolTip(tr("Show every layer side by side; click one to enlarge it"));
    connect(multiplesButton_, &QToolButton::toggled, this, [this](bool on) {
        if (!syncing_) setSmallMultiples(on);
    });
    bar->addWidget(multiplesButton_);
    bar->addSpacing(8);

    auto* zoomOut = new QToolButton(this);
    zoomOut->setObjectName(QStringLiteral("maskZoomOut"));
    zoomOut->setText(QStringLiteral("\u2212"));
    zoomOut->setToolTip(tr("Zoom out (Ctrl+wheel, Ctrl+-)"));
    connect(zoomOut, &QToolButton::clicked, this, [this] { zoomBy(1 / 1.5); });
    bar->addWidget(zoomOut);
    zoomLabel_ = new QLabel(this);
    zoomLabel_->setObjectName(QStringLiteral("maskZoomLabel"));
    zoomLabel_->setMinimumWidth(fontMetrics().horizontalAdvance(QStringLiteral("000.00 px/cell")));
    zoomLabel_->setAlignment(Qt::AlignCenter);
    bar->addWidget(zoomLabel_);
    auto* zoomIn = new QToolButton(this);
    zoomIn->setObjectName(QStringLiteral("maskZoomIn"));
    zoomIn->setText(QStringLiteral("+"));
    zoomIn->setToolTip(tr("Zoom in (Ctrl+wheel, Ctrl++)"));
    connect(zoomIn, &QToolButton::clicked, this, [this] { zoomBy(1.5); });
    bar->addWidget(zoomIn);
    auto* fit = new QToolButton(this);
    fit->setObjectName(QStringLiteral("maskFitButton"));
    fit->setText(tr("Fit"));
    fit->setToolTip(tr("Fit the whole grid into the view (Ctrl+0)"));
    connect(fit, &QToolButton::clicked, this, [this] { fitToView(); });
    bar->addWidget(fit);
    bar->addStretch(1);

    exportButton_ = new QToolButton(this);
    exportButton_->setObjectName(QStringLiteral("maskExportButton"));
    exportButton_->setText(tr("Export"));
    exportButton_->setPopupMode(QToolButton::InstantPopup);
    auto* menu = new QMenu(exportButton_);
    menu->addAction(tr("PNG image\u2026"), this, [this] {
        const QString path = QFileDialog::getSaveFileName(this, tr("Export the view"), QStringLiteral("attention.png"),
                                                          tr("PNG image (*.png)"));
        if (!path.isEmpty() && !exportPng(path)) status_->setText(tr("Could not write %1").arg(path));
    });
    menu->addAction(tr("SVG image\u2026"), this, [this] {
        const QString path = QFileDialog::getSaveFileName(this, tr("Export the view"), QStringLiteral("attention.svg"),
                                                          tr("SVG image (*.svg)"));
        if (!path.isEmpty() && !exportSvg(path)) status_->setText(tr("Could not write %1").arg(path));
    });
    exportButton_->setMenu(menu);
    bar->addWidget(exportButton_);
    outer->addLayout(bar);

    stepRow_ = new QWidget(this);
    auto* stepLayout = new QHBoxLayout(stepRow_);
    stepLayout->setContentsMargins(0, 0, 0, 0);
    stepLayout->addWidget(new QLabel(tr("Step"), stepRow_));
    stepSlider_ = new QSlider(Qt::Horizontal, stepRow_);
    stepSlider_->setObjectName(QStringLiteral("maskStepSlider"));
    stepSlider_->setToolTip(tr("The cache after the prompt and after each generated token"));
    connect(stepSlider_, &QSlider::valueChanged, this, [this](int v) {
        if (!syncing_) setCacheStep(v);
    });
    stepLayout->addWidget(stepSlider_, 1);
    stepLabel_ = new QLabel(stepRow_);
    stepLabel_->setObjectName(QStringLiteral("maskStepLabel"));
    stepLayout->addWidget(stepLabel_);
    outer->addWidget(stepRow_);

    canvas_ = new MaskCanvas(this);
    outer->addWidget(canvas_, 1);

    status_ = new QLabel(this);
    status_->setObjectName(QStringLiteral("maskStatus"));
    status_->setTextInteractionFlags(Qt::TextSelectableByMouse);
    status_->setMinimumWidth(1);
    outer->addWidget(status_);

    auto shortcut = [this](const QKeySequence& keys, auto fn) {
        auto* s = new QShortcut(keys, this);
        s->setContext(Qt::WidgetWithChildrenShortcut);
        connect(s, &QShortcut::activated, this, fn);
    };
    shortcut(QKeySequence::ZoomIn, [this] { zoomBy(1.5); });
    shortcut(QKeySequence(Qt::CTRL | Qt::Key_Equal), [this] { zoomBy(1.5); });
    shortcut(QKeySequence::ZoomOut, [this] { zoomBy(1 / 1.5); });
    shortcut(QKeySequence(Qt::CTRL | Qt::Key_0), [this] { fitToView(); });

    palette_.rebuild(palette());
    syncControls();
    updateLegend();
}

MaskView::~MaskView() = default;

QWidget* MaskView::canvas() const { return canvas_->viewport(); }

MaskLayout MaskView::layout() const {
    if (mode_ == Mode::Cache) return MaskLayout::CacheRows;
    return smallMultiples_ ? MaskLayout::Multiples : MaskLayout::Single;
}

QString MaskView::visibleToken(QString piece) { return MaskViewText::visibleToken(std::move(piece)); }

// ---------------------------------------------------------------------------------------------
// State

void MaskView::setData(MaskViewData data) {
    data_ = std::move(data);
    const int L = static_cast<int>(data_.layers.size());
    if (static_cast<int>(data_.attention.size()) < L) data_.attention.resize(L);
    data_.heads = std::max(0, data_.heads);
    const int oldLayer = layer_;
    layer_ = std::clamp(layer_, 0, std::max(0, L - 1));
    if (head_ >= data_.heads) head_ = -1;
    step_ = data_.cacheSteps.empty() ? 0 : static_cast<int>(data_.cacheSteps.size()) - 1;
    pooled_.clear();
    pooledFloats_ = 0;

    const QFontMetrics fm = fontMetrics();
    int widest = 0;
    for (const QString& t : data_.tokens) widest = std::max(widest, fm.horizontalAdvance(visibleToken(t)));
    tokenLabelWidth_ = std::clamp(widest + 14, 40, 130);

    cacheWidth_ = 0;
    std::vector<qint64> maxBytes(L, 0);
    for (const auto& s : data_.cacheSteps) {
        cacheWidth_ = std::max(cacheWidth_, s.length);
        for (int l = 0; l < L && l < static_cast<int>(s.bytes.size()); ++l) maxBytes[l] = std::max(maxBytes[l], s.bytes[l]);
    }
    rowLabelWidth_ = 0;
    for (int l = 0; l < L; ++l)
        rowLabelWidth_ = std::max(rowLabelWidth_, fm.horizontalAdvance(MaskViewText::layerCaption(l, data_.layers[l]) +
                                                                       QStringLiteral(" \u00b7 ") + MaskViewText::bytes(maxBytes[l])));
    rebuildCacheBits();
    for (int k = 0; k < 3; ++k) fitted_[k] = true;
    syncControls();
    fitToView();
    if (layer_ != oldLayer) emit layerChanged(layer_);
}

void MaskView::setMode(Mode mode) {
    if (mode == mode_) return;
    mode_ = mode;
    if (fitted_[static_cast<int>(layout())])
        fitToView();
    else
        updateScrollRange();
    syncControls();
    updateLegend();
    canvas_->viewport()->update();
    emit modeChanged(mode_);
}

void MaskView::setLayer(int layer) {
    const int L = static_cast<int>(data_.layers.size());
    if (L == 0) return;
    layer = std::clamp(layer, 0, L - 1);
    if (layer == layer_) return;
    layer_ = layer;
    syncControls();
    canvas_->viewport()->update();
    emit layerChanged(layer_);
}

void MaskView::setHead(int head) {
    head = (head < 0 || head >= data_.heads) ? -1 : head;
    if (head == head_) return;
    head_ = head;
    syncControls();
    canvas_->viewport()->update();
}

void MaskView::setCacheStep(int step) {
    const int n = static_cast<int>(data_.cacheSteps.size());
    if (n == 0) return;
    step = std::clamp(step, 0, n - 1);
    if (step == step_) return;
    step_ = step;
    rebuildCacheBits();
    syncControls();
    canvas_->viewport()->update();
}

void MaskView::setSmallMultiples(bool on) {
    if (on == smallMultiples_) return;
    smallMultiples_ = on;
    if (fitted_[static_cast<int>(layout())])
        fitToView();
    else
        updateScrollRange();
    syncControls();
    canvas_->viewport()->update();
}

void MaskView::setLogScale(bool on) {
    if (on == logScale_) return;
    logScale_ = on;
    syncControls();
    canvas_->viewport()->update();
}

void MaskView::rebuildCacheBits() {
    const int L = static_cast<int>(data_.layers.size());
    const int W = cacheWidth_;
    heldBits_.assign(static_cast<std::size_t>(L) * W, 0);
    heldPrefix_.assign(static_cast<std::size_t>(L) * (W + 1), 0);
    if (data_.cacheSteps.empty()) return;
    const auto& s = data_.cacheSteps[std::clamp(step_, 0, static_cast<int>(data_.cacheSteps.size()) - 1)];
    for (int l = 0; l < L && l < static_cast<int>(s.held.size()); ++l) {
        for (std::int64_t pos : s.held[l])
            if (pos >= 0 && pos < W) heldBits_[static_cast<std::size_t>(l) * W + pos] = 1;
        int* pre = heldPrefix_.data() + static_cast<std::size_t>(l) * (W + 1);
        for (int c = 0; c < W; ++c) pre[c + 1] = pre[c] + heldBits_[static_cast<std::size_t>(l) * W + c];
    }
}

MaskView::Colors MaskView::colors() const { return palette_.colors(); }

QColor MaskView::heatColor(int layer, float p) const {
    if (layer < 0 || layer >= static_cast<int>(data_.layers.size())) return {};
    const int kind = data_.layers[layer].window > 0 ? 1 : 0;
    return QColor(palette_.heat(kind)[palette_.heatIndex(p, logScale_)]);
}

void MaskView::changeEvent(QEvent* event) {
    if (event->type() == QEvent::PaletteChange || event->type() == QEvent::StyleChange) {
        palette_.rebuild(palette());
        canvas_->viewport()->update();
    } else if (event->type() == QEvent::FontChange) {
        setData(std::move(data_));
    }
    QWidget::changeEvent(event);
}

void MaskView::syncControls() {
    syncing_ = true;
    const int L = static_cast<int>(data_.layers.size());
    modeBox_->setCurrentIndex(static_cast<int>(mode_));
    if (layerBox_->count() != L) {
        layerBox_->clear();
        for (int l = 0; l < L; ++l) layerBox_->addItem(MaskViewText::layerCaption(l, data_.layers[l]));
    } else {
        for (int l = 0; l < L; ++l) layerBox_->setItemText(l, MaskViewText::layerCaption(l, data_.layers[l]));
    }
    layerBox_->setCurrentIndex(layer_);
    layerBox_->setEnabled(mode_ != Mode::Cache && L > 0);
    if (headBox_->count() != data_.heads + 1) {
        headBox_->clear();
        headBox_->addItem(tr("Average of heads"));
        for (int h = 0; h < data_.heads; ++h) headBox_->addItem(tr("Head %1").arg(h));
    }
    headBox_->setCurrentIndex(head_ + 1);
    headBox_->setVisible(mode_ == Mode::Attention);
    logButton_->setChecked(logScale_);
    logButton_->setVisible(mode_ == Mode::Attention);
    multiplesButton_->setChecked(smallMultiples_);
    multiplesButton_->setEnabled(mode_ != Mode::Cache);

    const int steps = static_cast<int>(data_.cacheSteps.size());
    stepRow_->setVisible(mode_ == Mode::Cache && steps > 0);
    stepSlider_->setRange(0, std::max(0, steps - 1));
    stepSlider_->setValue(step_);
    if (steps > 0) {
        const auto& s = data_.cacheSteps[step_];
        stepLabel_->setText(tr("%1/%2 \u00b7 %3 \u00b7 %4 positions")
                                .arg(step_ + 1)
                                .arg(steps)
                                .arg(step_ == 0 ? tr("after the prompt") : tr("after generated token %1").arg(step_))
                                .arg(s.length));
    }
    const double z = zoom();
    zoomLabel_->setText(layout() == MaskLayout::Multiples
                            ? tr("%1 px").arg(std::lround(zoom_[static_cast<int>(MaskLayout::Multiples)]))
                            : tr("%1 px/cell").arg(z >= 10 ? QString::number(z, 'f', 0) : QString::number(z, 'g', 2)));
    syncing_ = false;
}

void MaskView::updateLegend() {
    status_->setText(tr("Hover a cell for details \u00b7 Ctrl+wheel zooms \u00b7 Fit shows everything"));
}

// ---------------------------------------------------------------------------------------------
// Zoom and scrolling

QSize MaskView::viewSize() const {
    const QSize s = canvas_->viewport()->size();
    return s.isEmpty() ? QSize(800, 600) : s;
}

QPoint MaskView::scroll() const {
    return QPoint(canvas_->horizontalScrollBar()->value(), canvas_->verticalScrollBar()->value());
}

MaskExtent MaskView::extent() const {
    return {data_.positions(), static_cast<int>(data_.layers.size()), cacheWidth_, tokenLabelWidth_, rowLabelWidth_};
}

MaskGeometry MaskView::gridGeometry(QSize view) const {
    const MaskLayout k = layout();
    return MaskGeometry::layOut(k, extent(), fontMetrics(), view, zoom_[static_cast<int>(k)]);
}

double MaskView::zoom() const {
    const MaskLayout k = layout();
    const double z = zoom_[static_cast<int>(k)];
    if (k == MaskLayout::Multiples) return data_.positions() > 0 ? z / data_.positions() : 1;
    return z;
}

void MaskView::updateScrollRange() {
    const MaskGeometry g = gridGeometry(viewSize());
    QScrollBar* h = canvas_->horizontalScrollBar();
    QScrollBar* v = canvas_->verticalScrollBar();
    h->setRange(0, std::max(0, g.content.width() - g.area.width()));
    v->setRange(0, std::max(0, g.content.height() - g.area.height()));
    h->setPageStep(std::max(1, g.area.width()));
    v->setPageStep(std::max(1, g.area.height()));
    syncControls();
}

void MaskView::canvasResized() {
    if (fitted_[static_cast<int>(layout())])
        fitToView();
    else
        updateScrollRange();
}

void MaskView::setZoom(double pixelsPerCell) {
    const MaskGeometry g = gridGeometry(viewSize());
    setZoomAt(pixelsPerCell, QPointF(g.area.center()));
}

void MaskView::zoomBy(double factor) { setZoom(zoom() * factor); }

// Zooms so that the cell under `anchor` (canvas coordinates) stays under it.
void MaskView::setZoomAt(double ppc, QPointF anchor) {
    const int T = data_.positions();
    if (T == 0 || !std::isfinite(ppc)) return;
    const MaskLayout k = layout();
    const int ki = static_cast<int>(k);
    const QSize view = viewSize();
    const MaskGeometry before = gridGeometry(view);
    const QPoint s = scroll();
    fitted_[ki] = false;
    if (k == MaskLayout::Multiples) {
        const double thumb = std::clamp(ppc * T, kMinThumb, kMaxThumb);
        const double ratio = thumb / zoom_[ki];
        zoom_[ki] = thumb;
        updateScrollRange();
        const double ay = anchor.y() - before.area.top();
        canvas_->verticalScrollBar()->setValue(static_cast<int>(std::lround((s.y() + ay) * ratio - ay)));
    } else {
        const double z = std::clamp(ppc, kMinZoom, kMaxZoom);
        const double cx = (anchor.x() - before.area.left() + s.x()) / before.ppc;
        const double cy = (anchor.y() - before.area.top() + s.y()) / before.rowH;
        zoom_[ki] = z;
        updateScrollRange();
        const MaskGeometry after = gridGeometry(view);
        canvas_->horizontalScrollBar()->setValue(
            static_cast<int>(std::lround(cx * after.ppc - (anchor.x() - after.area.left()))));
        if (k == MaskLayout::Single)
            canvas_->verticalScrollBar()->setValue(
                static_cast<int>(std::lround(cy * after.rowH - (anchor.y() - after.area.top()))));
    }
    syncControls();
    canvas_->viewport()->update();
}

void MaskView::fitToView() {
    const MaskLayout k = layout();
    const int ki = static_cast<int>(k);
    fitted_[ki] = true;
    zoom_[ki] = MaskGeometry::fitZoom(k, extent(), fontMetrics(), viewSize(), zoom_[ki]);
    updateScrollRange();
    canvas_->horizontalScrollBar()->setValue(0);
    canvas_->verticalScrollBar()->setValue(0);
    canvas_->viewport()->update();
}

void MaskView::scrollToCell(int q, int k) {
    if (layout() != MaskLayout::Single) return;
    const MaskGeometry g = gridGeometry(viewSize());
    canvas_->horizontalScrollBar()->setValue(static_cast<int>(std::lround((k + 0.5) * g.ppc - g.area.width() / 2.0)));
    canvas_->verticalScrollBar()->setValue(static_cast<int>(std::lround((q + 0.5) * g.ppc - g.area.height() / 2.0)));
    canvas_->viewport()->update();
}

QRectF MaskView::cellRect(int layer, int q, int k) const {
    return gridGeometry(viewSize()).cellRect(scroll(), layer_, layer, q, k);
}

QRectF MaskView::cacheCellRect(int layer, int position) const {
    return gridGeometry(viewSize()).cacheCellRect(scroll(), layer, position);
}

// ---------------------------------------------------------------------------------------------
// Hover texts, hit testing and clicks

QString MaskView::describeCell(int layer, int q, int k) const {
    return MaskViewText::cell(data_, mode_ == Mode::Attention, head_, layer, q, k);
}

QString MaskView::describeCacheCell(int step, int layer, int position) const {
    return MaskViewText::cacheCell(data_, step, layer, position);
}

MaskHit MaskView::hitTest(QPointF pos) const { return gridGeometry(viewSize()).hitTest(pos, scroll(), layer_); }

QString MaskView::describeHit(const MaskHit& hit) const {
    if (!hit.valid()) return {};
    if (hit.q < 0) return describeCacheCell(step_, hit.layer, hit.k);
    return describeCell(hit.layer, hit.q, hit.k);
}

void MaskView::hoverAt(QPointF pos) {
    const QString text = describeHit(hitTest(pos));
    if (text.isEmpty()) {
        updateLegend();
        return;
    }
    status_->setText(QString(text).replace(QLatin1Char('\n'), QStringLiteral("  \u00b7  ")));
    if (QToolTip::isVisible())
        QToolTip::showText(canvas_->viewport()->mapToGlobal(pos.toPoint()), text, canvas_->viewport());
}

void MaskView::clickAt(QPointF pos) {
    if (layout() != MaskLayout::Multiples) return;
    const MaskHit hit = hitTest(pos);
    if (!hit.valid()) return;
    setLayer(hit.layer);
    setSmallMultiples(false);
    scrollToCell(hit.q, hit.k);
}

// ---------------------------------------------------------------------------------------------
// Pooled probabilities

const std::vector<float>& MaskView::pooled(int layer, int head, int level) const {
    const auto key = std::make_tuple(layer, head, level);
    if (auto it = pooled_.find(key); it != pooled_.end()) return it->second;
    const int T = data_.positions();
    const int n = (T + (1 << level) - 1) >> level;
    const std::vector<float>* src = nullptr;
    int srcLevel = 0;
    for (int l = level - 1; l >= 1 && !src; --l)
        if (auto it = pooled_.find(std::make_tuple(layer, head, l)); it != pooled_.end()) {
            src = &it->second;
            srcLevel = l;
        }
    std::vector<float> out(static_cast<std::size_t>(n) * n, 0.0f);
    if (src) {
        const int sn = (T + (1 << srcLevel) - 1) >> srcLevel;
        const int d = level - srcLevel;
        for (int i = 0; i < sn; ++i) {
            float* o = out.data() + static_cast<std::size_t>(i >> d) * n;
            const float* r = src->data() + static_cast<std::size_t>(i) * sn;
            for (int j = 0; j < sn; ++j) o[j >> d] = std::max(o[j >> d], r[j]);
        }
    } else {
        const float* a = data_.attention[layer].data();
        const int H = data_.heads;
        std::vector<float> avg(head < 0 ? T : 0);
        for (int q = 0; q < T; ++q) {
            const float* r;
            if (head >= 0) {
                r = a + (static_cast<std::size_t>(head) * T + q) * T;
            } else {
                std::fill(avg.begin(), avg.end(), 0.0f);
                for (int h = 0; h < H; ++h) {
                    const float* hr = a + (static_cast<std::size_t>(h) * T + q) * T;
                    for (int k = 0; k < T; ++k) avg[k] += hr[k];
                }
                for (float& v : avg) v /= H;
                r = avg.data();
            }
            float* o = out.data() + static_cast<std::size_t>(q >> level) * n;
            for (int k = 0; k < T; ++k) o[k >> level] = std::max(o[k >> level], r[k]);
        }
    }
    if (pooledFloats_ + out.size() > kMaxPooledFloats) {
        pooled_.clear();
        pooledFloats_ = 0;
    }
    pooledFloats_ += out.size();
    return pooled_.emplace(key, std::move(out)).first->second;
}

// ---------------------------------------------------------------------------------------------
// Painting

QImage MaskView::renderImage() const {
    const QSize size = viewSize();
    QImage img(size, QImage::Format_RGB32);
    img.fill(palette_.colors().background);
    QPainter p(&img);
    paintView(p, size, scroll(), true);
    p.end();
    return img;
}

bool MaskView::exportPng(const QString& path) const { return renderImage().save(path, "PNG"); }

bool MaskView::exportSvg(const QString& path) const {
    const QSize size = viewSize();
    QSvgGenerator gen;
    gen.setFileName(path);
    gen.setSize(size);
    gen.setViewBox(QRect(QPoint(0, 0), size));
    gen.setTitle(QStringLiteral("Windowpane attention view"));
    gen.setDescription(status_->text());
    QPainter p;
    if (!p.begin(&gen)) return false;
    paintView(p, size, scroll(), false);
    if (!p.end()) return false;
    return QFileInfo(path).size() > 0;
}

void MaskView::paintView(QPainter& p, QSize view, QPoint scroll, bool raster) const {
    p.fillRect(QRect(QPoint(0, 0), view), palette_.colors().background);
    p.setFont(font());
    const int T = data_.positions();
    if (T == 0 || data_.layers.empty()) {
        p.setPen(palette_.colors().text);
        p.drawText(QRect(QPoint(0, 0), view), Qt::AlignCenter | Qt::TextWordWrap,
                   tr("Nothing to show yet: send a message to see what each layer attends to."));
        return;
    }
    const MaskGeometry g = gridGeometry(view);
    switch (g.layout) {
        case MaskLayout::Single: paintSingle(p, g, scroll, raster); break;
        case MaskLayout::Multiples: paintMultiples(p, g, scroll, raster); break;
        case MaskLayout::CacheRows: paintCache(p, g, scroll, raster); break;
    }
}

void MaskView::paintTitle(QPainter& p, const MaskGeometry& g, const QString& text) const {
    const QFontMetrics fm = p.fontMetrics();
    struct Item {
        QColor color;
        QString text;
    };
    std::vector<Item> items;
    bool gradient = false;
    if (mode_ == Mode::Attention) {
        gradient = true;
    } else if (mode_ == Mode::Cache) {
        items = {{palette_.colors().global, tr("held, global")}, {palette_.colors().sliding, tr("held, sliding")},
                 {palette_.colors().background, tr("not held")}};
    } else {
        items = {{palette_.colors().global, tr("global")}, {palette_.colors().sliding, tr("sliding")}, {palette_.colors().background, tr("masked")}};
    }
    const int sw = fm.height() - 4;
    const int y = (g.titleH - sw) / 2;
    int x = g.view.width() - 8;
    p.save();
    p.setRenderHint(QPainter::Antialiasing, false);
    if (gradient) {
        const int kindIdx = data_.layers[std::clamp(layer_, 0, int(data_.layers.size()) - 1)].window > 0 ? 1 : 0;
        const QString hi = tr("1"), lo = logScale_ ? tr("p \u2264 10\u207b\u2074") : tr("p = 0");
        x -= fm.horizontalAdvance(hi);
        p.setPen(palette_.colors().text);
        p.drawText(QRect(x, 0, fm.horizontalAdvance(hi), g.titleH), Qt::AlignVCenter, hi);
        const int gw = 96;
        x -= gw + 4;
        for (int i = 0; i < gw; ++i) {
            const double t = double(i) / (gw - 1);  // sqrt(p) or log p, the colour scale
            p.fillRect(QRect(x + i, y, 1, sw), QColor(palette_.heat(kindIdx)[static_cast<int>(t * (MaskPalette::kHeatSteps - 1))]));
        }
        p.setPen(palette_.colors().frame);
        p.drawRect(QRect(x, y, gw - 1, sw - 1));
        x -= fm.horizontalAdvance(lo) + 4;
        p.setPen(palette_.colors().text);
        p.drawText(QRect(x, 0, fm.horizontalAdvance(lo), g.titleH), Qt::AlignVCenter, lo);
        const QString masked = tr("masked");
        x -= fm.horizontalAdvance(masked) + sw + 18;
        p.fillRect(QRect(x, y, sw, sw), palette_.colors().masked);
        p.drawText(QRect(x + sw + 4, 0, fm.horizontalAdvance(masked), g.titleH), Qt::AlignVCenter, masked);
    } else {
        for (auto it = items.rbegin(); it != items.rend(); ++it) {
            const int tw = fm.horizontalAdvance(it->text);
            x -= tw;
            p.setPen(palette_.colors().text);
            p.drawText(QRect(x, 0, tw, g.titleH), Qt::AlignVCenter, it->text);
            x -= sw + 4;
            p.fillRect(QRect(x, y, sw, sw), it->color);
            p.setPen(palette_.colors().frame);
            p.drawRect(QRect(x, y, sw - 1, sw - 1));
            x -= 14;
        }
    }
    QFont bold = p.font();
    bold.setBold(true);
    p.setFont(bold);
    p.setPen(palette_.colors().text);
    const QRect textRect(8, 0, std::max(0, x - 16), g.titleH);
    p.drawText(textRect, Qt::AlignVCenter | Qt::AlignLeft, QFontMetrics(bold).elidedText(text, Qt::ElideRight, textRect.width()));
    p.restore();
}

void MaskView::paintLayerGrid(QPainter& p, int layer, QPointF origin, double ppc, const QRect& clip, bool raster,
                              int samples, bool thin) const {
    const int T = data_.positions();
    const MaskSpec spec = data_.layers[layer];
    const int kindIdx = spec.window > 0 ? 1 : 0;
    const Grid grid{origin, ppc, ppc, T, T, clip, samples};
    const QRgb bg = palette_.colors().background.rgb();
    p.save();
    p.setClipRect(clip, Qt::IntersectClip);
    p.setRenderHint(QPainter::Antialiasing, false);
    p.setRenderHint(QPainter::SmoothPixmapTransform, false);

    if (mode_ == Mode::Mask) {
        const QRgb on = kindIdx ? palette_.colors().sliding.rgb() : palette_.colors().global.rgb();
        const QRgb* frac = palette_.fraction(kindIdx);
        auto cell = [&](int q, int k) { return spec.allows(q, k) ? on : bg; };
        auto block = [&](const Range& r, const Range& c) {
            int n = 0;
            for (int i = 0; i < r.n; ++i)
                for (int j = 0; j < c.n; ++j) n += spec.allows(r.s[i], c.s[j]);
            const int total = r.n * c.n;
            return frac[(n * MaskPalette::kFractionSteps + total / 2) / total];
        };
        paintGrid(p, grid, raster, scratch_, cell, block);
    } else {
        const bool recorded = data_.hasAttention(layer);
        const QRgb* heat = palette_.heat(kindIdx);
        const QRgb masked = palette_.colors().masked.rgb(), alarm = palette_.colors().alarm.rgb(), tint = heat[0];
        const std::size_t TT = T;
        const int H = data_.heads;
        const int head = head_;
        const float* base = recorded ? data_.attention[layer].data() : nullptr;
        const float* headBase = (recorded && head >= 0) ? base + head * TT * TT : nullptr;
        const float invH = H > 0 ? 1.0f / H : 0.0f;
        auto prob = [&](int q, int k) -> float {
            if (headBase) return headBase[q * TT + k];
            float s = 0;
            for (int h = 0; h < H; ++h) s += base[(h * TT + q) * TT + k];
            return s * invH;
        };
        auto cell = [&](int q, int k) -> QRgb {
            const bool ok = spec.allows(q, k);
            if (!recorded) return ok ? tint : masked;
            const float v = prob(q, k);
            if (ok) return heat[palette_.heatIndex(v, logScale_)];
            return v > kMaskedEpsilon ? alarm : masked;
        };
        const int level = ppc < 1 ? static_cast<int>(std::floor(std::log2(1.0 / ppc) + 1e-9)) : 0;
        const std::vector<float>* pool = (recorded && level > 0) ? &pooled(layer, head, level) : nullptr;
        const int pn = (T + (1 << level) - 1) >> level;
        auto base2 = [&](int n, int total) {
            return n == 0 ? masked : n == total ? tint : mixRgb(masked, tint, double(n) / total);
        };
        auto block = [&](const Range& r, const Range& c) -> QRgb {
            if (r.b - r.a == 1 && c.b - c.a == 1) return cell(r.a, c.a);
            int n = 0;
            for (int i = 0; i < r.n; ++i)
                for (int j = 0; j < c.n; ++j) n += spec.allows(r.s[i], c.s[j]);
            const int total = r.n * c.n;
            if (!recorded) return base2(n, total);
            float mx = 0;
            if (pool) {
                const float* P = pool->data();
                for (int i = r.a >> level; i <= (r.b - 1) >> level; ++i)
                    for (int j = c.a >> level; j <= (c.b - 1) >> level; ++j) mx = std::max(mx, P[i * pn + j]);
            } else {
                for (int q = r.a; q < r.b; ++q)
                    for (int k = c.a; k < c.b; ++k)
                        if (spec.allows(q, k)) mx = std::max(mx, prob(q, k));
            }
            return mx > 0 ? heat[palette_.heatIndex(mx, logScale_)] : base2(n, total);
        };
        paintGrid(p, grid, raster, scratch_, cell, block);
    }

    // Gaps between cells large enough to tell apart.
    int r0, r1, c0, c1;
    if (ppc >= 6 && visibleCells(grid, r0, r1, c0, c1)) {
        QPen pen(palette_.colors().background, 1);
        pen.setCosmetic(true);
        p.setPen(pen);
        const double top = origin.y() + r0 * ppc, bottom = origin.y() + r1 * ppc;
        const double left = origin.x() + c0 * ppc, right = origin.x() + c1 * ppc;
        for (int c = c0; c <= c1; ++c) p.drawLine(QLineF(origin.x() + c * ppc, top, origin.x() + c * ppc, bottom));
        for (int r = r0; r <= r1; ++r) p.drawLine(QLineF(left, origin.y() + r * ppc, right, origin.y() + r * ppc));
    }
    paintWindowEdge(p, spec, origin, ppc, clip, thin);
    p.restore();
}

// The sliding window's edge: where a row turns from "outside the window" to "allowed", found by
// asking the mask itself (row by row over the visible columns).
void MaskView::paintWindowEdge(QPainter& p, const wp::MaskSpec& spec, QPointF origin, double ppc, const QRect& clip,
                               bool thin) const {
    if (spec.window <= 0) return;
    const int T = data_.positions();
    const Grid grid{origin, ppc, ppc, T, T, clip, 1};
    int r0, r1, c0, c1;
    if (!visibleCells(grid, r0, r1, c0, c1)) return;
    QPen pen(palette_.colors().edge, thin ? 1 : 2);
    pen.setCosmetic(true);
    pen.setJoinStyle(Qt::MiterJoin);
    p.setPen(pen);
    p.setRenderHint(QPainter::Antialiasing, false);
    QPolygonF line;
    auto flush = [&] {
        if (line.size() >= 2) p.drawPolyline(line);
        line.clear();
    };
    // First k in (from, to] where the row turns from OutsideWindow to Allowed, else -1.
    auto edgeIn = [&](int q, int from, int to) {
        MaskReason prev = spec.reason(q, from);
        for (int k = from + 1; k <= to; ++k) {
            const MaskReason cur = spec.reason(q, k);
            if (prev == MaskReason::OutsideWindow && cur == MaskReason::Allowed) return k;
            prev = cur;
        }
        return -1;
    };
    if (ppc >= 1) {
        line.reserve(2 * (r1 - r0));
        for (int q = r0; q < r1; ++q) {
            const int k = edgeIn(q, std::max(0, c0 - 1), std::min(c1, T - 1));
            if (k < 0) {
                flush();
                continue;
            }
            const double x = origin.x() + k * ppc, y = origin.y() + q * ppc;
            line << QPointF(x, y) << QPointF(x, y + ppc);
        }
    } else {
        // Zoomed out: one point per pixel row, joined smoothly.
        p.setRenderHint(QPainter::Antialiasing, true);
        pen.setWidthF(thin ? 1.0 : 1.6);
        p.setPen(pen);
        const QRect content = QRectF(origin, QSizeF(T * ppc, T * ppc)).toAlignedRect() & clip;
        line.reserve(content.height());
        for (int y = content.top(); y <= content.bottom(); ++y) {
            const int q = std::clamp(static_cast<int>((y + 0.5 - origin.y()) / ppc), 0, T - 1);
            int found = -1;
            int prevK = std::clamp(static_cast<int>((content.left() + 0.5 - origin.x()) / ppc), 0, T - 1);
            MaskReason prev = spec.reason(q, prevK);
            for (int x = content.left() + 1; x <= content.right() && found < 0; ++x) {
                const int k = std::clamp(static_cast<int>((x + 0.5 - origin.x()) / ppc), 0, T - 1);
                const MaskReason cur = spec.reason(q, k);
                if (prev == MaskReason::OutsideWindow && cur != MaskReason::OutsideWindow) found = edgeIn(q, prevK, k);
                prev = cur;
                prevK = k;
            }
            if (found < 0) {
                flush();
                continue;
            }
            line << QPointF(origin.x() + found * ppc, y + 0.5);
        }
    }
    flush();
}

void MaskView::paintSingle(QPainter& p, const MaskGeometry& g, QPoint s, bool raster) const {
    const int T = data_.positions();
    const int l = layer_;
    const MaskSpec spec = data_.layers[l];
    const QPointF o(g.area.left() - s.x(), g.area.top() - s.y());
    const QFontMetrics fm = p.fontMetrics();

    QString title = MaskViewText::layerCaption(l, spec);
    if (mode_ == Mode::Mask)
        title += tr(" \u2014 attention mask \u00b7 %1 positions").arg(T);
    else
        title += tr(" \u2014 attention, %1").arg(head_ < 0 && data_.heads > 1 ? tr("average of %1 heads").arg(data_.heads)
                                                 : tr("head %1 of %2").arg(std::max(head_, 0)).arg(data_.heads));
    paintTitle(p, g, title);

    const qint64 pixels = std::max<qint64>(1, qint64(g.area.width()) * g.area.height());
    const int samples = std::clamp(static_cast<int>(std::sqrt(kSampleBudget / pixels)), 1, 4);
    paintLayerGrid(p, l, o, g.ppc, g.area, raster, samples, false);

    int r0, r1, c0, c1;
    const Grid grid{o, g.ppc, g.ppc, T, T, g.area, 1};
    if (!visibleCells(grid, r0, r1, c0, c1)) return;

    if (mode_ == Mode::Attention && !data_.hasAttention(l)) {
        const QString msg = tr("No attention was recorded for %1.").arg(MaskViewText::layerCaption(l, spec));
        const QRect visible = QRectF(o.x() + c0 * g.ppc, o.y() + r0 * g.ppc, (c1 - c0) * g.ppc, (r1 - r0) * g.ppc)
                                  .toAlignedRect() & g.area;
        QRect box(0, 0, fm.horizontalAdvance(msg) + 32, fm.height() * 2 + 8);
        box.moveCenter(visible.center());
        p.fillRect(box, palette_.colors().background);
        p.setPen(palette_.colors().frame);
        p.drawRect(box.adjusted(0, 0, -1, -1));
        p.setPen(palette_.colors().text);
        p.drawText(box, Qt::AlignCenter, msg);
    }

    // Axes: token pieces when cells are large enough to read, else position ticks.
    p.save();
    p.setPen(palette_.colors().text);
    const QRect leftAxis(0, g.area.top(), g.left, g.area.height());
    // Position numbers may reach into the corner; token labels stay above their column.
    const int reach = g.labels ? 0 : std::min(g.left, 24);
    const QRect topAxis(g.area.left() - reach, g.titleH, g.area.width() + reach, g.top - g.titleH);
    if (g.labels) {
        p.setClipRect(leftAxis);
        for (int q = r0; q < r1; ++q) {
            const QRectF r(4, o.y() + q * g.ppc, g.left - 10, g.ppc);
            p.drawText(r, Qt::AlignRight | Qt::AlignVCenter,
                       fm.elidedText(MaskViewText::visibleToken(data_.tokens[q]), Qt::ElideRight, static_cast<int>(r.width())));
        }
        p.setClipRect(topAxis);
        const int len = g.top - g.titleH - 10;
        for (int k = c0; k < c1; ++k) {
            p.save();
            p.translate(o.x() + k * g.ppc + g.ppc / 2, g.top - 6);
            p.rotate(-90);
            p.drawText(QRectF(0, -g.ppc / 2, len, g.ppc), Qt::AlignLeft | Qt::AlignVCenter,
                       fm.elidedText(MaskViewText::visibleToken(data_.tokens[k]), Qt::ElideRight, len));
            p.restore();
        }
    } else {
        const int step = tickStep(g.ppc, 2.5 * fm.horizontalAdvance(QString::number(T)) + 8);
        p.setClipRect(leftAxis);
        for (int q = (r0 + step - 1) / step * step; q < r1; q += step) {
            const double y = o.y() + (q + 0.5) * g.ppc;
            p.drawLine(QLineF(g.left - 5, y, g.left - 1, y));
            p.drawText(QRectF(0, y - fm.height() / 2.0, g.left - 8, fm.height()), Qt::AlignRight | Qt::AlignVCenter,
                       QString::number(q));
        }
        p.setClipRect(topAxis);
        for (int k = (c0 + step - 1) / step * step; k < c1; k += step) {
            const double x = o.x() + (k + 0.5) * g.ppc;
            p.drawLine(QLineF(x, g.top - 5, x, g.top - 1));
            p.drawText(QRectF(x - 40, g.titleH, 80, g.top - g.titleH - 5), Qt::AlignHCenter | Qt::AlignBottom,
                       QString::number(k));
        }
    }
    p.setClipping(false);
    if (g.labels) {
        QFont small = p.font();
        small.setPointSizeF(small.pointSizeF() * 0.85);
        p.setFont(small);
        p.setPen(mixColor(palette_.colors().background, palette_.colors().text, 0.6));
        const QRect corner(2, g.titleH, g.left - 4, g.top - g.titleH);
        p.drawText(corner, Qt::AlignLeft | Qt::AlignBottom | Qt::TextWordWrap, tr("rows: query\ncolumns: key"));
    }
    p.restore();
}

void MaskView::paintMultiples(QPainter& p, const MaskGeometry& g, QPoint s, bool raster) const {
    const int L = static_cast<int>(data_.layers.size());
    QString title = tr("All %1 layers \u2014 %2 \u00b7 click one to enlarge it")
                        .arg(L)
                        .arg(mode_ == Mode::Mask ? tr("attention mask")
                             : head_ < 0 && data_.heads > 1 ? tr("attention, average of %1 heads").arg(data_.heads)
                                                            : tr("attention, head %1").arg(std::max(head_, 0)));
    paintTitle(p, g, title);

    qint64 pixels = 0;
    for (int l = 0; l < L; ++l) {
        const QRect visible = g.thumbRect(s, l) & g.area;
        pixels += qint64(visible.width()) * visible.height();
    }
    const int samples = std::clamp(static_cast<int>(std::sqrt(kSampleBudget / std::max<qint64>(1, pixels))), 1, 4);

    p.save();
    p.setClipRect(g.area);
    for (int l = 0; l < L; ++l) {
        const QRect t = g.thumbRect(s, l);
        const QRect withCaption = t.adjusted(0, -g.captionH, 0, 0);
        if (!withCaption.intersects(g.area)) continue;
        const MaskSpec& spec = data_.layers[l];
        p.setPen(palette_.colors().text);
        QFont f = font();
        f.setBold(l == layer_);
        p.setFont(f);
        p.drawText(QRect(t.left(), t.top() - g.captionH, t.width(), g.captionH - 2), Qt::AlignLeft | Qt::AlignBottom,
                   QFontMetrics(f).elidedText(MaskViewText::layerCaption(l, spec), Qt::ElideRight, t.width()));
        p.setFont(font());
        paintLayerGrid(p, l, t.topLeft(), g.ppc, t & g.area, raster, samples, true);
        if (mode_ == Mode::Attention && !data_.hasAttention(l)) {
            p.setPen(palette_.colors().text);
            p.drawText(t, Qt::AlignCenter | Qt::TextWordWrap, tr("not recorded"));
        }
        QPen frame(l == layer_ ? palette().color(QPalette::Highlight) : palette_.colors().frame, l == layer_ ? 2 : 1);
        p.setPen(frame);
        p.setBrush(Qt::NoBrush);
        p.drawRect(QRectF(t).adjusted(-1.5, -1.5, 0.5, 0.5));
    }
    p.restore();
}

void MaskView::paintCache(QPainter& p, const MaskGeometry& g, QPoint s, bool raster) const {
    const int L = static_cast<int>(data_.layers.size());
    const int W = cacheWidth_;
    const QFontMetrics fm = p.fontMetrics();
    if (data_.cacheSteps.empty() || W == 0) {
        paintTitle(p, g, tr("KV cache"));
        p.setPen(palette_.colors().text);
        p.drawText(QRect(QPoint(0, g.titleH), g.view), Qt::AlignCenter, tr("No cache steps were recorded."));
        return;
    }
    const auto& step = data_.cacheSteps[step_];
    qint64 total = 0;
    for (qint64 b : step.bytes) total += b;
    paintTitle(p, g, tr("KV cache %1 \u00b7 %2 positions \u00b7 %3 in total")
                         .arg(step_ == 0 ? tr("after the prompt") : tr("after generated token %1").arg(step_))
                         .arg(step.length)
                         .arg(MaskViewText::bytes(total)));

    const QPointF o(g.area.left() - s.x(), g.area.top() - s.y());
    const Grid grid{o, g.ppc, g.rowH, L, W, g.area, 1};
    const QRgb bg = palette_.colors().background.rgb();
    const QRgb on[2] = {palette_.colors().global.rgb(), palette_.colors().sliding.rgb()};
    auto kindOf = [&](int l) { return data_.layers[l].window > 0 ? 1 : 0; };
    auto cell = [&](int l, int c) { return heldBits_[static_cast<std::size_t>(l) * W + c] ? on[kindOf(l)] : bg; };
    auto block = [&](const Range& r, const Range& c) {
        const int l = r.a;
        const int* pre = heldPrefix_.data() + static_cast<std::size_t>(l) * (W + 1);
        const int n = pre[c.b] - pre[c.a], total = c.b - c.a;
        return palette_.fraction(kindOf(l))[(n * MaskPalette::kFractionSteps + total / 2) / total];
    };
    p.save();
    p.setClipRect(g.area);
    paintGrid(p, grid, raster, scratch_, cell, block);
    int r0, r1, c0, c1;
    const bool any = visibleCells(grid, r0, r1, c0, c1);
    if (any) {
        QPen gap(palette_.colors().background, 1);
        gap.setCosmetic(true);
        p.setPen(gap);
        const double left = o.x() + c0 * g.ppc, right = o.x() + c1 * g.ppc;
        for (int r = r0; r <= r1; ++r) p.drawLine(QLineF(left, o.y() + r * g.rowH, right, o.y() + r * g.rowH));
        if (g.ppc >= 6)
            for (int c = c0; c <= c1; ++c)
                p.drawLine(QLineF(o.x() + c * g.ppc, o.y() + r0 * g.rowH, o.x() + c * g.ppc, o.y() + r1 * g.rowH));
        // Where this step ends.
        QPen end(palette_.colors().text, 1, Qt::DashLine);
        end.setCosmetic(true);
        p.setPen(end);
        const double x = o.x() + step.length * g.ppc;
        p.drawLine(QLineF(x, o.y() + r0 * g.rowH, x, o.y() + r1 * g.rowH));
    }
    p.restore();
    if (!any) return;

    p.save();
    p.setPen(palette_.colors().text);
    p.setClipRect(QRect(0, g.area.top(), g.left, g.area.height()));
    for (int l = r0; l < r1; ++l) {
        QString label = MaskViewText::layerCaption(l, data_.layers[l]);
        if (l < static_cast<int>(step.bytes.size())) label += QStringLiteral(" \u00b7 ") + MaskViewText::bytes(step.bytes[l]);
        const QRectF r(8, o.y() + l * g.rowH, g.left - 14, g.rowH);
        p.fillRect(QRectF(2, r.top() + 3, 3, g.rowH - 6), on[kindOf(l)]);
        p.drawText(r, Qt::AlignLeft | Qt::AlignVCenter, fm.elidedText(label, Qt::ElideRight, static_cast<int>(r.width())));
    }
    const int reach = g.labels ? 0 : 24;
    const QRect topAxis(g.area.left() - reach, g.titleH, g.area.width() + reach, g.top - g.titleH);
    p.setClipRect(topAxis);
    if (g.labels) {
        const int len = g.top - g.titleH - 10;
        for (int c = c0; c < c1 && c < data_.positions(); ++c) {
            p.save();
            p.translate(o.x() + c * g.ppc + g.ppc / 2, g.top - 6);
            p.rotate(-90);
            p.drawText(QRectF(0, -g.ppc / 2, len, g.ppc), Qt::AlignLeft | Qt::AlignVCenter,
                       fm.elidedText(MaskViewText::visibleToken(data_.tokens[c]), Qt::ElideRight, len));
            p.restore();
        }
    } else {
        const int stepPx = tickStep(g.ppc, 2.5 * fm.horizontalAdvance(QString::number(W)) + 8);
        for (int c = (c0 + stepPx - 1) / stepPx * stepPx; c < c1; c += stepPx) {
            const double x = o.x() + (c + 0.5) * g.ppc;
            p.drawLine(QLineF(x, g.top - 5, x, g.top - 1));
            p.drawText(QRectF(x - 40, g.titleH, 80, g.top - g.titleH - 5), Qt::AlignHCenter | Qt::AlignBottom,
                       QString::number(c));
        }
    }
    p.setClipping(false);
    QFont small = p.font();
    small.setPointSizeF(small.pointSizeF() * 0.85);
    p.setFont(small);
    p.setPen(mixColor(palette_.colors().background, palette_.colors().text, 0.6));
    p.drawText(QRect(8, g.titleH, g.left - 12 - reach, g.top - g.titleH), Qt::AlignLeft | Qt::AlignBottom,
               tr("layer \u00b7 KV bytes  /  position \u2192"));
    p.restore();
}

}  // namespace wp::ui
