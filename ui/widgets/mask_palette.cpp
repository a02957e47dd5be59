#include "widgets/mask_palette.h"

#include <algorithm>

namespace wp::ui {

QRgb mixRgb(QRgb a, QRgb b, double t) {
    auto m = [t](int x, int y) { return static_cast<int>(std::lround(x + (y - x) * t)); };
    return qRgb(m(qRed(a), qRed(b)), m(qGreen(a), qGreen(b)), m(qBlue(a), qBlue(b)));
}

QColor mixColor(const QColor& a, const QColor& b, double t) { return QColor(mixRgb(a.rgb(), b.rgb(), t)); }

void MaskPalette::rebuild(const QPalette& pal) {
    MaskColors c;
    c.background = pal.color(QPalette::Base);
    c.text = pal.color(QPalette::Text);
    c.dark = c.background.lightness() < 128;
    c.frame = mixColor(c.background, c.text, 0.35);
    c.global = c.dark ? QColor(0x5b, 0x9b, 0xf0) : QColor(0x2f, 0x6f, 0xd0);
    c.sliding = c.dark ? QColor(0x3d, 0xc4, 0x8e) : QColor(0x16, 0x9b, 0x62);
    c.edge = c.dark ? QColor(0xc8, 0xff, 0xe4) : QColor(0x06, 0x3d, 0x26);
    c.masked = mixColor(c.background, c.text, c.dark ? 0.17 : 0.12);
    c.alarm = QColor(0xff, 0x00, 0xd4);
    colors_ = c;

    const QColor mid = c.dark ? QColor(0xe0, 0x52, 0x12) : QColor(0xf0, 0x62, 0x18);
    const QColor high = c.dark ? QColor(0xff, 0xec, 0x8c) : QColor(0x68, 0x08, 0x24);
    for (int kind = 0; kind < 2; ++kind) {
        const QColor on = kind ? c.sliding : c.global;
        const QColor tint = mixColor(c.background, on, c.dark ? 0.30 : 0.20);
        std::vector<QRgb>& heat = heat_[kind];
        heat.resize(kHeatSteps);
        for (int i = 0; i < kHeatSteps; ++i) {
            const double t = double(i) / (kHeatSteps - 1);
            heat[i] = t < 0.5 ? mixRgb(tint.rgb(), mid.rgb(), t / 0.5) : mixRgb(mid.rgb(), high.rgb(), (t - 0.5) / 0.5);
        }
        std::vector<QRgb>& frac = fraction_[kind];
        frac.resize(kFractionSteps + 1);
        for (int i = 0; i <= kFractionSteps; ++i)
            frac[i] = mixRgb(c.background.rgb(), on.rgb(), double(i) / kFractionSteps);
        frac[0] = c.background.rgb();
        frac[kFractionSteps] = on.rgb();
    }
    if (log_.empty()) {
        log_.resize(1 << 16);
        for (std::uint32_t i = 0; i < (1u << 16); ++i) {
            const std::uint32_t bits = (i << 16) | 0x8000u;  // the middle of the bucket
            float v;
            std::memcpy(&v, &bits, sizeof v);
            double t = 0;
            if (std::isfinite(v) && v > 0) t = std::clamp((std::log10(double(v)) - kLogFloor) / -kLogFloor, 0.0, 1.0);
            log_[i] = static_cast<std::uint16_t>(std::lround(t * (kHeatSteps - 1)));
        }
    }
}

}  // namespace wp::ui
