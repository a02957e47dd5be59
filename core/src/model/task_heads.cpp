#include "wp/model/task_heads.h"

#include <algorithm>
#include <cmath>

#include "wp/error.h"

namespace wp {

namespace {

// Every token's head outputs ([tokens][outputs]) from a fresh context, after checking the head.
std::vector<float> head_outputs(const Model& model, std::span<const int> ids, Head want) {
    const ModelConfig& c = model.config();
    if (c.head != want)
        throw Error(model.dir().string() + ": " + (c.architecture.empty() ? std::string("a causal LM") : c.architecture) +
                    " is a " + head_name(c.head) + " model, not " + head_name(want));
    if (ids.empty()) throw Error("no tokens to classify");
    auto ctx = model.new_context(CacheKind::Dynamic, static_cast<std::int64_t>(ids.size()));
    const std::span<const float> out = model.forward(*ctx, ids, LogitsMode::All);
    return {out.begin(), out.end()};
}

int arg_max(const float* v, int n) { return static_cast<int>(std::max_element(v, v + n) - v); }

}  // namespace

SequenceClassification classify_sequence(const Model& model, std::span<const int> ids) {
    const ModelConfig& c = model.config();
    const std::vector<float> all = head_outputs(model, ids, Head::SequenceClassification);
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
    r.logits.assign(all.begin() + static_cast<std::ptrdiff_t>(r.pooled_index) * n,
                    all.begin() + static_cast<std::ptrdiff_t>(r.pooled_index + 1) * n);
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
