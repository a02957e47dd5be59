#include "bench_depths.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <random>
#include <span>

#include "wp/bench/kernel_bench.h"
#include "wp/error.h"
#include "wp/generate/generator.h"
#include "wp/generate/sampler.h"
#include "wp/model/model.h"

namespace wp::cli {

namespace {

using clock_type = std::chrono::steady_clock;

}  // namespace

int bench_depths(const BenchDepthsOptions& o) {
    if (o.depths.empty()) throw Error("bench-depths: no depths given");
    auto model = load_bench_model(o);
    const ModelConfig& cfg = model->config();
    std::mt19937_64 rng(7);
    std::uniform_int_distribution<int> tok(3, std::min(cfg.vocab_size, 1000) - 1);
    const std::size_t n = o.depths.size(), chunk = static_cast<std::size_t>(GenerateOptions{}.prefill_chunk);

    std::vector<std::unique_ptr<Context>> ctx;
    for (std::size_t d = 0; d < n; ++d) ctx.push_back(model->new_context());
    std::vector<std::vector<double>> tok_s(n), ratio(n);
    std::vector<double> slowest(n, 0.0);
    std::vector<int> next(n);
    std::vector<double> seconds(n);
    for (int r = 0; r < o.repeat; ++r) {
        for (std::size_t d = 0; d < n; ++d) {
            ctx[d]->cache.clear();
            std::vector<int> prompt(static_cast<std::size_t>(o.depths[d]));
            for (int& t : prompt) t = tok(rng);
            std::span<const float> logits;
            for (std::size_t i = 0; i < prompt.size(); i += chunk)
                logits = model->forward(*ctx[d], std::span<const int>(prompt).subspan(i, std::min(chunk, prompt.size() - i)),
                                        LogitsMode::Last);
            next[d] = greedy_token(logits);
            seconds[d] = 0;
        }
        for (int i = 0; i < o.gen_tokens; ++i)
            for (std::size_t d = 0; d < n; ++d) {
                const auto t0 = clock_type::now();
                const int one[1] = {next[d]};
                const auto logits = model->forward(*ctx[d], one, LogitsMode::Last);
                next[d] = greedy_token(logits);
                const double s = std::chrono::duration<double>(clock_type::now() - t0).count();
                seconds[d] += s;
                slowest[d] = std::max(slowest[d], s);
            }
        for (std::size_t d = 0; d < n; ++d) {
            tok_s[d].push_back(o.gen_tokens / seconds[d]);
            ratio[d].push_back(seconds[0] / seconds[d]);
        }
    }

    nlohmann::ordered_json rows = nlohmann::ordered_json::array();
    if (!o.json)
        std::printf("decode after each depth, %s, %s cache, %d threads, %d tokens per depth, steps taking turns, %d run%s\n"
                    "| depth | decode tokens/s (min-max) | against depth %d | slowest step ms |\n|---|---|---|---|\n",
                    precision_name(model->precision()), kv_type_name(model->kv_type()), model->threads(), o.gen_tokens,
                    o.repeat, o.repeat > 1 ? "s" : "", o.depths[0]);
    for (std::size_t d = 0; d < n; ++d) {
        const bench::Spread t = bench::summarize(tok_s[d]), q = bench::summarize(ratio[d]);
        if (o.json)
            rows.push_back({{"depth", o.depths[d]},
                            {"decode_tok_s", {{"median", t.median}, {"min", t.min}, {"max", t.max}}},
                            {"ratio_to_first", q.median},
                            {"slowest_decode_step_ms", slowest[d] * 1e3}});
        else
            std::printf("| %d | %.2f (%.2f-%.2f) | %.3f | %.1f |\n", o.depths[d], t.median, t.min, t.max, q.median,
                        slowest[d] * 1e3);
    }
    if (o.json) {
        nlohmann::ordered_json j;
        j["model"] = o.model_dir;
        j["precision"] = precision_name(model->precision());
        j["kv"] = kv_type_name(model->kv_type());
        j["threads"] = model->threads();
        j["gen_tokens"] = o.gen_tokens;
        j["repeat"] = o.repeat;
        j["depths"] = rows;
        std::printf("%s\n", j.dump().c_str());
    }
    return 0;
}

}  // namespace wp::cli
