#include "wp/model/divergence.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "model/distribution.h"
#include "wp/error.h"
#include "wp/tokenizer/tokenizer.h"

namespace wp {

namespace {

constexpr std::int64_t kChunkTokens = 512;                   // tokens per forward pass, as a chat's prompt
constexpr std::size_t kReadoutFloats = std::size_t{1} << 24;  // logits per readout and model: 64 MB

// Keeps the last layer's residual rows of a pass, to be read out a slab at a time.
LayerObserver keep_last_layer(std::vector<float>& rows, int last) {
    return [&rows, last](int layer, std::span<const float> hidden) {
        if (layer == last) rows.assign(hidden.begin(), hidden.end());
    };
}

}  // namespace

Divergence diverge(const Model& a, const Model& b, std::span<const int> ids, const DivergenceOptions& options) {
    for (const Model* m : {&a, &b})
        if (m->config().head != Head::CausalLM)
            throw Error("divergence compares language models; " + m->dir().filename().string() + " has a task head");
    const int V = a.config().vocab_size;
    if (b.config().vocab_size != V)
        throw Error("the models' vocabularies differ (" + std::to_string(V) + " and " +
                    std::to_string(b.config().vocab_size) + " tokens): divergence needs one tokenizer");
    const auto T = static_cast<std::int64_t>(ids.size());
    if (T < 2) throw Error("divergence needs at least two tokens: a prediction and the token it predicts");
    const std::int64_t context = std::min(a.config().max_position_embeddings, b.config().max_position_embeddings);
    if (T > context)
        throw Error("the text has " + std::to_string(T) + " tokens but the models' context holds " + std::to_string(context));
    // The last id is never run (it predicts nothing) but is read as the next token: check them all.
    for (int id : ids)
        if (id < 0 || id >= V)
            throw Error("token id " + std::to_string(id) + " is outside the vocabulary (0.." + std::to_string(V - 1) + ")");
    if (options.top_k < 1 || options.top_k > 100 || options.top_k > V)
        throw Error("top-k must be between 1 and " + std::to_string(std::min(100, V)));

    const int K = options.top_k;
    Divergence d;
    d.top_k = K;
    const std::size_t P = static_cast<std::size_t>(T - 1);
    d.positions.resize(P);
    d.top_ids_a.resize(P * K);
    d.top_ids_b.resize(P * K);
    d.top_probs_a.resize(P * K);
    d.top_probs_b.resize(P * K);

    // Passes of 512 tokens keep the products efficient; their logits (a 256k vocabulary: 0.5 GB a
    // pass and model) are made from the last layer's rows a slab at a time.
    // One model twice (a check, or two names for one load): one pass gives both sides.
    const bool same = &a == &b;
    auto ctx_a = a.new_context(a.default_cache());
    auto ctx_b = same ? nullptr : b.new_context(b.default_cache());
    auto readout_a = a.new_context(CacheKind::Dynamic);
    auto readout_b = same ? nullptr : b.new_context(CacheKind::Dynamic);
    const std::size_t Ha = static_cast<std::size_t>(a.config().hidden_size), Hb = static_cast<std::size_t>(b.config().hidden_size);
    const std::int64_t slab = std::clamp<std::int64_t>(static_cast<std::int64_t>(kReadoutFloats / V), 1, 256);
    std::vector<float> hidden_a, hidden_b;
    // The last token predicts nothing in the text: it is not run.
    for (std::int64_t start = 0; start < T - 1; start += kChunkTokens) {
        if (options.cancel != nullptr && options.cancel->load()) throw Cancelled();
        const std::int64_t n = std::min(kChunkTokens, T - 1 - start);
        const auto part = ids.subspan(static_cast<std::size_t>(start), static_cast<std::size_t>(n));
        a.forward(*ctx_a, part, LogitsMode::Last, nullptr, keep_last_layer(hidden_a, a.config().num_layers - 1));
        if (options.cancel != nullptr && options.cancel->load()) throw Cancelled();
        if (!same) b.forward(*ctx_b, part, LogitsMode::Last, nullptr, keep_last_layer(hidden_b, b.config().num_layers - 1));
        for (std::int64_t r0 = 0; r0 < n; r0 += slab) {
            if (options.cancel != nullptr && options.cancel->load()) throw Cancelled();
            const std::size_t rows = static_cast<std::size_t>(std::min(slab, n - r0));
            const auto la = a.read_out(*readout_a, std::span<const float>(hidden_a).subspan(static_cast<std::size_t>(r0) * Ha, rows * Ha));
            const auto lb = same ? la : b.read_out(*readout_b, std::span<const float>(hidden_b).subspan(static_cast<std::size_t>(r0) * Hb, rows * Hb));
            for_rows(static_cast<int>(rows), a.threads(), [&](int row_begin, int row_end) {
                std::vector<float> values(K);
                for (int r = row_begin; r < row_end; ++r) {
                    const std::size_t t = static_cast<std::size_t>(start + r0 + r);
                    const float* za = la.data() + static_cast<std::size_t>(r) * V;
                    const float* zb = lb.data() + static_cast<std::size_t>(r) * V;
                    const PairStats st = pair_stats(za, zb, V);
                    TokenDivergence& row = d.positions[t];
                    row.kl = st.kl;
                    const int next = ids[t + 1];
                    row.logprob_a = za[next] - st.lse_a;
                    row.logprob_b = zb[next] - st.lse_b;
                    top_k(za, V, K, d.top_ids_a.data() + t * K, values.data());
                    for (int k = 0; k < K; ++k) d.top_probs_a[t * K + k] = static_cast<float>(std::exp(values[k] - st.lse_a));
                    top_k(zb, V, K, d.top_ids_b.data() + t * K, values.data());
                    for (int k = 0; k < K; ++k) d.top_probs_b[t * K + k] = static_cast<float>(std::exp(values[k] - st.lse_b));
                    row.same_top = d.top_ids_a[t * K] == d.top_ids_b[t * K];
                }
            });
            if (options.progress)
                options.progress(static_cast<double>(start + r0 + static_cast<std::int64_t>(rows)) / static_cast<double>(T - 1));
        }
    }
    d.summary = summarize_divergence(d.positions);
    return d;
}

DivergenceSummary summarize_divergence(std::span<const TokenDivergence> positions) {
    DivergenceSummary s;
    const std::size_t n = positions.size();
    s.tokens = static_cast<int>(n);
    if (n == 0) return s;
    std::vector<double> kl(n);
    double sum = 0, sum2 = 0, lp_a = 0, lp_b = 0;
    std::size_t same = 0;
    for (std::size_t i = 0; i < n; ++i) {
        kl[i] = positions[i].kl;
        sum += kl[i];
        sum2 += kl[i] * kl[i];
        lp_a += positions[i].logprob_a;
        lp_b += positions[i].logprob_b;
        same += positions[i].same_top ? 1 : 0;
    }
    std::sort(kl.begin(), kl.end());
    const double dn = static_cast<double>(n);
    s.mean_kl = sum / dn;
    s.median_kl = n % 2 == 1 ? kl[n / 2] : 0.5 * (kl[n / 2 - 1] + kl[n / 2]);
    s.p99_kl = kl[static_cast<std::size_t>(std::ceil(0.99 * dn)) - 1];
    s.max_kl = kl.back();
    s.same_top = static_cast<double>(same) / dn;
    s.ppl_a = std::exp(-lp_a / dn);
    s.ppl_b = std::exp(-lp_b / dn);
    s.ppl_ratio = s.ppl_b / s.ppl_a;
    // The standard error of the mean, with the sample variance (n - 1), as llama.cpp reports it.
    s.mean_kl_error = n > 1 ? std::sqrt(std::max(0.0, (sum2 / dn - s.mean_kl * s.mean_kl) / (dn - 1))) : 0.0;
    return s;
}

void check_same_vocabulary(const Tokenizer& a, const Tokenizer& b) {
    if (a.vocab_size() != b.vocab_size())
        throw Error("the models' tokenizers differ: " + std::to_string(a.vocab_size()) + " and " +
                    std::to_string(b.vocab_size()) + " tokens; divergence compares the same tokens only");
    for (int id = 0; id < a.vocab_size(); ++id)
        if (a.piece(id) != b.piece(id))
            throw Error("the models' tokenizers differ at token " + std::to_string(id) + " (\"" + a.piece(id) +
                        "\" and \"" + b.piece(id) + "\"); divergence compares the same tokens only");
}

}  // namespace wp
