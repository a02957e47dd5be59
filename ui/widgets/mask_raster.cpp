#include "widgets/mask_raster.h"

#include <QColor>
#include <QPainter>
#include <algorithm>
#include <cmath>

#include "widgets/mask_palette.h"

namespace wp::ui {

namespace {

constexpr qint64 kMaxVectorCells = 250000;  // vector output: one rectangle run per row above this
constexpr std::size_t kMaxPooledFloats = std::size_t(40) << 20;

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

// Paints the visible part of a grid (see the header for the three ways).
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

void HeldPositions::rebuild(const MaskViewData& data, int step, int width) {
    const int L = static_cast<int>(data.layers.size());
    const int W = width;
    width_ = W;
    bits_.assign(static_cast<std::size_t>(L) * W, 0);
    prefix_.assign(static_cast<std::size_t>(L) * (W + 1), 0);
    if (data.cacheSteps.empty()) return;
    const auto& s = data.cacheSteps[std::clamp(step, 0, static_cast<int>(data.cacheSteps.size()) - 1)];
    for (int l = 0; l < L && l < static_cast<int>(s.held.size()); ++l) {
        for (std::int64_t pos : s.held[l])
            if (pos >= 0 && pos < W) bits_[static_cast<std::size_t>(l) * W + pos] = 1;
        int* pre = prefix_.data() + static_cast<std::size_t>(l) * (W + 1);
        for (int c = 0; c < W; ++c) pre[c + 1] = pre[c] + bits_[static_cast<std::size_t>(l) * W + c];
    }
}

void MaskRaster::clear() {
    pooled_.clear();
    pooledFloats_ = 0;
}

void MaskRaster::paintLayer(QPainter& p, const Grid& grid, bool raster, const MaskViewData& data,
                            const MaskPalette& palette, const LayerCells& cells) {
    const int T = data.positions();
    const int layer = cells.layer;
    const MaskSpec spec = data.layers[layer];
    const int kindIdx = spec.window > 0 ? 1 : 0;
    const MaskColors& colors = palette.colors();
    const QRgb bg = colors.background.rgb();
    constexpr int kFractionSteps = MaskPalette::kFractionSteps;

    if (!cells.attention) {
        const QRgb on = kindIdx ? colors.sliding.rgb() : colors.global.rgb();
        const QRgb* frac = palette.fraction(kindIdx);
        auto cell = [&](int q, int k) { return spec.allows(q, k) ? on : bg; };
        auto block = [&](const Range& r, const Range& c) {
            int n = 0;
            for (int i = 0; i < r.n; ++i)
                for (int j = 0; j < c.n; ++j) n += spec.allows(r.s[i], c.s[j]);
            const int total = r.n * c.n;
            return frac[(n * kFractionSteps + total / 2) / total];
        };
        paintGrid(p, grid, raster, scratch_, cell, block);
        return;
    }

    const bool recorded = data.hasAttention(layer);
    const QRgb* heat = palette.heat(kindIdx);
    const QRgb masked = colors.masked.rgb(), alarm = colors.alarm.rgb(), tint = heat[0];
    const std::size_t TT = T;
    const int H = data.heads;
    const int head = cells.head;
    const bool logScale = cells.logScale;
    const float* base = recorded ? data.attention[layer].data() : nullptr;
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
        if (ok) return heat[palette.heatIndex(v, logScale)];
        return v > kMaskedEpsilon ? alarm : masked;
    };
    const double ppc = grid.sx;
    const int level = ppc < 1 ? static_cast<int>(std::floor(std::log2(1.0 / ppc) + 1e-9)) : 0;
    const std::vector<float>* pool = (recorded && level > 0) ? &pooled(data, layer, head, level) : nullptr;
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
        return mx > 0 ? heat[palette.heatIndex(mx, logScale)] : base2(n, total);
    };
    paintGrid(p, grid, raster, scratch_, cell, block);
}

void MaskRaster::paintCacheRows(QPainter& p, const Grid& grid, bool raster, const MaskViewData& data,
                                const HeldPositions& held, const MaskPalette& palette) {
    const MaskColors& colors = palette.colors();
    const QRgb bg = colors.background.rgb();
    const QRgb on[2] = {colors.global.rgb(), colors.sliding.rgb()};
    constexpr int kFractionSteps = MaskPalette::kFractionSteps;
    auto kindOf = [&](int l) { return data.layers[l].window > 0 ? 1 : 0; };
    auto cell = [&](int l, int c) { return held.held(l, c) ? on[kindOf(l)] : bg; };
    auto block = [&](const Range& r, const Range& c) {
        const int l = r.a;
        const int n = held.count(l, c.a, c.b), total = c.b - c.a;
        return palette.fraction(kindOf(l))[(n * kFractionSteps + total / 2) / total];
    };
    paintGrid(p, grid, raster, scratch_, cell, block);
}

const std::vector<float>& MaskRaster::pooled(const MaskViewData& data, int layer, int head, int level) {
    const auto key = std::make_tuple(layer, head, level);
    if (auto it = pooled_.find(key); it != pooled_.end()) return it->second;
    const int T = data.positions();
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
        const float* a = data.attention[layer].data();
        const int H = data.heads;
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

}  // namespace wp::ui
