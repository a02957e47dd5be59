#include "widgets/mask_painter.h"

#include <QCoreApplication>
#include <QPainter>
#include <QPolygonF>
#include <algorithm>
#include <cmath>
#include <vector>

#include "widgets/mask_palette.h"
#include "widgets/mask_raster.h"
#include "widgets/mask_view_text.h"

namespace wp::ui {

namespace {

constexpr double kSampleBudget = 6.0e6;  // mask evaluations per paint when zoomed out

// Cells sampled per screen pixel along each axis so that a paint stays within kSampleBudget.
int samplesFor(qint64 pixels) {
    return std::clamp(static_cast<int>(std::sqrt(kSampleBudget / std::max<qint64>(1, pixels))), 1, 4);
}

class MaskPainter {
    Q_DECLARE_TR_FUNCTIONS(wp::ui::MaskView)

public:
    MaskPainter(QPainter& p, const MaskScene& scene, const MaskGeometry& g, bool raster)
        : p_(p), s_(scene), d_(scene.data), c_(scene.palette.colors()), g_(g), raster_(raster) {}

    void paint(QPoint scroll);

private:
    void paintSingle(QPoint scroll);
    void paintMultiples(QPoint scroll);
    void paintCache(QPoint scroll);
    void paintTitle(const QString& text);
    void paintLayerGrid(int layer, QPointF origin, double ppc, const QRect& clip, int samples, bool thin);
    void paintWindowEdge(const wp::MaskSpec& spec, QPointF origin, double ppc, const QRect& clip, bool thin);
    // The tokens of columns [c0, c1) written upwards above the grid at `origin`.
    void paintColumnTokens(QPointF origin, int c0, int c1, const QFontMetrics& fm);

    QPainter& p_;
    const MaskScene& s_;
    const MaskViewData& d_;
    const MaskColors& c_;
    const MaskGeometry& g_;
    const bool raster_;
};

void MaskPainter::paint(QPoint scroll) {
    p_.fillRect(QRect(QPoint(0, 0), g_.view), c_.background);
    p_.setFont(s_.font);
    if (d_.positions() == 0 || d_.layers.empty()) {
        p_.setPen(c_.text);
        p_.drawText(QRect(QPoint(0, 0), g_.view), Qt::AlignCenter | Qt::TextWordWrap,
                    tr("Nothing to show yet: send a message to see what each layer attends to."));
        return;
    }
    switch (g_.layout) {
        case MaskLayout::Single: paintSingle(scroll); break;
        case MaskLayout::Multiples: paintMultiples(scroll); break;
        case MaskLayout::CacheRows: paintCache(scroll); break;
    }
}

void MaskPainter::paintTitle(const QString& text) {
    QPainter& p = p_;
    const QFontMetrics fm = p.fontMetrics();
    struct Item {
        QColor color;
        QString text;
    };
    std::vector<Item> items;
    bool gradient = false;
    if (s_.mode == MaskView::Mode::Attention) {
        gradient = true;
    } else if (s_.mode == MaskView::Mode::Cache) {
        items = {{c_.global, tr("held, global")}, {c_.sliding, tr("held, sliding")}, {c_.background, tr("not held")}};
    } else {
        items = {{c_.global, tr("global")}, {c_.sliding, tr("sliding")}, {c_.background, tr("masked")}};
    }
    const int sw = fm.height() - 4;
    const int y = (g_.titleH - sw) / 2;
    int x = g_.view.width() - 8;
    p.save();
    p.setRenderHint(QPainter::Antialiasing, false);
    if (gradient) {
        const int kindIdx = d_.layers[std::clamp(s_.layer, 0, int(d_.layers.size()) - 1)].window > 0 ? 1 : 0;
        const QString hi = tr("1"), lo = s_.logScale ? tr("p \u2264 10\u207b\u2074") : tr("p = 0");
        x -= fm.horizontalAdvance(hi);
        p.setPen(c_.text);
        p.drawText(QRect(x, 0, fm.horizontalAdvance(hi), g_.titleH), Qt::AlignVCenter, hi);
        const int gw = 96;
        x -= gw + 4;
        const QRgb* heat = s_.palette.heat(kindIdx);
        for (int i = 0; i < gw; ++i) {
            const double t = double(i) / (gw - 1);  // sqrt(p) or log p, the colour scale
            p.fillRect(QRect(x + i, y, 1, sw), QColor(heat[static_cast<int>(t * (MaskPalette::kHeatSteps - 1))]));
        }
        p.setPen(c_.frame);
        p.drawRect(QRect(x, y, gw - 1, sw - 1));
        x -= fm.horizontalAdvance(lo) + 4;
        p.setPen(c_.text);
        p.drawText(QRect(x, 0, fm.horizontalAdvance(lo), g_.titleH), Qt::AlignVCenter, lo);
        const QString masked = tr("masked");
        x -= fm.horizontalAdvance(masked) + sw + 18;
        p.fillRect(QRect(x, y, sw, sw), c_.masked);
        p.drawText(QRect(x + sw + 4, 0, fm.horizontalAdvance(masked), g_.titleH), Qt::AlignVCenter, masked);
    } else {
        for (auto it = items.rbegin(); it != items.rend(); ++it) {
            const int tw = fm.horizontalAdvance(it->text);
            x -= tw;
            p.setPen(c_.text);
            p.drawText(QRect(x, 0, tw, g_.titleH), Qt::AlignVCenter, it->text);
            x -= sw + 4;
            p.fillRect(QRect(x, y, sw, sw), it->color);
            p.setPen(c_.frame);
            p.drawRect(QRect(x, y, sw - 1, sw - 1));
            x -= 14;
        }
    }
    QFont bold = p.font();
    bold.setBold(true);
    p.setFont(bold);
    p.setPen(c_.text);
    const QRect textRect(8, 0, std::max(0, x - 16), g_.titleH);
    p.drawText(textRect, Qt::AlignVCenter | Qt::AlignLeft,
               QFontMetrics(bold).elidedText(text, Qt::ElideRight, textRect.width()));
    p.restore();
}

void MaskPainter::paintLayerGrid(int layer, QPointF origin, double ppc, const QRect& clip, int samples, bool thin) {
    QPainter& p = p_;
    const int T = d_.positions();
    const MaskSpec spec = d_.layers[layer];
    const Grid grid{origin, ppc, ppc, T, T, clip, samples};
    p.save();
    p.setClipRect(clip, Qt::IntersectClip);
    p.setRenderHint(QPainter::Antialiasing, false);
    p.setRenderHint(QPainter::SmoothPixmapTransform, false);

    const LayerCells cells{layer, s_.mode != MaskView::Mode::Mask, s_.head, s_.logScale};
    s_.raster.paintLayer(p, grid, raster_, d_, s_.palette, cells);

    // Gaps between cells large enough to tell apart.
    int r0, r1, c0, c1;
    if (ppc >= 6 && visibleCells(grid, r0, r1, c0, c1)) {
        QPen pen(c_.background, 1);
        pen.setCosmetic(true);
        p.setPen(pen);
        const double top = origin.y() + r0 * ppc, bottom = origin.y() + r1 * ppc;
        const double left = origin.x() + c0 * ppc, right = origin.x() + c1 * ppc;
        for (int c = c0; c <= c1; ++c) p.drawLine(QLineF(origin.x() + c * ppc, top, origin.x() + c * ppc, bottom));
        for (int r = r0; r <= r1; ++r) p.drawLine(QLineF(left, origin.y() + r * ppc, right, origin.y() + r * ppc));
    }
    paintWindowEdge(spec, origin, ppc, clip, thin);
    p.restore();
}

// The sliding window's edge: where a row turns from "outside the window" to "allowed", found by
// asking the mask itself (row by row over the visible columns).
void MaskPainter::paintWindowEdge(const wp::MaskSpec& spec, QPointF origin, double ppc, const QRect& clip, bool thin) {
    if (spec.window <= 0) return;
    QPainter& p = p_;
    const int T = d_.positions();
    const Grid grid{origin, ppc, ppc, T, T, clip, 1};
    int r0, r1, c0, c1;
    if (!visibleCells(grid, r0, r1, c0, c1)) return;
    QPen pen(c_.edge, thin ? 1 : 2);
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

void MaskPainter::paintColumnTokens(QPointF origin, int c0, int c1, const QFontMetrics& fm) {
    const MaskGeometry& g = g_;
    const int len = g.top - g.titleH - 10;
    for (int c = c0; c < c1; ++c) {
        p_.save();
        p_.translate(origin.x() + c * g.ppc + g.ppc / 2, g.top - 6);
        p_.rotate(-90);
        p_.drawText(QRectF(0, -g.ppc / 2, len, g.ppc), Qt::AlignLeft | Qt::AlignVCenter,
                    fm.elidedText(MaskViewText::visibleToken(d_.tokens[c]), Qt::ElideRight, len));
        p_.restore();
    }
}

void MaskPainter::paintSingle(QPoint s) {
    QPainter& p = p_;
    const MaskGeometry& g = g_;
    const int T = d_.positions();
    const int l = s_.layer;
    const MaskSpec spec = d_.layers[l];
    const QPointF o(g.area.left() - s.x(), g.area.top() - s.y());
    const QFontMetrics fm = p.fontMetrics();

    QString title = MaskViewText::layerCaption(l, spec);
    if (s_.mode == MaskView::Mode::Mask)
        title += tr(" \u2014 attention mask \u00b7 %1 positions").arg(T);
    else
        title += tr(" \u2014 attention, %1").arg(s_.head < 0 && d_.heads > 1 ? tr("average of %1 heads").arg(d_.heads)
                                                 : tr("head %1 of %2").arg(std::max(s_.head, 0)).arg(d_.heads));
    paintTitle(title);

    paintLayerGrid(l, o, g.ppc, g.area, samplesFor(qint64(g.area.width()) * g.area.height()), false);

    int r0, r1, c0, c1;
    const Grid grid{o, g.ppc, g.ppc, T, T, g.area, 1};
    if (!visibleCells(grid, r0, r1, c0, c1)) return;

    if (s_.mode == MaskView::Mode::Attention && !d_.hasAttention(l)) {
        const QString msg = tr("No attention was recorded for %1.").arg(MaskViewText::layerCaption(l, spec));
        const QRect visible = QRectF(o.x() + c0 * g.ppc, o.y() + r0 * g.ppc, (c1 - c0) * g.ppc, (r1 - r0) * g.ppc)
                                  .toAlignedRect() & g.area;
        QRect box(0, 0, fm.horizontalAdvance(msg) + 32, fm.height() * 2 + 8);
        box.moveCenter(visible.center());
        p.fillRect(box, c_.background);
        p.setPen(c_.frame);
        p.drawRect(box.adjusted(0, 0, -1, -1));
        p.setPen(c_.text);
        p.drawText(box, Qt::AlignCenter, msg);
    }

    // Axes: token pieces when cells are large enough to read, else position ticks.
    p.save();
    p.setPen(c_.text);
    const QRect leftAxis(0, g.area.top(), g.left, g.area.height());
    // Position numbers may reach into the corner; token labels stay above their column.
    const int reach = g.labels ? 0 : std::min(g.left, 24);
    const QRect topAxis(g.area.left() - reach, g.titleH, g.area.width() + reach, g.top - g.titleH);
    if (g.labels) {
        p.setClipRect(leftAxis);
        for (int q = r0; q < r1; ++q) {
            const QRectF r(4, o.y() + q * g.ppc, g.left - 10, g.ppc);
            p.drawText(r, Qt::AlignRight | Qt::AlignVCenter,
                       fm.elidedText(MaskViewText::visibleToken(d_.tokens[q]), Qt::ElideRight,
                                     static_cast<int>(r.width())));
        }
        p.setClipRect(topAxis);
        paintColumnTokens(o, c0, c1, fm);
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
        p.setPen(mixColor(c_.background, c_.text, 0.6));
        const QRect corner(2, g.titleH, g.left - 4, g.top - g.titleH);
        p.drawText(corner, Qt::AlignLeft | Qt::AlignBottom | Qt::TextWordWrap, tr("rows: query\ncolumns: key"));
    }
    p.restore();
}

void MaskPainter::paintMultiples(QPoint s) {
    QPainter& p = p_;
    const MaskGeometry& g = g_;
    const int L = static_cast<int>(d_.layers.size());
    QString title = tr("All %1 layers \u2014 %2 \u00b7 click one to enlarge it")
                        .arg(L)
                        .arg(s_.mode == MaskView::Mode::Mask ? tr("attention mask")
                             : s_.head < 0 && d_.heads > 1   ? tr("attention, average of %1 heads").arg(d_.heads)
                                                             : tr("attention, head %1").arg(std::max(s_.head, 0)));
    paintTitle(title);

    qint64 pixels = 0;
    for (int l = 0; l < L; ++l) {
        const QRect visible = g.thumbRect(s, l) & g.area;
        pixels += qint64(visible.width()) * visible.height();
    }
    const int samples = samplesFor(pixels);

    p.save();
    p.setClipRect(g.area);
    for (int l = 0; l < L; ++l) {
        const QRect t = g.thumbRect(s, l);
        const QRect withCaption = t.adjusted(0, -g.captionH, 0, 0);
        if (!withCaption.intersects(g.area)) continue;
        const MaskSpec& spec = d_.layers[l];
        p.setPen(c_.text);
        QFont f = s_.font;
        f.setBold(l == s_.layer);
        p.setFont(f);
        p.drawText(QRect(t.left(), t.top() - g.captionH, t.width(), g.captionH - 2), Qt::AlignLeft | Qt::AlignBottom,
                   QFontMetrics(f).elidedText(MaskViewText::layerCaption(l, spec), Qt::ElideRight, t.width()));
        p.setFont(s_.font);
        paintLayerGrid(l, t.topLeft(), g.ppc, t & g.area, samples, true);
        if (s_.mode == MaskView::Mode::Attention && !d_.hasAttention(l)) {
            p.setPen(c_.text);
            p.drawText(t, Qt::AlignCenter | Qt::TextWordWrap, tr("not recorded"));
        }
        QPen frame(l == s_.layer ? s_.highlight : c_.frame, l == s_.layer ? 2 : 1);
        p.setPen(frame);
        p.setBrush(Qt::NoBrush);
        p.drawRect(QRectF(t).adjusted(-1.5, -1.5, 0.5, 0.5));
    }
    p.restore();
}

void MaskPainter::paintCache(QPoint s) {
    QPainter& p = p_;
    const MaskGeometry& g = g_;
    const int L = static_cast<int>(d_.layers.size());
    const int W = g.extent.cacheWidth;
    const QFontMetrics fm = p.fontMetrics();
    if (d_.cacheSteps.empty() || W == 0) {
        paintTitle(tr("KV cache"));
        p.setPen(c_.text);
        p.drawText(QRect(QPoint(0, g.titleH), g.view), Qt::AlignCenter, tr("No cache steps were recorded."));
        return;
    }
    const int stepIndex = s_.step;
    const auto& step = d_.cacheSteps[stepIndex];
    qint64 total = 0;
    for (qint64 b : step.bytes) total += b;
    paintTitle(tr("KV cache %1 \u00b7 %2 positions \u00b7 %3 in total")
                   .arg(stepIndex == 0 ? tr("after the prompt") : tr("after generated token %1").arg(stepIndex))
                   .arg(step.length)
                   .arg(MaskViewText::bytes(total)));

    const QPointF o(g.area.left() - s.x(), g.area.top() - s.y());
    const Grid grid{o, g.ppc, g.rowH, L, W, g.area, 1};
    const QRgb on[2] = {c_.global.rgb(), c_.sliding.rgb()};
    auto kindOf = [&](int l) { return d_.layers[l].window > 0 ? 1 : 0; };
    p.save();
    p.setClipRect(g.area);
    s_.raster.paintCacheRows(p, grid, raster_, d_, s_.held, s_.palette);
    int r0, r1, c0, c1;
    const bool any = visibleCells(grid, r0, r1, c0, c1);
    if (any) {
        QPen gap(c_.background, 1);
        gap.setCosmetic(true);
        p.setPen(gap);
        const double left = o.x() + c0 * g.ppc, right = o.x() + c1 * g.ppc;
        for (int r = r0; r <= r1; ++r) p.drawLine(QLineF(left, o.y() + r * g.rowH, right, o.y() + r * g.rowH));
        if (g.ppc >= 6)
            for (int c = c0; c <= c1; ++c)
                p.drawLine(QLineF(o.x() + c * g.ppc, o.y() + r0 * g.rowH, o.x() + c * g.ppc, o.y() + r1 * g.rowH));
        // Where this step ends.
        QPen end(c_.text, 1, Qt::DashLine);
        end.setCosmetic(true);
        p.setPen(end);
        const double x = o.x() + step.length * g.ppc;
        p.drawLine(QLineF(x, o.y() + r0 * g.rowH, x, o.y() + r1 * g.rowH));
    }
    p.restore();
    if (!any) return;

    p.save();
    p.setPen(c_.text);
    p.setClipRect(QRect(0, g.area.top(), g.left, g.area.height()));
    for (int l = r0; l < r1; ++l) {
        QString label = MaskViewText::layerCaption(l, d_.layers[l]);
        if (l < static_cast<int>(step.bytes.size()))
            label += QStringLiteral(" \u00b7 ") + MaskViewText::bytes(step.bytes[l]);
        const QRectF r(8, o.y() + l * g.rowH, g.left - 14, g.rowH);
        p.fillRect(QRectF(2, r.top() + 3, 3, g.rowH - 6), QColor(on[kindOf(l)]));
        p.drawText(r, Qt::AlignLeft | Qt::AlignVCenter,
                   fm.elidedText(label, Qt::ElideRight, static_cast<int>(r.width())));
    }
    const int reach = g.labels ? 0 : 24;
    const QRect topAxis(g.area.left() - reach, g.titleH, g.area.width() + reach, g.top - g.titleH);
    p.setClipRect(topAxis);
    if (g.labels) {
        paintColumnTokens(o, c0, std::min(c1, d_.positions()), fm);
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
    p.setPen(mixColor(c_.background, c_.text, 0.6));
    p.drawText(QRect(8, g.titleH, g.left - 12 - reach, g.top - g.titleH), Qt::AlignLeft | Qt::AlignBottom,
               tr("layer \u00b7 KV bytes  /  position \u2192"));
    p.restore();
}

}  // namespace

void paintMaskView(QPainter& p, const MaskScene& scene, const MaskGeometry& g, QPoint scroll, bool raster) {
    MaskPainter(p, scene, g, raster).paint(scroll);
}

}  // namespace wp::ui
