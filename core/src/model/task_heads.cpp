#include "wp/model/task_heads.h"

#include <algorithm>
#include <cmath>

#include "wp/error.h"

namespace wp {

namespace {

void check_head(const Model& model, Head want) {
    const ModelConfig& c = model.config();
    if (c.head != want)
        throw Error(model.dir().string() + ": " + (c.architecture.empty() ? std::string("a causal LM") : c.architecture) +
                    " is a " + head_name(c.head) + " model, not " + head_name(want));
}

// Every token's head outputs ([tokens][outputs]) from a fresh context, after checking the head.
std::vector<float> head_outputs(const Model& model, std::span<const int> ids, Head want) {
    check_head(model, want);
    if (ids.empty()) throw Error("no tokens to classify");
    auto ctx = model.new_context(CacheKind::Dynamic, static_cast<std::int64_t>(ids.size()));
    const std::span<const float> out = model.forward(*ctx, ids, LogitsMode::All);
    return {out.begin(), out.end()};
}

int arg_max(const float* v, int n) { return static_cast<int>(std::max_element(v, v + n) - v); }

// The classification of `ids` from its tokens' head outputs ([tokens][labels]).
SequenceClassification pooled(const ModelConfig& c, std::span<const int> ids, const float* all) {
    const int n = c.num_outputs();
    SequenceClassification r;
    r.pooled_index = static_cast<int>(ids.size()) - 1;
    if (c.pad_token_id) {
        r.pooled_index = 0;
        for (int t = static_cast<int>(ids.size()) - 1; t >= 0; --t)
            if (ids[static_cast<std::size_t>(t)] != *c.pad_token_id) {
                r.pooled_index = t;
                break;
            }
    }
    const float* row = all + static_cast<std::ptrdiff_t>(r.pooled_index) * n;
    r.logits.assign(row, row + n);
    const int best = arg_max(r.logits.data(), n);
    r.label = c.labels[static_cast<std::size_t>(best)];
    if (n == 1) {
        r.score = 1.0 / (1.0 + std::exp(-static_cast<double>(r.logits[0])));
    } else {
        double sum = 0;
        for (float l : r.logits) sum += std::exp(static_cast<double>(l) - r.logits[static_cast<std::size_t>(best)]);
        r.score = 1.0 / sum;
    }
    return r;
}

}  // namespace

SequenceClassification classify_sequence(const Model& model, std::span<const int> ids) {
    const std::vector<float> all = head_outputs(model, ids, Head::SequenceClassification);
    return pooled(model.config(), ids, all.data());
}

std::vector<SequenceClassification> classify_sequences(const Model& model, std::span<const std::vector<int>> inputs,
                                                       int batch_tokens,
                                                       const std::function<bool(std::size_t done)>& progress) {
    const ModelConfig& c = model.config();
    check_head(model, Head::SequenceClassification);
    for (std::size_t i = 0; i < inputs.size(); ++i)
        if (inputs[i].empty()) {
            throw Error("input " + std::to_string(i + 1) + " has no tokens to classify");
        } else if (c.max_position_embeddings > 0 && inputs[i].size() > static_cast<std::size_t>(c.max_position_embeddings)) {
            throw Error("input " + std::to_string(i + 1) + " has " + std::to_string(inputs[i].size()) +
                        " tokens; the model takes at most " + std::to_string(c.max_position_embeddings));
        }
    std::vector<SequenceClassification> out;
    out.reserve(inputs.size());
    auto ctx = model.new_context(CacheKind::Dynamic);
    std::vector<int> ids, lengths;
    const int n = c.num_outputs();
    for (std::size_t first = 0; first < inputs.size();) {
        // As many whole inputs as fit in batch_tokens (at least one).
        ids.clear();
        lengths.clear();
        std::size_t end = first;
        while (end < inputs.size() &&
               (end == first || ids.size() + inputs[end].size() <= static_cast<std::size_t>(std::max(batch_tokens, 1)))) {
            ids.insert(ids.end(), inputs[end].begin(), inputs[end].end());
            lengths.push_back(static_cast<int>(inputs[end].size()));
            ++end;
        }
        const std::span<const float> all = model.forward_packed(*ctx, ids, lengths);
        std::size_t row = 0;
        for (std::size_t i = first; i < end; ++i) {
            out.push_back(pooled(c, inputs[i], all.data() + row * static_cast<std::size_t>(n)));
            row += inputs[i].size();
        }
        first = end;
        if (progress && !progress(first)) break;
    }
    return out;
}

TokenClassification classify_tokens(const Model& model, std::span<const int> ids) {
    const ModelConfig& c = model.config();
    TokenClassification r;
    r.logits = head_outputs(model, ids, Head::TokenClassification);
    r.num_labels = c.num_outputs();
    for (std::size_t t = 0; t < ids.size(); ++t)
        r.labels.push_back(c.labels[static_cast<std::size_t>(arg_max(r.logits.data() + t * r.num_labels, r.num_labels))]);
    return r;
}

QuestionAnsweringLogits question_answering_logits(const Model& model, std::span<const int> ids) {
    const std::vector<float> all = head_outputs(model, ids, Head::QuestionAnswering);
    QuestionAnsweringLogits r;
    for (std::size_t t = 0; t < ids.size(); ++t) {
        r.start.push_back(all[2 * t]);
        r.end.push_back(all[2 * t + 1]);
    }
    return r;
}

}  // namespace wp
