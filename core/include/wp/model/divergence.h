// How far two variants of a model (one checkpoint at two precisions, base against instruct) part on
// one text: both read the same tokens (teacher-forced), and at every position the two next-token
// distributions are compared as llama.cpp's `perplexity --kl-divergence` does.
#pragma once

#include <atomic>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "wp/model/model.h"

namespace wp {

class Tokenizer;

struct DivergenceOptions {
    int top_k = 5;  // 1..100: each model's most probable next tokens kept per position
    std::function<void(double)> progress;  // fraction done, 0..1
    const std::atomic<bool>* cancel = nullptr;  // set: throws wp::Cancelled before the next pass
};

// Position t: both models have read ids[0..t] and predict ids[t + 1].
struct TokenDivergence {
    double kl = 0;               // KL(A || B) of the two next-token distributions, nats
    bool same_top = false;       // both models' most probable token is the same
    double logprob_a = 0, logprob_b = 0;  // of the actual next token, ids[t + 1]
};

struct DivergenceSummary {
    int tokens = 0;  // predictions compared: ids.size() - 1
    double mean_kl = 0, median_kl = 0, p99_kl = 0, max_kl = 0;
    double same_top = 0;        // share of positions whose top-1 tokens agree, 0..1
    double ppl_a = 0, ppl_b = 0;  // each model's perplexity of the text, exp(-mean log-probability)
    double ppl_ratio = 0;       // ppl_b / ppl_a
    double mean_kl_error = 0;   // the mean KL's standard error, as llama.cpp prints with it
};

struct Divergence {
    int top_k = 0;
    std::vector<TokenDivergence> positions;  // [ids.size() - 1]
    std::vector<int> top_ids_a, top_ids_b;   // [ids.size() - 1, top_k], most probable first
    std::vector<float> top_probs_a, top_probs_b;
    DivergenceSummary summary;
};

// Both models must be causal LMs with the same vocabulary size (a clear wp::Error otherwise);
// `a` and `b` may be the same object. ids: at least two, within both models' context.
Divergence diverge(const Model& a, const Model& b, std::span<const int> ids, const DivergenceOptions& options = {});

// The statistics over per-position rows: the 99th percentile by nearest rank on the sorted KLs, the
// median the middle one (the mean of the two middle ones for an even count).
DivergenceSummary summarize_divergence(std::span<const TokenDivergence> positions);

// Throws wp::Error naming the first difference unless the two tokenizers give every id the same
// piece: divergence compares distributions token for token, so the vocabularies must be one.
void check_same_vocabulary(const Tokenizer& a, const Tokenizer& b);

}  // namespace wp
