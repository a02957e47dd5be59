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
    const float lse = log_sum_exp(logits);
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

void prompt_lookup_draft(std::span<const int> history, int ngram, int max_tokens, std::span<const int> stop,
                         std::vector<int>& draft) {
    draft.clear();
    const int n = static_cast<int>(history.size());
    if (max_tokens <= 0) return;
    for (int size = std::min(ngram, n - 1); size >= 1; --size) {
        const int* tail = history.data() + n - size;
        for (int at = 0; at + size < n; ++at) {  // a match that has at least one token after it
            if (!std::equal(tail, tail + size, history.data() + at)) continue;
            const int from = at + size, to = std::min(n, from + max_tokens);
            for (int i = from; i < to; ++i) {
                if (std::find(stop.begin(), stop.end(), history[i]) != stop.end()) break;
                draft.push_back(history[i]);
            }
            if (!draft.empty()) return;
        }
    }
}

GenerateResult generate(const Model& model, Context& ctx, std::span<const int> prompt,
                        const GenerateOptions& opts) {
    using clock = std::chrono::steady_clock;
    const ModelConfig& cfg = model.config();
    if (cfg.head != Head::CausalLM)
        throw Error(model.dir().string() + ": " + cfg.architecture + " is a " + head_name(cfg.head) +
                    " model; only a causal language model generates text");
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
    // Prompt lookup needs a choice that depends only on the logits and the history (greedy, with
    // or without a repetition penalty): a sampled token would not be the same one twice.
    const int lookup = opts.sampling.greedy ? std::max(0, opts.prompt_lookup_tokens) : 0;
    // Drafts are checked with the kernels a single token takes, so that a row's choice is the
    // one decoding would make (the products for many rows round their inputs to bf16 or int8).
    struct DecodeRows {
        Context& c;
        int saved;
        ~DecodeRows() { c.decode_kernel_rows = saved; }
    } restore{ctx, ctx.decode_kernel_rows};
    if (lookup > 0) ctx.decode_kernel_rows = lookup + 1;
    std::vector<int> draft, fed;
    draft.reserve(lookup);
    fed.reserve(lookup + 1);
    // The draft's length adapts: a pass over many rows costs more than one token where the
    // product is compute-bound, so after a draft the model rejected early the next is short
    // (the tokens it took, plus one); it starts at two and doubles, up to `lookup`, while drafts
    // are taken whole.
    int budget = std::min(lookup, 2);
    // A draft whose first token the model rejects cost a wider pass for nothing. After such a miss
    // the next 1, 3, 7, then 15 tokens are decoded without drafts (consecutive misses doubling the
    // pause; any draft token taken ends it), so a reply that does not quote its context decodes at
    // nearly the plain rate.
    int misses = 0, pause = 0;
    const std::size_t V = static_cast<std::size_t>(cfg.vocab_size);
    auto choose = [&](std::span<const float> row) { return sampler.pick(row, history, logits); };
    // Reports the token chosen from a row of logits that followed `held` cached tokens; true when
    // generation ends there.
    auto take = [&](std::span<const float> row, int next, std::int64_t held) {
        GeneratedToken tok;
        describe(row, next, tok);
        res.tokens.push_back(std::move(tok));
        history.push_back(next);
        if (res.tokens.size() == 1) {
            t1 = clock::now();
            res.prefill_seconds = std::chrono::duration<double>(t1 - t0).count();
        }
        res.decode_seconds = std::chrono::duration<double>(clock::now() - t1).count();
        if (opts.on_token && !opts.on_token(res.tokens.back())) {
            res.reason = StopReason::Callback;
            return true;
        }
        if (std::find(eos.begin(), eos.end(), next) != eos.end()) {
            res.reason = StopReason::Eos;
            return true;
        }
        if (static_cast<int>(res.tokens.size()) >= opts.max_new_tokens) {
            res.reason = StopReason::MaxTokens;
            return true;
        }
        if (opts.cancel && opts.cancel->load()) {
            res.reason = StopReason::Cancelled;
            return true;
        }
        if (held >= limit) {
            res.reason = StopReason::ContextFull;
            return true;
        }
        return false;
    };
    int pending = -1;  // a token already chosen from `out` (where a draft was cut)
    for (;;) {
        const int next = pending >= 0 ? pending : choose(out);
        pending = -1;
        if (take(out, next, ctx.cache.length())) return res;
        // Room for the draft: the tokens still wanted after `next`, and the context.
        const std::int64_t room = std::min<std::int64_t>(opts.max_new_tokens - static_cast<int>(res.tokens.size()),
                                                         limit - ctx.cache.length() - 1);
        if (pause > 0) {
            --pause;
            draft.clear();
        } else if (lookup > 0 && room > 0)
            prompt_lookup_draft(history, opts.prompt_lookup_ngram, static_cast<int>(std::min<std::int64_t>(budget, room)),
                                eos, draft);
        else
            draft.clear();
        if (draft.empty() || !ctx.cache.keep_for_rewind(static_cast<int>(draft.size()) + 1)) {
            const int one[1] = {next};
            out = model.forward(ctx, one, LogitsMode::Last);
            continue;
        }
        // `next` and the draft in one pass: row i holds the logits after fed[i]. Each draft token
        // the model would have chosen itself is taken; the first it would not have ends the run,
        // and the cache goes back to the tokens taken.
        const std::int64_t base = ctx.cache.length();
        fed.assign(1, next);
        fed.insert(fed.end(), draft.begin(), draft.end());
        const std::span<const float> rows = model.forward(ctx, fed, LogitsMode::All);
        res.drafted += static_cast<int>(draft.size());
        std::size_t i = 0;  // rows taken from: fed[0..i] are the tokens kept
        for (; i < draft.size(); ++i) {
            const std::span<const float> row = rows.subspan(i * V, V);
            const int chosen = choose(row);
            if (chosen != draft[i]) {
                pending = chosen;
                break;
            }
            ++res.accepted;
            if (take(row, chosen, base + static_cast<std::int64_t>(i) + 1)) {
                ctx.cache.truncate(base + static_cast<std::int64_t>(i) + 1);
                return res;
            }
        }
        ctx.cache.truncate(base + static_cast<std::int64_t>(i) + 1);
        budget = i == draft.size() ? std::min(lookup, 2 * budget) : static_cast<int>(i) + 1;
        misses = i == 0 ? std::min(misses + 1, 4) : 0;
        pause = (1 << misses) - 1;
        out = rows.subspan(i * V, V);
    }
}

}  // namespace wp
