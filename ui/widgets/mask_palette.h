// The colours of the mask view, and the lookup tables that turn a probability or a fraction of
// allowed cells into a colour without any arithmetic per cell. Rebuilt when the widget's palette
// changes (light or dark theme).
#pragma once

#include <QColor>
#include <QPalette>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

namespace wp::ui {

// Probability above which a masked cell counts as attended to: painted in the alarm colour and
// called out in its hover text.
constexpr float kMaskedEpsilon = 1e-6f;

struct MaskColors {
    QColor background;  // masked cells in mask mode, everything not a cell
    QColor text;
    QColor frame;
    QColor global;      // allowed cells of a global layer
    QColor sliding;     // allowed cells of a sliding layer
    QColor edge;        // the sliding window's edge
    QColor masked;      // masked cells in attention mode
    QColor alarm;       // probability on a masked cell (the data disagrees with the mask)
    bool dark = false;
};

QRgb mixRgb(QRgb a, QRgb b, double t);
QColor mixColor(const QColor& a, const QColor& b, double t);

class MaskPalette {
public:
    static constexpr int kHeatSteps = 1024;    // heat colours over sqrt(p) (or log p)
    static constexpr int kFractionSteps = 64;  // aggregated cells: fraction allowed / held
    static constexpr double kLogFloor = -4.0;  // log scale: 10^-4 .. 1

    void rebuild(const QPalette& palette);

    const MaskColors& colors() const { return colors_; }
    // Tables per layer kind (0 global, 1 sliding): kHeatSteps heat colours from the faint kind
    // tint to the hottest colour; kFractionSteps + 1 mixes from the background to the kind colour.
    const QRgb* heat(int kind) const { return heat_[kind].data(); }
    const QRgb* fraction(int kind) const { return fraction_[kind].data(); }

    // The heat table index of probability p: over sqrt(p), or over log10 p from 10^-4 to 1 (a table
    // indexed by the upper 16 bits of the float, so no logarithm per cell).
    int heatIndex(float p, bool logScale) const {
        if (!logScale)
            return std::clamp(static_cast<int>(std::sqrt(std::max(p, 0.0f)) * (kHeatSteps - 1) + 0.5f), 0,
                              kHeatSteps - 1);
        if (!(p > 0)) return 0;
        std::uint32_t bits;
        std::memcpy(&bits, &p, sizeof bits);
        return log_[bits >> 16];
    }

private:
    MaskColors colors_;
    std::vector<QRgb> heat_[2];
    std::vector<QRgb> fraction_[2];
    std::vector<std::uint16_t> log_;  // float bits >> 16 -> heat index on the log scale
};

}  // namespace wp::ui
