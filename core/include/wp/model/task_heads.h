// Running a task-head model (ModelConfig::head other than CausalLM) as transformers does
// (modeling_layers.py): sequence classification pools one position, token classification labels
// every token, question answering gives start and end logits. Each runs the ids through a fresh
// context in one forward pass and throws wp::Error when the model has another head.
#pragma once

#include <cstddef>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "wp/model/model.h"

namespace wp {

struct SequenceClassification {
    std::vector<float> logits;  // [labels]
    int pooled_index = 0;       // the rightmost token that is not pad_token_id (the last without one; 0 if all are)
    // As transformers' text-classification pipeline reports it: one label, sigmoid(logit);
    // several, the arg-max label and its softmax probability.
    std::string label;
    double score = 0;
};

struct TokenClassification {
    int num_labels = 0;
    std::vector<float> logits;        // [tokens][labels]
    std::vector<std::string> labels;  // the arg-max label of each token
};

struct QuestionAnsweringLogits {
    std::vector<float> start, end;  // [tokens]
};

SequenceClassification classify_sequence(const Model& model, std::span<const int> ids);
TokenClassification classify_tokens(const Model& model, std::span<const int> ids);
QuestionAnsweringLogits question_answering_logits(const Model& model, std::span<const int> ids);

// Many inputs' sequence classifications through packed forward passes of up to `batch_tokens`
// tokens each (Model::forward_packed: inputs side by side, each with its own positions and causal
// mask; an input longer than that runs alone), equal to classify_sequence on each input. A pass
// takes the first input not yet run, then later ones that fit the room left (looking a few
// hundred ahead), so passes run nearly full. As each pass ends, `done(input, result)` is called
// for each input it held, so results can come before those of earlier, longer inputs; returning
// false stops after that pass. Throws wp::Error before any pass for an empty or too long input.
void classify_sequences(const Model& model, std::span<const std::vector<int>> inputs, int batch_tokens,
                        const std::function<bool(std::size_t input, SequenceClassification&& result)>& done);
// The same, all results in input order.
std::vector<SequenceClassification> classify_sequences(const Model& model, std::span<const std::vector<int>> inputs,
                                                       int batch_tokens = 512);

}  // namespace wp
