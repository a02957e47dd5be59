// The token loop: prompt processing in chunks, then one token at a time until an eos id, the
// token limit, a full context or a cancel request.
#pragma once

#include <array>
#include <atomic>
#include <functional>
#include <optional>
#include <span>
#include <vector>

#include "wp/generate/sampler.h"
#include "wp/model/model.h"

namespace wp {

struct TokenAlternative {
    int id = 0;
    float logprob = 0;
};

struct GeneratedToken {
    int id = 0;
    float logprob = 0;                    // under the model's distribution (raw logits)
    std::array<TokenAlternative, 5> top{};  // the most probable tokens, best first
    int top_count = 0;                    // valid entries of `top`
};

enum class StopReason { Eos, MaxTokens, ContextFull, Cancelled, Callback };
const char* stop_reason_name(StopReason r);

struct GenerateOptions {
    int max_new_tokens = 128;
    SamplingParams sampling;
    std::optional<std::vector<int>> eos_ids;   // default: the model's eos ids; {} never stops
    const std::atomic<bool>* cancel = nullptr; // checked between tokens
    int prefill_chunk = 512;
    std::span<const int> penalty_context;      // earlier tokens (already cached) the repetition penalty sees
    std::function<void(int done, int total)> on_prefill;      // prompt progress
    std::function<bool(const GeneratedToken&)> on_token;      // return false to stop
    // Prompt-lookup decoding (transformers' prompt_lookup_num_tokens, max_matching_ngram_size):
    // up to this many draft tokens copied from after an earlier match of the last n-gram, checked
    // in one forward pass; 0 = off. Only where the choice is deterministic (greedy), so the
    // output is the same bit for bit. Drafts pause for a few tokens after a rejected one.
    int prompt_lookup_tokens = 0;
    int prompt_lookup_ngram = 2;
};

struct GenerateResult {
    std::vector<GeneratedToken> tokens;  // the eos token, when hit, is the last one
    StopReason reason = StopReason::MaxTokens;
    int prompt_tokens = 0;
    double prefill_seconds = 0;   // time to first token
    double decode_seconds = 0;    // after the first token
    int drafted = 0;              // prompt lookup: draft tokens checked, and those taken
    int accepted = 0;
    std::vector<int> ids() const;
};

// The draft prompt lookup proposes (transformers' PromptLookupCandidateGenerator): for n-gram sizes
// from `ngram` down to 1, the tokens after the earliest earlier match of the last n tokens of
// `history`, at most `max_tokens`, cut before the first of `stop` (eos). Empty when none match.
void prompt_lookup_draft(std::span<const int> history, int ngram, int max_tokens, std::span<const int> stop,
                         std::vector<int>& draft);

// Continues `ctx` (whose cache may already hold earlier turns) with `prompt` and generates.
GenerateResult generate(const Model& model, Context& ctx, std::span<const int> prompt,
                        const GenerateOptions& opts);

}  // namespace wp
