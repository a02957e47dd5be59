// What the inference worker hands the head-summary grid: one wp::HeadSummary per layer and head
// (attention entropy, share on the first token, mean distance, sliding-window use), computed from
// the post-softmax probabilities of the whole text.
//
// A plain value sent by queued signal; the widgets only read it. The worker fills it a layer at a
// time (addLayer) as the forward pass completes each, since a trace of every layer of a long text
// would not fit.
#pragma once

#include <QMetaType>
#include <QString>
#include <utility>
#include <vector>

#include "wp/attention/head_summary.h"
#include "wp/attention/mask.h"

namespace wp {
class AttentionTrace;
}

namespace wp::ui {

struct HeadSummaryData {
    enum class Metric { Entropy, FirstToken, MeanDistance, WindowUsed };
    static constexpr int kMetrics = 4;

    int layers = 0, heads = 0, positions = 0;
    std::vector<wp::MaskSpec> masks;           // per layer
    std::vector<wp::HeadSummary> summaries;    // [layers, heads]

    void reset(std::vector<wp::MaskSpec> layerMasks, int headCount, int positionCount);
    // Summarises the layers `trace` records (wp::summarize_heads) into their rows; the others stay.
    void addRecorded(const wp::AttentionTrace& trace);
    // Summarises `layer` from what `trace` holds for it (a one_layer_at_a_time trace after that layer).
    void addLayer(const wp::AttentionTrace& trace, int layer);

    bool empty() const { return layers == 0 || heads == 0; }
    const wp::HeadSummary& at(int layer, int head) const { return summaries[static_cast<std::size_t>(layer) * heads + head]; }
    // NaN where the metric does not apply (window use on a global layer).
    double value(int layer, int head, Metric m) const;
    // The smallest and largest finite value of a metric over the grid (0, 0 when there is none).
    std::pair<double, double> range(Metric m) const;

    static QString metricName(Metric m);  // for the picker
    static QString formatValue(Metric m, double v);  // "1.23 nats", "45.6 %", "3.2 tokens"
};

}  // namespace wp::ui

Q_DECLARE_METATYPE(wp::ui::HeadSummaryData)
