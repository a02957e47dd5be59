#include "wp/model/task_heads.h"

#include <algorithm>
#include <cmath>
#include <cstdint>

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

void classify_sequences(const Model& model, std::span<const std::vector<int>> inputs, int batch_tokens,
                        const std::function<bool(std::size_t input, SequenceClassification&& result)>& done) {
    const ModelConfig& c = model.config();
    check_head(model, Head::SequenceClassification);
    for (std::size_t i = 0; i < inputs.size(); ++i)
        if (inputs[i].empty()) {
            throw Error("input " + std::to_string(i + 1) + " has no tokens to classify");
        } else if (c.max_position_embeddings > 0 && inputs[i].size() > static_cast<std::size_t>(c.max_position_embeddings)) {
            throw Error("input " + std::to_string(i + 1) + " has " + std::to_string(inputs[i].size()) +
                        " tokens; the model takes at most " + std::to_string(c.max_position_embeddings));
        }
    const std::size_t room = static_cast<std::size_t>(std::max(batch_tokens, 1));
    // How far past the first waiting input a pass looks for inputs that fit: enough to fill
    // passes of short texts, bounded so that one pass's search stays cheap.
    constexpr std::size_t kLookAhead = 256;
    auto ctx = model.new_context(CacheKind::Dynamic);
    std::vector<int> ids, lengths;
    std::vector<std::size_t> held;
    std::vector<std::size_t> waiting(inputs.size());
    for (std::size_t i = 0; i < inputs.size(); ++i) waiting[i] = i;
    std::size_t next = 0;  // waiting[next..] are not yet run; taken entries become SIZE_MAX
    const int n = c.num_outputs();
    while (next < waiting.size()) {
        ids.clear();
        lengths.clear();
        held.clear();
        for (std::size_t w = next, seen = 0; w < waiting.size() && seen < kLookAhead; ++w) {
            if (waiting[w] == SIZE_MAX) continue;
            ++seen;
            const std::vector<int>& in = inputs[waiting[w]];
            if (!held.empty() && ids.size() + in.size() > room) continue;
            ids.insert(ids.end(), in.begin(), in.end());
            lengths.push_back(static_cast<int>(in.size()));
            held.push_back(waiting[w]);
            waiting[w] = SIZE_MAX;
            if (ids.size() >= room) break;
        }
        while (next < waiting.size() && waiting[next] == SIZE_MAX) ++next;
        const std::span<const float> all = model.forward_packed(*ctx, ids, lengths);
        std::size_t row = 0;
        bool more = true;
        for (std::size_t input : held) {
            more = done(input, pooled(c, inputs[input], all.data() + row * static_cast<std::size_t>(n))) && more;
            row += inputs[input].size();
        }
        if (!more) return;
    }
}

std::vector<SequenceClassification> classify_sequences(const Model& model, std::span<const std::vector<int>> inputs,
                                                       int batch_tokens) {
    std::vector<SequenceClassification> out(inputs.size());
    classify_sequences(model, inputs, batch_tokens, [&](std::size_t input, SequenceClassification&& r) {
        out[input] = std::move(r);
        return true;
    });
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
