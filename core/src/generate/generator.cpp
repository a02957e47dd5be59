#include "wp/generate/generator.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "wp/error.h"

namespace wp {

const char* stop_reason_name(StopReason r) {
    switch (r) {
        case StopReason::Eos: return "eos";
        case StopReason::MaxTokens: return "max_tokens";
        case StopReason::ContextFull: return "context_full";
        case StopReason::Cancelled: return "cancelled";
        case StopReason::Callback: return "stopped";
    }
    return "?";
}

std::vector<int> GenerateResult::ids() const {
    std::vector<int> out;
    out.reserve(tokens.size());
    for (const auto& t : tokens) out.push_back(t.id);
    return out;
}

namespace {

// log-softmax of the raw logits for the chosen token and the top 5.
void describe(std::span<const float> logits, int chosen, GeneratedToken& out) {
    const float mx = *std::max_element(logits.begin(), logits.end());
    double sum = 0;
    for (float l : logits) sum += std::exp(static_cast<double>(l - mx));
    const float lse = mx + static_cast<float>(std::log(sum));
    out.id = chosen;
    out.logprob = logits[chosen] - lse;
    TokenAlternative best[5];
    int n = 0;
    for (int i = 0; i < static_cast<int>(logits.size()); ++i) {
        const float l = logits[i];
        if (n == 5 && l <= best[4].logprob) continue;
        int j = n < 5 ? n++ : 4;
        while (j > 0 && best[j - 1].logprob < l) {
            best[j] = best[j - 1];
            --j;
        }
        best[j] = {i, l};
    }
    out.top_count = n;
    for (int i = 0; i < n; ++i) out.top[i] = {best[i].id, best[i].logprob - lse};
}

}  // namespace

GenerateResult generate(const Model& model, Context& ctx, std::span<const int> prompt,
                        const GenerateOptions& opts) {
    using clock = std::chrono::steady_clock;
    const ModelConfig& cfg = model.config();
    if (prompt.empty()) throw Error("the prompt has no tokens");
    if (opts.max_new_tokens < 0) throw Error("max new tokens must be >= 0");
    if (opts.prefill_chunk <= 0) throw Error("prefill chunk must be > 0");
    const std::vector<int> eos = opts.eos_ids ? *opts.eos_ids : cfg.eos_token_ids;
    Sampler sampler(opts.sampling, cfg.vocab_size);
    ctx.cache.check_room(static_cast<std::int64_t>(prompt.size()));

    GenerateResult res;
    res.prompt_tokens = static_cast<int>(prompt.size());
    res.tokens.reserve(opts.max_new_tokens);
    std::vector<int> history;
    history.reserve(opts.penalty_context.size() + prompt.size() + opts.max_new_tokens);
    history.insert(history.end(), opts.penalty_context.begin(), opts.penalty_context.end());
    history.insert(history.end(), prompt.begin(), prompt.end());
    std::vector<float> logits(cfg.vocab_size);

    const auto t0 = clock::now();
    std::span<const float> out;
    const int total = static_cast<int>(prompt.size());
    for (int done = 0; done < total;) {
        if (opts.cancel && opts.cancel->load()) {
            res.reason = StopReason::Cancelled;
            return res;
        }
        const int n = std::min(opts.prefill_chunk, total - done);
        out = model.forward(ctx, prompt.subspan(done, n), LogitsMode::Last);
        done += n;
        if (opts.on_prefill) opts.on_prefill(done, total);
    }
    auto t1 = clock::now();
    res.prefill_seconds = std::chrono::duration<double>(t1 - t0).count();
    if (opts.max_new_tokens == 0) return res;

    const std::int64_t limit = ctx.cache.capacity() > 0
                                   ? std::min<std::int64_t>(ctx.cache.capacity(), cfg.max_position_embeddings)
                                   : cfg.max_position_embeddings;
    for (int step = 0;; ++step) {
        std::copy(out.begin(), out.end(), logits.begin());
        const int next = sampler.pick(logits, history);
        GeneratedToken tok;
        describe(out, next, tok);
        res.tokens.push_back(std::move(tok));
        history.push_back(next);
        if (step == 0) {
            t1 = clock::now();
            res.prefill_seconds = std::chrono::duration<double>(t1 - t0).count();
        }
        res.decode_seconds = std::chrono::duration<double>(clock::now() - t1).count();
        if (opts.on_token && !opts.on_token(res.tokens.back())) {
            res.reason = StopReason::Callback;
            return res;
        }
        if (std::find(eos.begin(), eos.end(), next) != eos.end()) {
            res.reason = StopReason::Eos;
            return res;
        }
        if (static_cast<int>(res.tokens.size()) >= opts.max_new_tokens) {
            res.reason = StopReason::MaxTokens;
            return res;
        }
        if (opts.cancel && opts.cancel->load()) {
            res.reason = StopReason::Cancelled;
            return res;
        }
        if (ctx.cache.length() >= limit) {
            res.reason = StopReason::ContextFull;
            return res;
        }
        const int one[1] = {next};
        out = model.forward(ctx, one, LogitsMode::Last);
    }
}

}  // namespace wp
