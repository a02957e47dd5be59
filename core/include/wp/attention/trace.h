// Post-softmax attention probabilities recorded during forward passes, for the visualizer and
// for tests. Recording costs nothing when no trace is passed to Model::forward.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace wp {

class AttentionTrace {
public:
    // Records queries and keys at absolute positions 0 .. positions-1.
    AttentionTrace(int layers, int heads, int positions)
        : layers_(layers), heads_(heads), n_(positions),
          probs_(static_cast<std::size_t>(layers) * heads * positions * positions, 0.0f) {}

    int layers() const { return layers_; }
    int heads() const { return heads_; }
    int positions() const { return n_; }
    float at(int layer, int head, std::int64_t q, std::int64_t k) const { return probs_[index(layer, head, q, k)]; }
    float* row(int layer, int head, std::int64_t q) { return probs_.data() + index(layer, head, q, 0); }
    const std::vector<float>& data() const { return probs_; }  // [layers, heads, positions, positions]
    bool covers(std::int64_t q) const { return q >= 0 && q < n_; }

private:
    std::size_t index(int l, int h, std::int64_t q, std::int64_t k) const {
        return ((static_cast<std::size_t>(l) * heads_ + h) * n_ + q) * n_ + k;
    }
    int layers_, heads_, n_;
    std::vector<float> probs_;
};

}  // namespace wp
