#include "engine/head_summary_data.h"

#include <QObject>
#include <cmath>
#include <limits>

#include "wp/attention/trace.h"

namespace wp::ui {

void HeadSummaryData::reset(std::vector<wp::MaskSpec> layerMasks, int headCount, int positionCount) {
    masks = std::move(layerMasks);
    layers = static_cast<int>(masks.size());
    heads = headCount;
    positions = positionCount;
    summaries.assign(static_cast<std::size_t>(layers) * heads, {});
}

void HeadSummaryData::addRecorded(const wp::AttentionTrace& trace) {
    const std::vector<wp::HeadSummary> part = wp::summarize_heads(trace, masks, positions);
    for (int l = 0; l < layers; ++l)
        if (trace.records(l))
            for (int h = 0; h < heads; ++h)
                summaries[static_cast<std::size_t>(l) * heads + h] = part[static_cast<std::size_t>(l) * heads + h];
}

void HeadSummaryData::addLayer(const wp::AttentionTrace& trace, int layer) {
    const std::size_t n = static_cast<std::size_t>(trace.positions());
    const int T = std::min(positions, trace.positions());
    for (int h = 0; h < heads; ++h)
        summaries[static_cast<std::size_t>(layer) * heads + h] =
            wp::summarize_head(trace.layer_data(layer) + h * n * n, T, n, masks[layer]);
}

double HeadSummaryData::value(int layer, int head, Metric m) const {
    const wp::HeadSummary& s = at(layer, head);
    switch (m) {
    case Metric::Entropy: return s.entropy;
    case Metric::FirstToken: return s.first_token;
    case Metric::MeanDistance: return s.mean_distance;
    case Metric::WindowUsed: return masks[layer].sliding() ? s.window_used : std::numeric_limits<double>::quiet_NaN();
    }
    return 0;
}

std::pair<double, double> HeadSummaryData::range(Metric m) const {
    double lo = std::numeric_limits<double>::infinity(), hi = -lo;
    for (int l = 0; l < layers; ++l)
        for (int h = 0; h < heads; ++h)
            if (const double v = value(l, h, m); std::isfinite(v)) {
                lo = std::min(lo, v);
                hi = std::max(hi, v);
            }
    return lo <= hi ? std::pair{lo, hi} : std::pair{0.0, 0.0};
}

QString HeadSummaryData::metricName(Metric m) {
    switch (m) {
    case Metric::Entropy: return QObject::tr("Entropy");
    case Metric::FirstToken: return QObject::tr("Attention on the first token");
    case Metric::MeanDistance: return QObject::tr("Mean distance");
    case Metric::WindowUsed: return QObject::tr("Window used");
    }
    return {};
}

QString HeadSummaryData::formatValue(Metric m, double v) {
    if (!std::isfinite(v)) return QObject::tr("\u2014 (global layer)");
    switch (m) {
    case Metric::Entropy: return QObject::tr("%1 nats").arg(v, 0, 'f', 2);
    case Metric::FirstToken:
    case Metric::WindowUsed: return QStringLiteral("%1 %").arg(100 * v, 0, 'f', 1);
    case Metric::MeanDistance: return QObject::tr("%1 tokens").arg(v, 0, 'f', 1);
    }
    return {};
}

}  // namespace wp::ui
