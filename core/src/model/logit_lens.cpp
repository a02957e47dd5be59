#include "wp/model/logit_lens.h"

#include <algorithm>
#include <string>

#include "model/distribution.h"
#include "wp/error.h"

namespace wp {

namespace {

constexpr std::int64_t kChunkTokens = 512;             // tokens per forward pass: bounds its scratch
constexpr std::size_t kReadoutFloats = std::size_t{1} << 24;  // logits per readout: 64 MB

}  // namespace

LogitLens logit_lens(const Model& model, std::span<const int> ids, const LensOptions& options) {
    const ModelConfig& c = model.config();
    if (c.head != Head::CausalLM) throw Error("the logit lens needs a language model; this one has a task head");
    const auto T = static_cast<std::int64_t>(ids.size());
    if (T == 0) throw Error("the logit lens needs at least one token");
    if (T > c.max_position_embeddings)
        throw Error("the text has " + std::to_string(T) + " tokens but the model's context holds " +
                    std::to_string(c.max_position_embeddings));
    if (options.top_k < 1 || options.top_k > LensOptions::kMaxTopK || options.top_k > c.vocab_size)
        throw Error("top-k must be between 1 and " + std::to_string(std::min(LensOptions::kMaxTopK, c.vocab_size)));
    if (options.first < 0 || options.first >= T || options.count == 0 || options.count > T - options.first)
        throw Error("positions from " + std::to_string(options.first) + (options.count > 0 ? ", " + std::to_string(options.count) + " of them," : "") +
                    " are outside the text's 0 .. " + std::to_string(T - 1));
    const std::int64_t count = options.count < 0 ? T - options.first : options.count;
    for (int id : ids)
        if (id < 0 || id >= c.vocab_size)
            throw Error("token id " + std::to_string(id) + " is outside the vocabulary (0.." + std::to_string(c.vocab_size - 1) + ")");

    LogitLens lens;
    lens.layers = c.num_layers;
    lens.positions = static_cast<int>(count);
    lens.top_k = options.top_k;
    lens.first = options.first;
    const std::size_t cells = static_cast<std::size_t>(lens.layers) * lens.positions;
    lens.top_ids.resize(cells * lens.top_k);
    lens.top_logprobs.resize(cells * lens.top_k);
    lens.entropy.resize(cells);

    const int V = c.vocab_size, H = c.hidden_size, K = lens.top_k;
    const std::int64_t end = options.first + count;
    // Tokens after the last position read out change nothing before it (causal): not run.
    auto ctx = model.new_context(model.default_cache());
    auto readout = model.new_context(CacheKind::Dynamic);
    const std::int64_t readout_rows = std::clamp<std::int64_t>(static_cast<std::int64_t>(kReadoutFloats / V), 1, 256);
    const std::int64_t chunks = (end + kChunkTokens - 1) / kChunkTokens;
    for (std::int64_t start = 0, chunk = 0; start < end; start += kChunkTokens, ++chunk) {
        const std::int64_t n = std::min(kChunkTokens, end - start);
        if (options.cancel != nullptr && options.cancel->load()) throw Cancelled();
        const std::int64_t lo = std::max(start, options.first), hi = std::min(start + n, end);
        const LayerObserver observe = [&](int layer, std::span<const float> hidden) {
            if (options.cancel != nullptr && options.cancel->load()) throw Cancelled();
            for (std::int64_t r0 = lo; r0 < hi; r0 += readout_rows) {
                const std::int64_t rows = std::min(readout_rows, hi - r0);
                const auto logits = model.read_out(
                    *readout, hidden.subspan(static_cast<std::size_t>(r0 - start) * H, static_cast<std::size_t>(rows) * H));
                for_rows(static_cast<int>(rows), model.threads(), [&](int row_begin, int row_end) {
                    std::vector<float> values(K);
                    for (int r = row_begin; r < row_end; ++r) {
                        const float* z = logits.data() + static_cast<std::size_t>(r) * V;
                        const std::size_t cell = lens.cell(layer, static_cast<int>(r0 + r - options.first));
                        const RowStats st = row_stats(z, V);
                        top_k(z, V, K, lens.top_ids.data() + cell * K, values.data());
                        for (int k = 0; k < K; ++k)
                            lens.top_logprobs[cell * K + k] = static_cast<float>(values[k] - st.lse);
                        lens.entropy[cell] = static_cast<float>(st.entropy);
                    }
                });
            }
            if (options.progress)
                options.progress((static_cast<double>(chunk) + (layer + 1.0) / c.num_layers) / static_cast<double>(chunks));
        };
        model.forward(*ctx, ids.subspan(static_cast<std::size_t>(start), static_cast<std::size_t>(n)), LogitsMode::Last,
                      nullptr, observe);
    }
    return lens;
}

}  // namespace wp
