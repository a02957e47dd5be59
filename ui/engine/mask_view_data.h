// What the inference worker hands the attention view: the tokens of an analysed text, each layer's
// mask rule, the recorded attention probabilities and the KV cache's contents after each step.
//
// A plain value: the worker fills it on its own thread and sends it by queued signal (a copy); the
// widgets only read it. Layout:
//  - tokens: one label per position, T = tokens.size().
//  - layers[l]: the wp::MaskSpec the forward pass applied in layer l.
//  - attention[l]: [heads * T * T] floats, row-major (head, query, key); empty (or of another size)
//    when layer l was not recorded.
//  - cacheSteps: one entry after the prompt and one after each generated token.
#pragma once

#include <QString>
#include <QStringList>
#include <cstdint>
#include <vector>

#include "wp/attention/mask.h"

namespace wp {
class AttentionTrace;
class KvCache;
}  // namespace wp

namespace wp::ui {

struct MaskViewData {
    QStringList tokens;                // one label per position (token pieces)
    std::vector<wp::MaskSpec> layers;  // per layer
    int heads = 0;
    // Per layer: [heads * T * T] row-major (query, key) probabilities, T = tokens.size(); an empty
    // vector (or one of the wrong size) for a layer that was not recorded.
    std::vector<std::vector<float>> attention;

    // Cache mode: one entry per step (after the prompt and after each generated token).
    struct CacheStep {
        int length = 0;                               // positions seen so far
        std::vector<std::vector<std::int64_t>> held;  // per layer: absolute positions held
        std::vector<qint64> bytes;                    // per layer: KV bytes
    };
    std::vector<CacheStep> cacheSteps;

    int positions() const { return static_cast<int>(tokens.size()); }
    bool hasAttention(int layer) const;
    // The probability of key k for query q in a layer, of one head or (head < 0) the head average;
    // 0 when the layer was not recorded.
    float probability(int layer, int head, int q, int k) const;

    // Copies the first tokens.size() positions of every layer of a trace (sets heads).
    void setAttention(const wp::AttentionTrace& trace);
    // What the engine's cache holds right now, for cacheSteps.
    static CacheStep captureCache(const wp::KvCache& cache);
};

}  // namespace wp::ui
