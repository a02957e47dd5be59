// MaskView: hover texts agree with wp::MaskSpec cell by cell; the rendered pixels of every mode
// (mask single layer and small multiples, attention, KV cache, dark palette) follow the data;
// SVG export; the reference attention of tiny-gemma2; 4,096 tokens painted without per-cell
// allocations. Screenshots land in WP_SCREENSHOT_DIR/maskview-*.png.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <QApplication>
#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QLabel>
#include <QScrollBar>
#include <QPainter>
#include <QSignalSpy>
#include <QSvgRenderer>
#include <QTest>
#include <QWheelEvent>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <memory>

#include "wp/cache/kv_cache.h"
#include "wp/model/model_config.h"
#include "wp/tokenizer/tokenizer.h"
#include "engine/mask_view_data.h"
#include "widgets/mask_view.h"

// ---- Counting allocations (glibc): every malloc of the process while g_counting is set. ----------
#if defined(__GLIBC__) && !defined(__SANITIZE_ADDRESS__)
#define WP_COUNT_ALLOCS 1
extern "C" {
void* __libc_malloc(size_t);
void* __libc_calloc(size_t, size_t);
void* __libc_realloc(void*, size_t);
void __libc_free(void*);
}
namespace {
std::atomic<bool> g_counting{false};
std::atomic<long> g_allocs{0};
}  // namespace
extern "C" void* malloc(size_t n) {
    if (g_counting.load(std::memory_order_relaxed)) g_allocs.fetch_add(1, std::memory_order_relaxed);
    return __libc_malloc(n);
}
extern "C" void* calloc(size_t a, size_t b) {
    if (g_counting.load(std::memory_order_relaxed)) g_allocs.fetch_add(1, std::memory_order_relaxed);
    return __libc_calloc(a, b);
}
extern "C" void* realloc(void* p, size_t n) {
    if (g_counting.load(std::memory_order_relaxed)) g_allocs.fetch_add(1, std::memory_order_relaxed);
    return __libc_realloc(p, n);
}
extern "C" void free(void* p) { __libc_free(p); }
#endif

namespace {

using wp::MaskReason;
using wp::MaskSpec;
using wp::ui::MaskView;
using wp::ui::MaskViewData;

QString sharedDir() {
    const QByteArray env = qgetenv("WP_SHARED_DIR");
    return env.isEmpty() ? QStringLiteral(WP_SHARED_DIR) : QString::fromUtf8(env);
}

QString screenshotPath(const QString& name, const QString& ext = QStringLiteral("png")) {
    QDir().mkpath(QStringLiteral(WP_SCREENSHOT_DIR));
    return QStringLiteral(WP_SCREENSHOT_DIR "/") + name + "." + ext;
}

std::vector<MaskSpec> gemma2Layers(int layers, int window) {
    std::vector<MaskSpec> out;
    for (int l = 0; l < layers; ++l) out.push_back(MaskSpec{true, l % 2 == 0 ? window : 0});
    return out;
}

QStringList sampleTokens(int T) {
    static const char* words[] = {"<bos>", "In", " the", " beginning", " God", " created", " the", " heaven",
                                  " and", " the", " earth", ".", "\n", "And", " the", "\tearth", " was"};
    QStringList out;
    for (int i = 0; i < T; ++i) out << QString::fromUtf8(words[i % (sizeof(words) / sizeof(words[0]))]);
    return out;
}

// Deterministic, row-normalised probabilities over the allowed keys: a recency decay, an attention
// sink at position 0 and some texture, different per head and layer.
std::vector<float> syntheticAttention(const MaskSpec& spec, int layer, int heads, int T) {
    std::vector<float> a(static_cast<std::size_t>(heads) * T * T, 0.0f);
    for (int h = 0; h < heads; ++h)
        for (int q = 0; q < T; ++q) {
            float* row = a.data() + (static_cast<std::size_t>(h) * T + q) * T;
            double sum = 0;
            for (int k = 0; k < T; ++k) {
                if (!spec.allows(q, k)) continue;
                const double w = std::exp(-(0.35 + 0.3 * h) * (q - k)) + (k == 0 ? 0.8 + 0.4 * h : 0.0) +
                                 ((q * 7 + k * 13 + h * 5 + layer * 3) % 11) / 25.0;
                row[k] = static_cast<float>(w);
                sum += w;
            }
            for (int k = 0; k < T; ++k) row[k] = static_cast<float>(row[k] / sum);
        }
    return a;
}

// Cache steps from the engine's own hybrid cache: the prompt, then one token at a time.
std::vector<MaskViewData::CacheStep> hybridCacheSteps(const std::vector<MaskSpec>& layers, int prompt, int total) {
    wp::ModelConfig cfg;
    cfg.num_layers = static_cast<int>(layers.size());
    cfg.num_heads = 2;
    cfg.num_kv_heads = 1;
    cfg.head_dim = 4;
    cfg.layer_masks = layers;
    wp::KvCache cache(cfg, wp::CacheKind::Hybrid, 0);
    std::vector<float> kv(static_cast<std::size_t>(total) * cfg.kv_dim(), 0.5f);
    std::vector<MaskViewData::CacheStep> steps;
    auto feed = [&](int count) {
        for (int l = 0; l < cfg.num_layers; ++l) cache.store(l, kv.data(), kv.data(), count);
        cache.advance(count);
        steps.push_back(MaskViewData::captureCache(cache));
    };
    feed(prompt);
    for (int i = prompt; i < total; ++i) feed(1);
    return steps;
}

MaskViewData gemma2Data(int T = 40, int heads = 2) {
    MaskViewData d;
    d.tokens = sampleTokens(T);
    d.layers = gemma2Layers(4, 8);
    d.heads = heads;
    for (int l = 0; l < 4; ++l) d.attention.push_back(syntheticAttention(d.layers[l], l, heads, T));
    d.cacheSteps = hybridCacheSteps(d.layers, 30, T);
    return d;
}

QPoint centre(const QRectF& r) { return QPoint(static_cast<int>(std::floor(r.center().x())), static_cast<int>(std::floor(r.center().y()))); }

double intensity(const QColor& c, const QColor& bg) {
    const double dr = c.red() - bg.red(), dg = c.green() - bg.green(), db = c.blue() - bg.blue();
    return std::sqrt(dr * dr + dg * dg + db * db);
}

std::string name(const QColor& c) { return c.name().toStdString(); }

struct Shown {
    MaskView view;
    explicit Shown(QSize size = QSize(980, 900)) {
        view.resize(size);
        view.show();
        QApplication::processEvents();
    }
    void settle() {
        QApplication::processEvents();
        view.fitToView();
        QApplication::processEvents();
    }
    // The exported view (checked pixel by pixel) and, for people, the whole widget.
    QImage exportAndLoad(const QString& shot, bool widgetToo = true) {
        QApplication::processEvents();  // pending layout changes (the step slider comes and goes)
        const QString path = screenshotPath(shot);
        EXPECT_TRUE(view.exportPng(path)) << path.toStdString();
        if (widgetToo) view.grab().save(screenshotPath(shot + "-widget"));
        QImage img(path);
        EXPECT_FALSE(img.isNull());
        return img.convertToFormat(QImage::Format_RGB32);
    }
};

TEST(MaskView, VisibleTokenShowsWhitespace) {
    EXPECT_EQ(MaskView::visibleToken(QStringLiteral(" a\tb\n")), QStringLiteral("\u00b7a\u2192b\u21b5"));
}

TEST(MaskView, DescribeCellSaysWhyExactlyWhereMaskSpecDoes) {
    MaskView view;
    view.setData(gemma2Data());
    const int T = 40;
    int counts[3] = {0, 0, 0};
    for (int l = 0; l < 4; ++l) {
        const MaskSpec spec = gemma2Layers(4, 8)[l];
        for (int q = 0; q < T; ++q)
            for (int k = 0; k < T; ++k) {
                const QString text = view.describeCell(l, q, k);
                const MaskReason why = spec.reason(q, k);
                ++counts[static_cast<int>(why)];
                SCOPED_TRACE(QStringLiteral("L%1 q%2 k%3: %4").arg(l).arg(q).arg(k).arg(text).toStdString());
                EXPECT_EQ(text.contains(QLatin1String("allowed")), why == MaskReason::Allowed);
                EXPECT_EQ(text.contains(QLatin1String("causal: key is in the future")), why == MaskReason::Future);
                EXPECT_EQ(text.contains(QLatin1String("outside the sliding window of 8")),
                          why == MaskReason::OutsideWindow);
                EXPECT_TRUE(text.contains(QStringLiteral("query %1 ").arg(q)));
                EXPECT_TRUE(text.contains(QStringLiteral("key %1 ").arg(k)));
            }
    }
    EXPECT_GT(counts[0], 100);
    EXPECT_GT(counts[1], 100);
    EXPECT_GT(counts[2], 100);
    // Token pieces with their whitespace made visible.
    EXPECT_TRUE(view.describeCell(1, 2, 1).contains(QStringLiteral("\u201c\u00b7the\u201d")));
    EXPECT_TRUE(view.describeCell(1, 12, 12).contains(QStringLiteral("\u201c\u21b5\u201d")));
    EXPECT_TRUE(view.describeCell(9, 0, 0).isEmpty());
    EXPECT_TRUE(view.describeCell(0, 40, 0).isEmpty());
}

void checkMaskPixels(MaskView& view, const QImage& img, int layer, int T) {
    const MaskSpec spec = view.data().layers[layer];
    const auto c = view.colors();
    const QColor on = spec.window > 0 ? c.sliding : c.global;
    int checked = 0;
    for (int q = 0; q < T; ++q)
        for (int k = 0; k < T; ++k) {
            const QRectF r = view.cellRect(layer, q, k);
            ASSERT_FALSE(r.isEmpty()) << "L" << layer << " cell " << q << "," << k << " not shown";
            const QColor px = img.pixelColor(centre(r));
            const QColor want = spec.allows(q, k) ? on : c.background;
            ASSERT_EQ(name(px), name(want)) << "L" << layer << " q" << q << " k" << k;
            ++checked;
        }
    EXPECT_EQ(checked, T * T);
}

TEST(MaskView, MaskSingleLayerPixelsFollowMaskSpec) {
    Shown s;
    s.view.setData(gemma2Data());
    s.view.setMode(MaskView::Mode::Mask);
    s.settle();
    const auto c = s.view.colors();
    ASSERT_NE(name(c.sliding), name(c.global));
    ASSERT_NE(name(c.sliding), name(c.background));
    ASSERT_NE(name(c.global), name(c.background));

    s.view.setLayer(0);
    EXPECT_GE(s.view.zoom(), 12) << "40 tokens should fit with readable cells";
    QImage img = s.exportAndLoad(QStringLiteral("maskview-mask-sliding"));
    checkMaskPixels(s.view, img, 0, 40);

    // The window's edge is drawn between key q-8 (outside) and q-7 (inside).
    for (int q : {10, 20, 39}) {
        const QRectF inside = s.view.cellRect(0, q, q - 7);
        const int y = centre(inside).y();
        bool found = false;
        for (int dx = -2; dx <= 2 && !found; ++dx)
            found = img.pixelColor(static_cast<int>(std::lround(inside.left())) + dx, y) == c.edge;
        EXPECT_TRUE(found) << "no window edge at row " << q;
    }
    // What is on screen is what is exported.
    const QImage screen = s.view.canvas()->grab().toImage().convertToFormat(QImage::Format_RGB32);
    ASSERT_EQ(screen.size(), img.size());
    for (auto [q, k] : {std::pair{5, 5}, {20, 13}, {20, 12}, {3, 30}, {39, 0}})
        EXPECT_EQ(name(screen.pixelColor(centre(s.view.cellRect(0, q, k)))), name(img.pixelColor(centre(s.view.cellRect(0, q, k)))));

    s.view.setLayer(1);
    img = s.exportAndLoad(QStringLiteral("maskview-mask-global"));
    checkMaskPixels(s.view, img, 1, 40);
    EXPECT_TRUE(s.view.cellRect(0, 1, 1).isEmpty()) << "only the shown layer has cells";
}

TEST(MaskView, SmallMultiplesShowEveryLayerAndAClickEnlargesOne) {
    Shown s;
    s.view.setData(gemma2Data());
    s.view.setSmallMultiples(true);
    s.settle();
    const QImage img = s.exportAndLoad(QStringLiteral("maskview-mask-multiples"));
    for (int l = 0; l < 4; ++l) checkMaskPixels(s.view, img, l, 40);

    QSignalSpy spy(&s.view, &MaskView::layerChanged);
    const QRectF cell = s.view.cellRect(3, 30, 2);
    QTest::mouseClick(s.view.canvas(), Qt::LeftButton, {}, centre(cell));
    EXPECT_FALSE(s.view.smallMultiples());
    EXPECT_EQ(s.view.layer(), 3);
    ASSERT_EQ(spy.count(), 1);
    EXPECT_EQ(spy.at(0).at(0).toInt(), 3);
}

TEST(MaskView, HoverShowsTheCellDescription) {
    Shown s;
    s.view.setData(gemma2Data());
    s.settle();
    s.view.setLayer(0);
    auto* status = s.view.findChild<QLabel*>(QStringLiteral("maskStatus"));
    ASSERT_NE(status, nullptr);
    QTest::mouseMove(s.view.canvas(), centre(s.view.cellRect(0, 20, 5)));
    EXPECT_TRUE(status->text().contains(QStringLiteral("outside the sliding window of 8"))) << status->text().toStdString();
    QTest::mouseMove(s.view.canvas(), centre(s.view.cellRect(0, 4, 9)));
    EXPECT_TRUE(status->text().contains(QStringLiteral("causal"))) << status->text().toStdString();
    QTest::mouseMove(s.view.canvas(), centre(s.view.cellRect(0, 20, 15)));
    EXPECT_TRUE(status->text().contains(QStringLiteral("allowed"))) << status->text().toStdString();
}

void checkAttentionPixels(MaskView& view, const QImage& img, int layer, int head) {
    const MaskViewData& d = view.data();
    const int T = d.positions();
    const MaskSpec spec = d.layers[layer];
    const auto c = view.colors();
    auto prob = [&](int q, int k) {
        if (head >= 0) return d.attention[layer][(static_cast<std::size_t>(head) * T + q) * T + k];
        float s = 0;
        for (int h = 0; h < d.heads; ++h) s += d.attention[layer][(static_cast<std::size_t>(h) * T + q) * T + k];
        return s / d.heads;
    };
    int ordered = 0;
    for (int q = 0; q < T; ++q) {
        for (int k = 0; k < T; ++k) {
            const QColor px = img.pixelColor(centre(view.cellRect(layer, q, k)));
            if (!spec.allows(q, k)) {
                ASSERT_EQ(name(px), name(c.masked)) << "masked cell " << q << "," << k;
                continue;
            }
            ASSERT_EQ(name(px), name(view.heatColor(layer, prob(q, k)))) << "cell " << q << "," << k;
        }
        // Within the row: a clearly more probable key is drawn more intensely.
        for (int k1 = 0; k1 <= q; ++k1)
            for (int k2 = 0; k2 <= q; ++k2) {
                if (!spec.allows(q, k1) || !spec.allows(q, k2)) continue;
                if (view.logScale()) {
                    if (prob(q, k2) < 1.2e-4f || std::log10(prob(q, k1)) - std::log10(prob(q, k2)) < 0.05) continue;
                } else if (std::sqrt(prob(q, k1)) - std::sqrt(prob(q, k2)) < 0.02) {
                    continue;
                }
                const double i1 = intensity(img.pixelColor(centre(view.cellRect(layer, q, k1))), c.background);
                const double i2 = intensity(img.pixelColor(centre(view.cellRect(layer, q, k2))), c.background);
                ASSERT_GT(i1, i2) << "row " << q << ": p(" << k1 << ")=" << prob(q, k1) << " vs p(" << k2
                                  << ")=" << prob(q, k2);
                ++ordered;
            }
    }
    EXPECT_GT(ordered, 50);
}

TEST(MaskView, AttentionHeatMapFollowsTheProbabilities) {
    Shown s;
    s.view.setData(gemma2Data());
    s.view.setMode(MaskView::Mode::Attention);
    s.settle();
    s.view.setLayer(0);
    s.view.setHead(0);
    QImage img = s.exportAndLoad(QStringLiteral("maskview-attention"));
    checkAttentionPixels(s.view, img, 0, 0);
    // The most and the least probable key of a row: the first is drawn more intensely.
    const auto& a = s.view.data().attention[0];
    int best = 0, worst = 0;
    for (int k = 0; k <= 5; ++k) {
        if (a[5 * 40 + k] > a[5 * 40 + best]) best = k;
        if (a[5 * 40 + k] < a[5 * 40 + worst]) worst = k;
    }
    const float pHigh = a[5 * 40 + best], pLow = a[5 * 40 + worst];
    ASSERT_GT(pHigh, pLow * 1.5);
    EXPECT_GT(intensity(img.pixelColor(centre(s.view.cellRect(0, 5, best))), s.view.colors().background),
              intensity(img.pixelColor(centre(s.view.cellRect(0, 5, worst))), s.view.colors().background));
    EXPECT_TRUE(s.view.describeCell(0, 5, best).contains(QStringLiteral("probability %1 (head 0)").arg(pHigh, 0, 'f', 4)))
        << s.view.describeCell(0, 5, best).toStdString();

    s.view.setLayer(1);
    s.view.setHead(-1);
    img = s.exportAndLoad(QStringLiteral("maskview-attention-average"));
    checkAttentionPixels(s.view, img, 1, -1);
    EXPECT_TRUE(s.view.describeCell(1, 5, 0).contains(QStringLiteral("average of 2 heads")));

    s.view.setLogScale(true);
    img = s.exportAndLoad(QStringLiteral("maskview-attention-log"));
    checkAttentionPixels(s.view, img, 1, -1);
    EXPECT_NE(name(s.view.heatColor(1, 0.01f)), name(s.view.heatColor(1, 0.001f)));
    s.view.setLogScale(false);

    s.view.setSmallMultiples(true);
    s.settle();
    s.exportAndLoad(QStringLiteral("maskview-attention-multiples"));
}

TEST(MaskView, AttentionOnAMaskedCellIsFlaggedAndMissingLayersSaySo) {
    Shown s;
    MaskViewData d = gemma2Data();
    d.attention[0][(0 * 40 + 20) * 40 + 3] = 0.3f;  // outside layer 0's window: the data is wrong
    d.attention[3].clear();                          // layer 3 not recorded
    s.view.setData(std::move(d));
    s.view.setMode(MaskView::Mode::Attention);
    s.view.setHead(0);
    s.settle();
    s.view.setLayer(0);
    QImage img = s.exportAndLoad(QStringLiteral("maskview-attention-alarm"));
    EXPECT_EQ(name(img.pixelColor(centre(s.view.cellRect(0, 20, 3)))), name(s.view.colors().alarm));
    EXPECT_TRUE(s.view.describeCell(0, 20, 3).contains(QStringLiteral("warning")));
    EXPECT_FALSE(s.view.describeCell(0, 20, 4).contains(QStringLiteral("warning")));

    s.view.setLayer(3);
    img = s.exportAndLoad(QStringLiteral("maskview-attention-unrecorded"));
    EXPECT_TRUE(s.view.describeCell(3, 39, 0).contains(QStringLiteral("no attention recorded")));
    EXPECT_EQ(name(img.pixelColor(centre(s.view.cellRect(3, 39, 0)))), name(s.view.heatColor(3, 0)));
    EXPECT_EQ(name(img.pixelColor(centre(s.view.cellRect(3, 0, 39)))), name(s.view.colors().masked));
}

TEST(MaskView, CacheRowsShowWhatTheHybridCacheHolds) {
    Shown s;
    s.view.setData(gemma2Data());
    s.view.setMode(MaskView::Mode::Cache);
    s.settle();
    const auto& steps = s.view.data().cacheSteps;
    ASSERT_EQ(steps.size(), 11u);
    const auto c = s.view.colors();
    for (int step : {10, 0}) {
        s.view.setCacheStep(step);
        const QImage img = s.exportAndLoad(step == 10 ? QStringLiteral("maskview-cache") : QStringLiteral("maskview-cache-step0"));
        const auto& st = steps[step];
        int held = 0;
        for (int l = 0; l < 4; ++l) {
            const bool sliding = l % 2 == 0;
            for (int pos = 0; pos < 40; ++pos) {
                const QRectF r = s.view.cacheCellRect(l, pos);
                ASSERT_FALSE(r.isEmpty());
                const bool isHeld = std::count(st.held[l].begin(), st.held[l].end(), pos) > 0;
                held += isHeld;
                // The engine's cache: sliding layers keep the last 8 positions, global ones all.
                EXPECT_EQ(isHeld, pos < st.length && (!sliding || pos >= st.length - 8)) << l << " " << pos;
                const QColor want = isHeld ? (sliding ? c.sliding : c.global) : c.background;
                ASSERT_EQ(name(img.pixelColor(centre(r))), name(want)) << "step " << step << " L" << l << " pos " << pos;
            }
        }
        EXPECT_GT(held, 0);
    }
    s.view.setCacheStep(10);
    EXPECT_TRUE(s.view.describeCacheCell(10, 0, 39).contains(QStringLiteral("held in the KV cache")));
    EXPECT_TRUE(s.view.describeCacheCell(10, 0, 3).contains(QStringLiteral("not held (evicted)")));
    EXPECT_TRUE(s.view.describeCacheCell(10, 0, 3).contains(QStringLiteral("outside the sliding window of 8")));
    EXPECT_TRUE(s.view.describeCacheCell(10, 1, 3).contains(QStringLiteral("held in the KV cache")));
    EXPECT_TRUE(s.view.describeCacheCell(0, 1, 35).contains(QStringLiteral("not computed yet")));
}

TEST(MaskView, ExportsSvg) {
    Shown s;
    s.view.setData(gemma2Data());
    s.settle();
    for (auto mode : {MaskView::Mode::Mask, MaskView::Mode::Attention, MaskView::Mode::Cache}) {
        s.view.setMode(mode);
        s.settle();
        const QString path = screenshotPath(QStringLiteral("maskview-mode%1").arg(static_cast<int>(mode)), "svg");
        QFile::remove(path);
        ASSERT_TRUE(s.view.exportSvg(path));
        QFile f(path);
        ASSERT_TRUE(f.open(QIODevice::ReadOnly));
        const QByteArray svg = f.readAll();
        EXPECT_GT(svg.size(), 1000);
        EXPECT_TRUE(svg.contains("<svg"));
        // Cells are vector shapes, not one embedded bitmap.
        EXPECT_FALSE(svg.contains("<image")) << path.toStdString();
        if (mode == MaskView::Mode::Mask) {
            // Drawn back, the SVG has the same cells as the screen.
            QSvgRenderer renderer(svg);
            ASSERT_TRUE(renderer.isValid());
            QImage back(s.view.canvas()->size(), QImage::Format_RGB32);
            back.fill(Qt::white);
            QPainter p(&back);
            renderer.render(&p, QRectF(back.rect()));
            p.end();
            checkMaskPixels(s.view, back, s.view.layer(), 40);
        }
    }
    EXPECT_FALSE(s.view.exportSvg(QStringLiteral("/nonexistent-dir/x.svg")));
}

TEST(MaskView, DarkPaletteKeepsMaskedCellsOnTheBackground) {
    Shown s;
    QPalette dark;
    dark.setColor(QPalette::Base, QColor(0x1e, 0x1f, 0x22));
    dark.setColor(QPalette::Window, QColor(0x2b, 0x2d, 0x30));
    dark.setColor(QPalette::Text, QColor(0xdf, 0xe1, 0xe5));
    dark.setColor(QPalette::WindowText, QColor(0xdf, 0xe1, 0xe5));
    dark.setColor(QPalette::Button, QColor(0x2b, 0x2d, 0x30));
    dark.setColor(QPalette::ButtonText, QColor(0xdf, 0xe1, 0xe5));
    const auto lightSliding = s.view.colors().sliding;
    s.view.setPalette(dark);
    s.view.setData(gemma2Data());
    s.settle();
    EXPECT_TRUE(s.view.colors().dark);
    EXPECT_EQ(name(s.view.colors().background), "#1e1f22");
    EXPECT_NE(name(s.view.colors().sliding), name(lightSliding));
    s.view.setLayer(0);
    const QImage img = s.exportAndLoad(QStringLiteral("maskview-mask-dark"));
    checkMaskPixels(s.view, img, 0, 40);
    s.view.setMode(MaskView::Mode::Attention);
    s.settle();
    checkAttentionPixels(s.view, s.exportAndLoad(QStringLiteral("maskview-attention-dark")), 0, -1);
}

TEST(MaskView, ZoomScrollAndCtrlWheel) {
    Shown s(QSize(700, 600));
    s.view.setData(gemma2Data());
    s.settle();
    s.view.setZoom(30);
    EXPECT_DOUBLE_EQ(s.view.zoom(), 30);
    s.view.scrollToCell(0, 0);
    EXPECT_DOUBLE_EQ(s.view.cellRect(0, 0, 0).width(), 30);
    EXPECT_TRUE(s.view.cellRect(0, 39, 39).isEmpty()) << "1200 px of cells cannot all be visible";
    s.view.scrollToCell(39, 35);
    EXPECT_FALSE(s.view.cellRect(0, 39, 35).isEmpty());
    EXPECT_TRUE(s.view.cellRect(0, 0, 0).isEmpty());
    // The view is still exact after scrolling.
    const QImage img = s.view.renderImage();
    for (int q = 30; q < 40; ++q)
        for (int k = 28; k < 40; ++k) {
            const QRectF r = s.view.cellRect(0, q, k);
            if (r.isEmpty() || !QRectF(img.rect()).contains(r.center())) continue;
            EXPECT_EQ(name(img.pixelColor(centre(r))),
                      name(MaskSpec{true, 8}.allows(q, k) ? s.view.colors().sliding : s.view.colors().background));
        }

    const QPointF at = s.view.canvas()->rect().center();
    QWheelEvent in(at, s.view.canvas()->mapToGlobal(at), QPoint(), QPoint(0, 120), Qt::NoButton, Qt::ControlModifier,
                   Qt::NoScrollPhase, false);
    QApplication::sendEvent(s.view.canvas(), &in);
    EXPECT_NEAR(s.view.zoom(), 30 * 1.25, 1e-9);
    s.view.fitToView();
    EXPECT_LT(s.view.zoom(), 15);
    EXPECT_FALSE(s.view.cellRect(0, 0, 0).isEmpty());
    EXPECT_FALSE(s.view.cellRect(0, 39, 39).isEmpty());
}

// ---- The reference attention of tiny-gemma2 ------------------------------------------------------

#define REQUIRE_FIXTURE(path)                                                                       \
    do {                                                                                            \
        if (!QFileInfo::exists(path)) {                                                             \
            if (!qEnvironmentVariableIsEmpty("CI")) FAIL() << "shared fixtures missing (CI is set)"; \
            GTEST_SKIP() << "shared fixtures not found at " << sharedDir().toStdString();         \
        }                                                                                           \
    } while (0)

QByteArray readAll(const QString& path) {
    QFile f(path);
    return f.open(QIODevice::ReadOnly) ? f.readAll() : QByteArray();
}

TEST(MaskView, ReferenceAttentionOfTinyGemma2) {
    const QString dir = sharedDir() + "/fixtures/tiny-gemma2";
    REQUIRE_FIXTURE(dir + "/reference/seq40.attn.f32");
    const int L = 4, H = 4, T = 40;
    const QByteArray attn = readAll(dir + "/reference/seq40.attn.f32");
    const QByteArray masks = readAll(dir + "/reference/seq40.masks.u8");
    ASSERT_EQ(attn.size(), qsizetype(L) * H * T * T * 4);
    ASSERT_EQ(masks.size(), qsizetype(L) * T * T);
    const QJsonObject meta = QJsonDocument::fromJson(readAll(dir + "/reference/seq40.json")).object();
    const QJsonArray ids = meta.value("input_ids").toArray();
    ASSERT_EQ(ids.size(), T);

    MaskViewData d;
    std::unique_ptr<wp::Tokenizer> tok;
    try {
        tok = wp::Tokenizer::load(dir.toStdString());
    } catch (const std::exception& e) {
        ADD_FAILURE() << e.what();
    }
    for (const auto& v : ids) {
        const int id = v.toInt();
        d.tokens << (tok ? QString::fromStdString(tok->decode(std::vector<int>{id}, false)) : QString::number(id));
    }
    d.layers = gemma2Layers(L, 8);  // sliding_window 8 on layers 0 and 2
    // The reference masks are exactly what MaskSpec (and so the view) says.
    for (int l = 0; l < L; ++l)
        for (int q = 0; q < T; ++q)
            for (int k = 0; k < T; ++k)
                ASSERT_EQ(masks[(l * T + q) * T + k] != 0, d.layers[l].allows(q, k)) << l << " " << q << " " << k;
    d.heads = H;
    const float* f = reinterpret_cast<const float*>(attn.constData());
    for (int l = 0; l < L; ++l) d.attention.emplace_back(f + std::size_t(l) * H * T * T, f + std::size_t(l + 1) * H * T * T);

    Shown s;
    s.view.setData(d);
    s.view.setMode(MaskView::Mode::Attention);
    s.settle();
    for (int l = 0; l < L; ++l)
        for (int h : {0, 3, -1}) {
            s.view.setLayer(l);
            s.view.setHead(h);
            SCOPED_TRACE(testing::Message() << "layer " << l << " head " << h);
            const QImage img = s.exportAndLoad(
                QStringLiteral("maskview-fixture-L%1-%2").arg(l).arg(h < 0 ? QStringLiteral("avg") : QStringLiteral("h%1").arg(h)),
                l == 1 && h == 0);
            checkAttentionPixels(s.view, img, l, h);
            // The most and least probable visible key of a few rows, straight from the file.
            if (h < 0) continue;
            auto p = [&](int q, int k) { return f[((std::size_t(l) * H + h) * T + q) * T + k]; };
            for (int q : {7, 20, 39}) {
                int best = -1, worst = -1;
                for (int k = 0; k <= q; ++k) {
                    if (!d.layers[l].allows(q, k)) continue;
                    if (best < 0 || p(q, k) > p(q, best)) best = k;
                    if (worst < 0 || p(q, k) < p(q, worst)) worst = k;
                }
                ASSERT_GT(p(q, best), p(q, worst));
                const QColor bg = s.view.colors().background;
                EXPECT_GT(intensity(img.pixelColor(centre(s.view.cellRect(l, q, best))), bg),
                          intensity(img.pixelColor(centre(s.view.cellRect(l, q, worst))), bg))
                    << "row " << q << " p " << p(q, best) << " vs " << p(q, worst);
            }
        }
    s.view.setSmallMultiples(true);
    s.view.setHead(-1);
    s.settle();
    s.exportAndLoad(QStringLiteral("maskview-fixture-multiples"));
}

// ---- 4,096 tokens -------------------------------------------------------------------------------

MaskViewData longData(int T, int layers, int window, int heads, int recordedLayers) {
    MaskViewData d;
    for (int i = 0; i < T; ++i) d.tokens << (i % 9 == 0 ? QStringLiteral("\n") : QStringLiteral(" w%1").arg(i));
    d.layers = gemma2Layers(layers, window);
    d.heads = heads;
    d.attention.resize(layers);
    for (int l = 0; l < recordedLayers; ++l) {
        std::vector<float>& a = d.attention[l];
        a.assign(std::size_t(heads) * T * T, 0.0f);
        for (int h = 0; h < heads; ++h)
            for (int q = 0; q < T; ++q) {
                float* row = a.data() + (std::size_t(h) * T + q) * T;
                double sum = 0;
                for (int k = q; k >= 0; --k) {
                    if (!d.layers[l].allows(q, k)) break;
                    row[k] = static_cast<float>(std::exp(-(q - k) / (30.0 + 40 * h)) + (k == 0 ? 2.0 : 0.0));
                    sum += row[k];
                }
                for (int k = 0; k <= q; ++k) row[k] = static_cast<float>(row[k] / sum);
            }
    }
    return d;
}

long allocationsDuringRepaint(MaskView& view) {
#ifdef WP_COUNT_ALLOCS
    view.canvas()->repaint();  // warm caches (pooled probabilities, glyphs)
    g_allocs = 0;
    g_counting = true;
    view.canvas()->repaint();
    g_counting = false;
    return g_allocs.load();
#else
    view.canvas()->repaint();
    return -1;
#endif
}

TEST(MaskView, FourThousandTokensPaintWithoutPerCellAllocations) {
    const int T = 4096;
    Shown s(QSize(1000, 800));
    s.view.setData(longData(T, 26, 512, 1, 2));
    s.settle();
    const auto c = s.view.colors();
    struct Case {
        const char* shot;
        MaskView::Mode mode;
        bool multiples;
        double zoom;  // 0: fit
    };
    const Case cases[] = {
        {"maskview-4096-mask-fit", MaskView::Mode::Mask, false, 0},
        {"maskview-4096-mask-1px", MaskView::Mode::Mask, false, 1},
        {"maskview-4096-mask-8px", MaskView::Mode::Mask, false, 8},
        {"maskview-4096-attention-fit", MaskView::Mode::Attention, false, 0},
        {"maskview-4096-attention-1px", MaskView::Mode::Attention, false, 1},
        {"maskview-4096-attention-8px", MaskView::Mode::Attention, false, 8},
        {"maskview-4096-multiples", MaskView::Mode::Mask, true, 0},
        {"maskview-4096-cache-fit", MaskView::Mode::Cache, false, 0},
    };
    // Cache steps for the cache case: the engine's hybrid cache with window 512.
    {
        MaskViewData d = longData(T, 26, 512, 1, 2);
        d.cacheSteps = hybridCacheSteps(d.layers, T - 16, T);
        s.view.setData(std::move(d));
        s.settle();
    }
    for (const Case& k : cases) {
        SCOPED_TRACE(k.shot);
        s.view.setMode(k.mode);
        s.view.setSmallMultiples(k.multiples);
        s.view.setLayer(0);
        s.view.fitToView();
        if (k.zoom > 0) {
            s.view.setZoom(k.zoom);
            s.view.scrollToCell(2000, 1490);  // around layer 0's window edge in row 2000
        }
        QApplication::processEvents();
        const long allocs = allocationsDuringRepaint(s.view);
        std::printf("[ %-30s ] zoom %.3f px/cell, paint %.2f ms, %ld allocations\n", k.shot, s.view.zoom(),
                    s.view.lastPaintMs(), allocs);
        if (allocs >= 0) {
            EXPECT_LT(allocs, 1500) << "visible cells: thousands to millions";
        }
        const QImage img = s.exportAndLoad(QString::fromLatin1(k.shot), k.zoom == 0);
        if (k.mode == MaskView::Mode::Mask && !k.multiples) {
            // Inside the band, outside the window, the future: also when aggregated.
            struct Probe {
                int q, k;
                QColor want;
            };
            std::vector<Probe> probes;
            if (k.zoom == 0)
                probes = {{3000, 2900, c.sliding}, {3000, 2300, c.background}, {1000, 3000, c.background}};
            else if (k.zoom == 1)  // (the 2 px edge line covers the cells next to the edge)
                probes = {{2000, 1600, c.sliding}, {2000, 1300, c.background}, {1800, 1850, c.background}};
            else
                probes = {{2000, 1489, c.sliding}, {2000, 1495, c.sliding}, {2000, 1488, c.background},
                          {2000, 1470, c.background}, {1970, 1470, c.sliding}, {2030, 1480, c.background}};
            for (const Probe& p : probes) {
                const QRectF r = s.view.cellRect(0, p.q, p.k);
                ASSERT_FALSE(r.isEmpty()) << p.q << "," << p.k;
                EXPECT_EQ(name(img.pixelColor(centre(r))), name(p.want)) << p.q << "," << p.k;
            }
        }
    }
    s.view.setMode(MaskView::Mode::Attention);
    s.view.setSmallMultiples(false);
    s.view.setLogScale(true);
    s.view.fitToView();
    EXPECT_LT(allocationsDuringRepaint(s.view), 1500);
    s.exportAndLoad(QStringLiteral("maskview-4096-attention-log-fit"));
    s.view.setLogScale(false);

    // The global layer keeps everything below the diagonal.
    s.view.setMode(MaskView::Mode::Mask);
    s.view.setSmallMultiples(false);
    s.view.setLayer(1);
    s.view.fitToView();
    const QImage img = s.view.renderImage();
    EXPECT_EQ(name(img.pixelColor(centre(s.view.cellRect(1, 3000, 1000)))), name(c.global));
    EXPECT_EQ(name(img.pixelColor(centre(s.view.cellRect(1, 1000, 3000)))), name(c.background));
}

}  // namespace

int main(int argc, char** argv) {
    qputenv("QT_QPA_PLATFORM", qgetenv("QT_QPA_PLATFORM").isEmpty() ? QByteArray("offscreen") : qgetenv("QT_QPA_PLATFORM"));
    QApplication app(argc, argv);
    testing::InitGoogleTest(&argc, argv);
    return RUN_ALL_TESTS();
}
