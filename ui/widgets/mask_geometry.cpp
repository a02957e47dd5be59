#include "widgets/mask_geometry.h"

#include <QString>
#include <algorithm>
#include <cmath>

namespace wp::ui {

bool visibleCells(const Grid& g, int& r0, int& r1, int& c0, int& c1) {
    if (g.rows <= 0 || g.cols <= 0 || g.clip.isEmpty()) return false;
    c0 = std::max(0, static_cast<int>(std::floor((g.clip.left() - g.origin.x()) / g.sx)));
    c1 = std::min(g.cols, static_cast<int>(std::ceil((g.clip.right() + 1 - g.origin.x()) / g.sx)));
    r0 = std::max(0, static_cast<int>(std::floor((g.clip.top() - g.origin.y()) / g.sy)));
    r1 = std::min(g.rows, static_cast<int>(std::ceil((g.clip.bottom() + 1 - g.origin.y()) / g.sy)));
    return c0 < c1 && r0 < r1;
}

double labelThreshold(const QFontMetrics& fm) { return std::max(11, fm.height() - 1); }

int tickStep(double ppc, double minPx) {
    const double raw = minPx / ppc;
    if (raw <= 1) return 1;
    const double p10 = std::pow(10.0, std::floor(std::log10(raw)));
    for (double m : {1.0, 2.0, 5.0, 10.0})
        if (m * p10 >= raw) return static_cast<int>(m * p10);
    return static_cast<int>(10 * p10);
}

MaskGeometry MaskGeometry::layOut(MaskLayout layout, const MaskExtent& extent, const QFontMetrics& fm, QSize view,
                                  double zoom) {
    MaskGeometry g;
    g.layout = layout;
    g.extent = extent;
    const int T = extent.positions;
    const int L = extent.layers;
    g.view = view;
    g.titleH = fm.height() + 10;
    const int tickW = fm.horizontalAdvance(QString::number(std::max(T, extent.cacheWidth))) + 14;
    const int tickH = fm.height() + 8;
    switch (layout) {
        case MaskLayout::Multiples: {
            g.gap = 14;
            g.captionH = fm.height() + 4;
            g.thumb = static_cast<int>(std::lround(zoom));
            g.ppc = T > 0 ? double(g.thumb) / T : 1;
            g.rowH = g.ppc;
            g.area = QRect(0, g.titleH, view.width(), view.height() - g.titleH);
            g.cols = std::max(1, (view.width() - g.gap) / (g.thumb + g.gap));
            g.rows = L > 0 ? (L + g.cols - 1) / g.cols : 0;
            g.content = QSize(g.gap + g.cols * (g.thumb + g.gap), g.gap + g.rows * (g.captionH + g.thumb + g.gap));
            break;
        }
        case MaskLayout::CacheRows: {
            g.ppc = zoom;
            g.rowH = std::max(fm.height() + 6, 18);
            g.labels = zoom >= labelThreshold(fm);
            g.left = extent.rowLabelWidth + 20;
            g.top = g.titleH + (g.labels ? extent.tokenLabelWidth : tickH);
            g.area = QRect(g.left, g.top, view.width() - g.left, view.height() - g.top);
            g.content =
                QSize(static_cast<int>(std::ceil(extent.cacheWidth * zoom - 0.5)), static_cast<int>(L * g.rowH));
            break;
        }
        case MaskLayout::Single: {
            g.ppc = zoom;
            g.rowH = zoom;
            g.labels = zoom >= labelThreshold(fm);
            g.left = g.labels ? extent.tokenLabelWidth : tickW;
            g.top = g.titleH + (g.labels ? extent.tokenLabelWidth : tickH);
            g.area = QRect(g.left, g.top, view.width() - g.left, view.height() - g.top);
            const int c = static_cast<int>(std::ceil(T * zoom - 0.5));
            g.content = QSize(c, c);
            break;
        }
    }
    return g;
}

double MaskGeometry::fitZoom(MaskLayout layout, const MaskExtent& extent, const QFontMetrics& fm, QSize view,
                             double zoom) {
    const int T = extent.positions;
    const int L = extent.layers;
    if (T <= 0 || L <= 0) return zoom;
    if (layout == MaskLayout::Multiples) {
        // The largest square thumbnail over every column count.
        const MaskGeometry g0 = layOut(layout, extent, fm, view, zoom);
        double best = kMinThumb;
        for (int cols = 1; cols <= L; ++cols) {
            const int rows = (L + cols - 1) / cols;
            const double w = double(view.width() - g0.gap) / cols - g0.gap;
            const double h = double(view.height() - g0.titleH - g0.gap) / rows - g0.captionH - g0.gap;
            best = std::max(best, std::floor(std::min(w, h)));
        }
        return std::clamp(best, kMinThumb, kMaxThumb);
    }
    const int cells = layout == MaskLayout::CacheRows ? extent.cacheWidth : T;
    if (cells <= 0) return zoom;
    // The axes take more room with token labels than with position ticks.
    auto fitWith = [&](double probe) {
        const MaskGeometry g = layOut(layout, extent, fm, view, probe);
        double z = double(g.area.width()) / cells;
        if (layout == MaskLayout::Single) z = std::min(z, double(g.area.height()) / cells);
        return z;
    };
    const double thr = labelThreshold(fm);
    double z = fitWith(thr * 0.5);  // with position ticks on the axes
    if (z >= thr) {
        const double withLabels = fitWith(thr);
        z = withLabels >= thr ? withLabels : std::nextafter(thr, 0.0);
    }
    return std::clamp(std::floor(z * 1000) / 1000, kMinZoom, kMaxFitZoom);
}

QRect MaskGeometry::thumbRect(QPoint s, int layer) const {
    const int col = layer % cols, row = layer / cols;
    const int x = area.left() + gap + col * (thumb + gap) - s.x();
    const int y = area.top() + gap + row * (captionH + thumb + gap) + captionH - s.y();
    return QRect(x, y, thumb, thumb);
}

MaskHit MaskGeometry::hitTest(QPointF pos, QPoint s, int shown) const {
    MaskHit hit;
    const int T = extent.positions;
    const int L = extent.layers;
    if (T == 0 || L == 0) return hit;
    if (!QRectF(area).contains(pos)) return hit;
    switch (layout) {
        case MaskLayout::Single: {
            const int k = static_cast<int>(std::floor((pos.x() - area.left() + s.x()) / ppc));
            const int q = static_cast<int>(std::floor((pos.y() - area.top() + s.y()) / ppc));
            if (q >= 0 && q < T && k >= 0 && k < T) hit = {shown, q, k};
            break;
        }
        case MaskLayout::Multiples:
            for (int l = 0; l < L; ++l) {
                const QRect t = thumbRect(s, l);
                if (!QRectF(t).contains(pos)) continue;
                const int k = std::clamp(static_cast<int>((pos.x() - t.left()) / ppc), 0, T - 1);
                const int q = std::clamp(static_cast<int>((pos.y() - t.top()) / ppc), 0, T - 1);
                hit = {l, q, k};
                break;
            }
            break;
        case MaskLayout::CacheRows: {
            const int p = static_cast<int>(std::floor((pos.x() - area.left() + s.x()) / ppc));
            const int l = static_cast<int>(std::floor((pos.y() - area.top() + s.y()) / rowH));
            if (l >= 0 && l < L && p >= 0 && p < extent.cacheWidth) hit = {l, -1, p};
            break;
        }
    }
    return hit;
}

QRectF MaskGeometry::cellRect(QPoint s, int shown, int layer, int q, int k) const {
    const int T = extent.positions;
    if (layout == MaskLayout::CacheRows || layer < 0 || layer >= extent.layers || q < 0 || q >= T || k < 0 || k >= T)
        return {};
    QRectF r;
    QRectF clip = area;
    if (layout == MaskLayout::Single) {
        if (layer != shown) return {};
        r = QRectF(area.left() - s.x() + k * ppc, area.top() - s.y() + q * ppc, ppc, ppc);
    } else {
        const QRect t = thumbRect(s, layer);
        r = QRectF(t.left() + k * ppc, t.top() + q * ppc, ppc, ppc);
        clip = QRectF(t) & clip;
    }
    return clip.intersects(r) ? r : QRectF();
}

QRectF MaskGeometry::cacheCellRect(QPoint s, int layer, int position) const {
    if (layout != MaskLayout::CacheRows || layer < 0 || layer >= extent.layers || position < 0 ||
        position >= extent.cacheWidth)
        return {};
    const QRectF r(area.left() - s.x() + position * ppc, area.top() - s.y() + layer * rowH, ppc, rowH);
    return QRectF(area).intersects(r) ? r : QRectF();
}

}  // namespace wp::ui
