// Repaint time of MaskView for a 4,096-token conversation (26 layers like Gemma2-2b, sliding layers
// with a 512 window, 2 heads recorded on 2 layers), widget 1000x800, offscreen. Prints the first
// (cold) paint and the median of 20 repaints per case; the target is < 50 ms. Not a test.
//   wp_maskview_bench [repaints]
#include <QApplication>
#include <QElapsedTimer>
#include <QScrollBar>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <vector>

#include "engine/mask_view_data.h"
#include "widgets/mask_view.h"

using wp::ui::MaskView;
using wp::ui::MaskViewData;

namespace {

MaskViewData makeData(int T, int layers, int window, int heads, int recorded) {
    MaskViewData d;
    for (int i = 0; i < T; ++i) d.tokens << (i % 9 == 0 ? QStringLiteral("\n") : QStringLiteral(" w%1").arg(i));
    for (int l = 0; l < layers; ++l) d.layers.push_back(wp::MaskSpec{true, l % 2 == 0 ? window : 0});
    d.heads = heads;
    d.attention.resize(layers);
    for (int l = 0; l < recorded; ++l) {
        auto& a = d.attention[l];
        a.assign(std::size_t(heads) * T * T, 0.0f);
        for (int h = 0; h < heads; ++h)
            for (int q = 0; q < T; ++q) {
                float* row = a.data() + (std::size_t(h) * T + q) * T;
                double sum = 0;
                for (int k = q; k >= 0 && d.layers[l].allows(q, k); --k) {
                    row[k] = static_cast<float>(std::exp(-(q - k) / (30.0 + 40 * h)) + (k == 0 ? 2.0 : 0.0));
                    sum += row[k];
                }
                for (int k = 0; k <= q; ++k) row[k] = static_cast<float>(row[k] / sum);
            }
    }
    // Cache steps as a hybrid cache holds them: sliding layers the last `window` positions.
    for (int len = T - 16; len <= T; ++len) {
        MaskViewData::CacheStep s;
        s.length = len;
        for (int l = 0; l < layers; ++l) {
            std::vector<std::int64_t> held;
            const int from = d.layers[l].window > 0 ? std::max(0, len - window) : 0;
            for (int p = from; p < len; ++p) held.push_back(p);
            s.bytes.push_back(qint64(held.size()) * 2 * 4 * 256 * 4);
            s.held.push_back(std::move(held));
        }
        d.cacheSteps.push_back(std::move(s));
    }
    return d;
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.empty() ? 0 : v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
    qputenv("QT_QPA_PLATFORM", qgetenv("QT_QPA_PLATFORM").isEmpty() ? QByteArray("offscreen") : qgetenv("QT_QPA_PLATFORM"));
    QApplication app(argc, argv);
    const int repaints = argc > 1 ? std::max(1, std::atoi(argv[1])) : 20;
    const int T = 4096;

    QElapsedTimer build;
    build.start();
    MaskView view;
    view.resize(1000, 800);
    view.show();
    QApplication::processEvents();
    view.setData(makeData(T, 26, 512, 2, 2));
    QApplication::processEvents();
    std::printf("data: %d tokens, 26 layers, 2 heads, attention on layers 0-1 (%.0f ms to build and set)\n", T,
                build.nsecsElapsed() / 1e6);
    std::printf("canvas %dx%d\n\n", view.canvas()->width(), view.canvas()->height());

    struct Case {
        const char* name;
        MaskView::Mode mode;
        bool multiples;
        int head;
        double zoom;  // 0: fit
        bool scroll;  // scroll 1 cell between repaints
    };
    const Case cases[] = {
        {"mask, fit", MaskView::Mode::Mask, false, -1, 0, false},
        {"mask, 1 px/cell", MaskView::Mode::Mask, false, -1, 1, false},
        {"mask, 1 px/cell, scrolling", MaskView::Mode::Mask, false, -1, 1, true},
        {"mask, 8 px/cell", MaskView::Mode::Mask, false, -1, 8, false},
        {"mask, 8 px/cell, scrolling", MaskView::Mode::Mask, false, -1, 8, true},
        {"attention head 0, fit", MaskView::Mode::Attention, false, 0, 0, false},
        {"attention head 0, 1 px/cell", MaskView::Mode::Attention, false, 0, 1, false},
        {"attention head 0, 8 px/cell", MaskView::Mode::Attention, false, 0, 8, false},
        {"attention average, fit", MaskView::Mode::Attention, false, -1, 0, false},
        {"attention average, 1 px/cell", MaskView::Mode::Attention, false, -1, 1, false},
        {"attention average, 8 px/cell", MaskView::Mode::Attention, false, -1, 8, false},
        {"mask, 26 small multiples, fit", MaskView::Mode::Mask, true, -1, 0, false},
        {"attention, 26 small multiples", MaskView::Mode::Attention, true, -1, 0, false},
        {"kv cache, fit", MaskView::Mode::Cache, false, -1, 0, false},
        {"kv cache, 8 px/position", MaskView::Mode::Cache, false, -1, 8, false},
    };
    std::printf("%-34s %9s %10s %11s %9s %16s\n", "case", "px/cell", "first ms", "median ms", "max ms",
                "median wall ms");
    for (const Case& c : cases) {
        view.setMode(c.mode);
        view.setSmallMultiples(c.multiples);
        view.setLayer(0);
        view.setHead(c.head);
        view.fitToView();
        if (c.zoom > 0) {
            view.setZoom(c.zoom);
            view.scrollToCell(2000, 1800);
        }
        QApplication::processEvents();  // paints once: the first paint after a change (cold caches)
        const double first = view.lastPaintMs();
        std::vector<double> ms, wall;
        QScrollBar* bar = view.canvas()->parentWidget()->findChild<QScrollBar*>();
        for (int i = 0; i < repaints; ++i) {
            if (c.scroll && bar) bar->setValue(bar->value() + static_cast<int>(std::ceil(c.zoom)));
            QElapsedTimer t;
            t.start();
            view.canvas()->repaint();  // synchronous: paintEvent and the backing store
            wall.push_back(t.nsecsElapsed() / 1e6);
            ms.push_back(view.lastPaintMs());
        }
        std::printf("%-34s %9.3f %10.2f %11.2f %9.2f %16.2f\n", c.name, view.zoom(), first, median(ms),
                    *std::max_element(ms.begin(), ms.end()), median(wall));
    }
    return 0;
}
