// One number per layer and head for each thing people look for across a model's heads, computed
// from the post-softmax attention probabilities (an AttentionTrace, or a reference's): how spread
// a head's attention is, how much of it rests on the first token (attention sinks), how far back
// it looks, and how much of a sliding window it uses.
#pragma once

#include <span>
#include <vector>

#include "wp/attention/mask.h"
#include "wp/attention/trace.h"

namespace wp {

// Means over the query rows 1 .. T-1 (row 0 has one key to look at; a one-token text uses it).
struct HeadSummary {
    double entropy = 0;        // of each row's probabilities, nats
    double first_token = 0;    // the probability on position 0
    double mean_distance = 0;  // sum over keys of p * (q - k), in tokens
    // Sliding layers: the share of the keys inside the row's window, nearest first, that hold
    // kWindowMass of its attention; NaN on global layers.
    double window_used = 0;

    static constexpr double kWindowMass = 0.9;
};

// One head: `probs` holds rows q = 0 .. T-1 of `stride` floats each, row q over keys 0 .. q.
HeadSummary summarize_head(const float* probs, int T, std::size_t stride, const MaskSpec& mask);

// Every recorded layer's heads: [layers, heads] in layer order; rows of layers the trace does not
// record are left default (zeros). `masks` holds one MaskSpec per layer.
std::vector<HeadSummary> summarize_heads(const AttentionTrace& trace, std::span<const MaskSpec> masks, int positions);

}  // namespace wp
