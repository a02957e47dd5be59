// Post-softmax attention probabilities recorded during forward passes, for the visualizer and
// for tests. Recording costs nothing when no trace is passed to Model::forward.
#pragma once

#include <cstddef>
#include <algorithm>
#include <cstdint>
#include <vector>

namespace wp {

class AttentionTrace {
public:
    // Records queries and keys at absolute positions 0 .. positions-1 of every layer.
    AttentionTrace(int layers, int heads, int positions) : AttentionTrace(std::vector<bool>(layers, true), heads, positions) {}
    // Records only the layers marked true (a 4,096-token trace of one layer is already
    // heads x 64 MB).
    AttentionTrace(const std::vector<bool>& record, int heads, int positions)
        : layers_(static_cast<int>(record.size())), heads_(heads), n_(positions), slot_(record.size(), -1) {
        int next = 0;
        for (std::size_t l = 0; l < record.size(); ++l)
            if (record[l]) slot_[l] = next++;
        probs_.assign(static_cast<std::size_t>(next) * heads * positions * positions, 0.0f);
    }

    // Every layer written into one layer's storage: for a reader that takes each layer as it
    // completes (a Model::forward LayerObserver) and then clear()s it, so that a long text's
    // attention of all layers passes through heads x positions^2 floats in one forward pass.
    static AttentionTrace one_layer_at_a_time(int layers, int heads, int positions) {
        AttentionTrace t(std::vector<bool>{true}, heads, positions);
        t.layers_ = layers;
        t.slot_.assign(static_cast<std::size_t>(layers), 0);
        return t;
    }
    // Zeros the storage (masked entries are never written: they must read 0).
    void clear() { std::fill(probs_.begin(), probs_.end(), 0.0f); }

    int layers() const { return layers_; }
    int heads() const { return heads_; }
    int positions() const { return n_; }
    bool records(int layer) const { return layer >= 0 && layer < layers_ && slot_[layer] >= 0; }
    float at(int layer, int head, std::int64_t q, std::int64_t k) const { return probs_[index(layer, head, q, k)]; }
    float* row(int layer, int head, std::int64_t q) { return probs_.data() + index(layer, head, q, 0); }
    const float* layer_data(int layer) const { return probs_.data() + index(layer, 0, 0, 0); }  // [heads, T, T]
    // Every recorded layer in order, [recorded layers, heads, positions, positions].
    const std::vector<float>& data() const { return probs_; }
    bool covers(std::int64_t q) const { return q >= 0 && q < n_; }

private:
    std::size_t index(int l, int h, std::int64_t q, std::int64_t k) const {
        return ((static_cast<std::size_t>(slot_[l]) * heads_ + h) * n_ + q) * n_ + k;
    }
    int layers_, heads_, n_;
    std::vector<int> slot_;
    std::vector<float> probs_;
};

}  // namespace wp
