#include "widgets/mask_view.h"

#include <QAbstractScrollArea>
#include <QElapsedTimer>
#include <QEvent>
#include <QFileDialog>
#include <QFileInfo>
#include <QHelpEvent>
#include <QLabel>
#include <QMouseEvent>
#include <QPainter>
#include <QScrollBar>
#include <QShortcut>
#include <QSvgGenerator>
#include <QToolTip>
#include <QVBoxLayout>
#include <QWheelEvent>
#include <algorithm>
#include <cmath>

#include "widgets/mask_painter.h"
#include "widgets/mask_view_text.h"
#include "widgets/mask_view_toolbar.h"

namespace wp::ui {

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
        view_->paintView(p, viewport()->size(), view_->scrollOffset(), true);
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

MaskView::MaskView(QWidget* parent) : QWidget(parent) {
    setObjectName(QStringLiteral("maskView"));
    auto* outer = new QVBoxLayout(this);
    outer->setContentsMargins(0, 0, 0, 0);
    outer->setSpacing(4);

    toolbar_ = new MaskViewToolbar(this);
    connect(toolbar_, &MaskViewToolbar::modeChosen, this, &MaskView::setMode);
    connect(toolbar_, &MaskViewToolbar::layerChosen, this, &MaskView::setLayer);
    connect(toolbar_, &MaskViewToolbar::headChosen, this, &MaskView::setHead);
    connect(toolbar_, &MaskViewToolbar::logScaleChosen, this, &MaskView::setLogScale);
    connect(toolbar_, &MaskViewToolbar::smallMultiplesChosen, this, &MaskView::setSmallMultiples);
    connect(toolbar_, &MaskViewToolbar::stepChosen, this, &MaskView::setCacheStep);
    connect(toolbar_, &MaskViewToolbar::zoomByRequested, this, &MaskView::zoomBy);
    connect(toolbar_, &MaskViewToolbar::fitRequested, this, &MaskView::fitToView);
    connect(toolbar_, &MaskViewToolbar::exportRequested, this, &MaskView::exportWithDialog);
    outer->addWidget(toolbar_);

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

MaskLayout MaskView::maskLayout() const {
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
    raster_.clear();

    const QFontMetrics fm = fontMetrics();
    int widest = 0;
    for (const QString& t : data_.tokens) widest = std::max(widest, fm.horizontalAdvance(visibleToken(t)));
    tokenLabelWidth_ = std::clamp(widest + 14, 40, 130);

    cacheWidth_ = 0;
    std::vector<qint64> maxBytes(L, 0);
    for (const auto& s : data_.cacheSteps) {
        cacheWidth_ = std::max(cacheWidth_, s.length);
        for (int l = 0; l < L && l < static_cast<int>(s.bytes.size()); ++l)
            maxBytes[l] = std::max(maxBytes[l], s.bytes[l]);
    }
    rowLabelWidth_ = 0;
    for (int l = 0; l < L; ++l) {
        const QString label = MaskViewText::layerCaption(l, data_.layers[l]) + QStringLiteral(" \u00b7 ") +
                              MaskViewText::bytes(maxBytes[l]);
        rowLabelWidth_ = std::max(rowLabelWidth_, fm.horizontalAdvance(label));
    }
    held_.rebuild(data_, step_, cacheWidth_);
    for (int k = 0; k < 3; ++k) fitted_[k] = true;
    syncControls();
    fitToView();
    if (layer_ != oldLayer) emit layerChanged(layer_);
}

void MaskView::setMode(Mode mode) {
    if (mode == mode_) return;
    mode_ = mode;
    if (fitted_[static_cast<int>(maskLayout())])
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
    held_.rebuild(data_, step_, cacheWidth_);
    syncControls();
    canvas_->viewport()->update();
}

void MaskView::setSmallMultiples(bool on) {
    if (on == smallMultiples_) return;
    smallMultiples_ = on;
    if (fitted_[static_cast<int>(maskLayout())])
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
    MaskViewToolbar::State s;
    s.mode = mode_;
    s.layer = layer_;
    s.head = head_;
    s.step = step_;
    s.logScale = logScale_;
    s.smallMultiples = smallMultiples_;
    const double z = zoom();
    s.zoomText = maskLayout() == MaskLayout::Multiples
                     ? tr("%1 px").arg(std::lround(zoom_[static_cast<int>(MaskLayout::Multiples)]))
                     : tr("%1 px/cell").arg(z >= 10 ? QString::number(z, 'f', 0) : QString::number(z, 'g', 2));
    toolbar_->sync(data_, s);
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

QPoint MaskView::scrollOffset() const {
    return QPoint(canvas_->horizontalScrollBar()->value(), canvas_->verticalScrollBar()->value());
}

MaskExtent MaskView::extent() const {
    return {data_.positions(), static_cast<int>(data_.layers.size()), cacheWidth_, tokenLabelWidth_, rowLabelWidth_};
}

MaskGeometry MaskView::gridGeometry(QSize view) const {
    const MaskLayout k = maskLayout();
    return MaskGeometry::layOut(k, extent(), fontMetrics(), view, zoom_[static_cast<int>(k)]);
}

double MaskView::zoom() const {
    const MaskLayout k = maskLayout();
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
    if (fitted_[static_cast<int>(maskLayout())])
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
    const MaskLayout k = maskLayout();
    const int ki = static_cast<int>(k);
    const QSize view = viewSize();
    const MaskGeometry before = gridGeometry(view);
    const QPoint s = scrollOffset();
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
    const MaskLayout k = maskLayout();
    const int ki = static_cast<int>(k);
    fitted_[ki] = true;
    zoom_[ki] = MaskGeometry::fitZoom(k, extent(), fontMetrics(), viewSize(), zoom_[ki]);
    updateScrollRange();
    canvas_->horizontalScrollBar()->setValue(0);
    canvas_->verticalScrollBar()->setValue(0);
    canvas_->viewport()->update();
}

void MaskView::scrollToCell(int q, int k) {
    if (maskLayout() != MaskLayout::Single) return;
    const MaskGeometry g = gridGeometry(viewSize());
    canvas_->horizontalScrollBar()->setValue(static_cast<int>(std::lround((k + 0.5) * g.ppc - g.area.width() / 2.0)));
    canvas_->verticalScrollBar()->setValue(static_cast<int>(std::lround((q + 0.5) * g.ppc - g.area.height() / 2.0)));
    canvas_->viewport()->update();
}

QRectF MaskView::cellRect(int layer, int q, int k) const {
    return gridGeometry(viewSize()).cellRect(scrollOffset(), layer_, layer, q, k);
}

QRectF MaskView::cacheCellRect(int layer, int position) const {
    return gridGeometry(viewSize()).cacheCellRect(scrollOffset(), layer, position);
}

// ---------------------------------------------------------------------------------------------
// Hover texts, hit testing and clicks

QString MaskView::describeCell(int layer, int q, int k) const {
    return MaskViewText::cell(data_, mode_ == Mode::Attention, head_, layer, q, k);
}

QString MaskView::describeCacheCell(int step, int layer, int position) const {
    return MaskViewText::cacheCell(data_, step, layer, position);
}

MaskHit MaskView::hitTest(QPointF pos) const {
    return gridGeometry(viewSize()).hitTest(pos, scrollOffset(), layer_);
}

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
    if (maskLayout() != MaskLayout::Multiples) return;
    const MaskHit hit = hitTest(pos);
    if (!hit.valid()) return;
    setLayer(hit.layer);
    setSmallMultiples(false);
    scrollToCell(hit.q, hit.k);
}

// ---------------------------------------------------------------------------------------------
// Painting and export

void MaskView::paintView(QPainter& p, QSize view, QPoint scroll, bool raster) const {
    const MaskScene scene{data_, mode_, layer_, head_, step_, logScale_, palette_, held_, raster_, font(),
                          palette().color(QPalette::Highlight)};
    paintMaskView(p, scene, gridGeometry(view), scroll, raster);
}

QImage MaskView::renderImage() const {
    const QSize size = viewSize();
    QImage img(size, QImage::Format_RGB32);
    img.fill(palette_.colors().background);
    QPainter p(&img);
    paintView(p, size, scrollOffset(), true);
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
    paintView(p, size, scrollOffset(), false);
    if (!p.end()) return false;
    return QFileInfo(path).size() > 0;
}

void MaskView::exportWithDialog(bool svg) {
    const QString path =
        svg ? QFileDialog::getSaveFileName(this, tr("Export the view"), QStringLiteral("attention.svg"),
                                           tr("SVG image (*.svg)"))
            : QFileDialog::getSaveFileName(this, tr("Export the view"), QStringLiteral("attention.png"),
                                           tr("PNG image (*.png)"));
    if (path.isEmpty()) return;
    if (!(svg ? exportSvg(path) : exportPng(path))) status_->setText(tr("Could not write %1").arg(path));
}

}  // namespace wp::ui
