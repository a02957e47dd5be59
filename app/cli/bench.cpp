// windowpane-cli bench, bench-memory, bench-kernels and bench-attention: model speed (load,
// prefill, decode, memory), the machine's memory read bandwidth (the limit of decoding), and
// the kernels alone (core's wp/bench/kernel_bench.h runs them; this file prints).
#include "bench.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <random>
#include <span>
#include <sys/resource.h>
#include <vector>

#include "decode_kernels.h"
#include "wp/generate/generator.h"
#include "wp/generate/sampler.h"
#include "wp/model/decode_kernel_choice.h"
#include "wp/model/model.h"

namespace wp::cli {

namespace {

using clock_type = std::chrono::steady_clock;

double seconds_since(clock_type::time_point t) { return std::chrono::duration<double>(clock_type::now() - t).count(); }

using bench::Spread;
using bench::summarize;

long peak_rss_bytes() {
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss * 1024L;
}

}  // namespace

int bench_memory(int threads) {
    const std::size_t bytes = std::size_t{1} << 30;
    for (int t = 1; t <= std::max(1, threads); ++t)
        std::printf("memory read bandwidth, %d thread%s: %.1f GB/s (best of 5 passes over 1 GiB)\n", t, t > 1 ? "s" : "",
                    bench::measure_read_bandwidth(t, bytes, 5) / 1e9);
    return 0;
}

int bench_kernels(const bench::KernelBenchOptions& o, const std::vector<Precision>& precisions) {
    bench::KernelBench kb(o);
    const int threads = kb.threads();
    if (o.inputs == 1)
        std::printf("matrix-vector products, %d x %d, %d matrices, %d thread%s (GB/s of weights read, median of %d passes)\n",
                    o.rows, o.cols, kb.matrices(), threads, threads > 1 ? "s" : "", o.repeat);
    else
        std::printf("matrix products, %d x %d weights, %d input rows, %d matrices, %d thread%s (GMAC/s, median of %d passes)\n",
                    o.rows, o.cols, o.inputs, kb.matrices(), threads, threads > 1 ? "s" : "", o.repeat);
    for (Precision p : precisions) {
        const Spread s = kb.run(p);
        std::printf("  %-5s %6.1f %s (min %.1f, max %.1f)\n", precision_name(p), s.median, o.inputs == 1 ? "GB/s" : "GMAC/s",
                    s.min, s.max);
    }
    return 0;
}

int bench_attention(const bench::AttentionBenchOptions& o) {
    const bench::AttentionBenchResult r = bench::run_attention_bench(o);
    const Spread& t = r.ms_per_token;
    std::printf("decode attention, %d tokens of context, %d layers, %d heads / %d KV heads of %d, %s cache, %d thread%s\n",
                o.context, o.layers, o.heads, o.kv_heads, o.head_dim, kv_type_name(o.kv), r.threads,
                r.threads > 1 ? "s" : "");
    std::printf("  %.2f ms per token (min %.2f, max %.2f), %.1f GB/s of cache read (%.1f MB per token), median of %d\n",
                t.median, t.min, t.max, r.gb_per_s.median, r.bytes_per_token / 1e6, o.repeat);
    return 0;
}

std::unique_ptr<Model> load_bench_model(const BenchModelOptions& o) {
    LoadOptions lo;
    lo.precision = o.precision;
    lo.kv_cache = o.kv;
    lo.threads = o.threads;
    lo.kernels = o.kernels;
    if (o.decode_choice) lo = with_decode_choice(lo);
    auto model = Model::load(o.model_dir, {}, lo);
    note_decode_choice(*model);
    return model;
}

int bench(const BenchOptions& o) {
    const auto t0 = clock_type::now();
    auto model = load_bench_model(o);
    const ModelConfig& cfg = model->config();
    std::mt19937_64 rng(7);
    std::uniform_int_distribution<int> tok(3, std::min(cfg.vocab_size, 1000) - 1);
    // One context for every run, its cache cleared before each (as llama-bench clears its memory):
    // a chat keeps its context's buffers too, so their first-touch page faults are not timed.
    auto ctx = model->new_context();
    {
        const int first[1] = {tok(rng)};
        model->forward(*ctx, first, LogitsMode::Last);
    }
    const double load_s = seconds_since(t0);
    {
        // Warm-up, as llama-bench: one prompt batch, then one token.
        ctx->cache.clear();
        std::vector<int> warm(static_cast<std::size_t>(std::min(o.prompt_tokens, 512)));
        for (int& t : warm) t = tok(rng);
        model->forward(*ctx, warm, LogitsMode::Last);
        const int one[1] = {tok(rng)};
        model->forward(*ctx, one, LogitsMode::Last);
    }

    std::vector<double> prefill, decode;
    double slowest_step = 0;  // a stall (the cache growing, say) shows here, not in the median
    std::size_t kv_bytes = 0;
    // Prompts go in the chunks a chat feeds them in (the generator's prefill chunk).
    const std::size_t chunk = static_cast<std::size_t>(GenerateOptions{}.prefill_chunk);
    for (int r = 0; r < std::max(1, o.repeat); ++r) {
        ctx->cache.clear();
        std::vector<int> prompt(static_cast<std::size_t>(o.prompt_tokens));
        for (int& t : prompt) t = tok(rng);
        auto tp = clock_type::now();
        std::span<const float> logits;
        for (std::size_t i = 0; i < prompt.size(); i += chunk)
            logits = model->forward(*ctx, std::span<const int>(prompt).subspan(i, std::min(chunk, prompt.size() - i)),
                                    LogitsMode::Last);
        prefill.push_back(o.prompt_tokens / seconds_since(tp));
        int next = greedy_token(logits);
        auto td = clock_type::now();
        for (int i = 0; i < o.gen_tokens; ++i) {
            const auto ts = clock_type::now();
            const int one[1] = {next};
            logits = model->forward(*ctx, one, LogitsMode::Last);
            next = greedy_token(logits);
            slowest_step = std::max(slowest_step, seconds_since(ts));
        }
        decode.push_back(o.gen_tokens / seconds_since(td));
        kv_bytes = ctx->cache.bytes_used();
    }
    const Spread p = summarize(prefill), d = summarize(decode);
    const double weight_bytes = static_cast<double>(model->weight_bytes_per_token());
    if (o.json) {
        nlohmann::ordered_json j;
        j["model"] = o.model_dir;
        j["load_s"] = load_s;
        j["prefill_tok_s"] = {{"median", p.median}, {"min", p.min}, {"max", p.max}};
        j["decode_tok_s"] = {{"median", d.median}, {"min", d.min}, {"max", d.max}};
        j["slowest_decode_step_ms"] = slowest_step * 1e3;
        j["peak_rss_bytes"] = peak_rss_bytes();
        j["kv_bytes"] = kv_bytes;
        j["precision"] = precision_name(model->precision());
        j["kv"] = kv_type_name(model->kv_type());
        j["threads"] = model->threads();
        j["decode_kernels"] = decode_kernel_set(model->kernels(), model->precision());
        j["prompt_tokens"] = o.prompt_tokens;
        j["gen_tokens"] = o.gen_tokens;
        j["repeat"] = o.repeat;
        j["weight_bytes_per_token"] = weight_bytes;
        j["decode_read_gb_s"] = weight_bytes * d.median / 1e9;
        std::printf("%s\n", j.dump().c_str());
        return 0;
    }
    std::printf("model            %s (%s, %lld parameters)\n", o.model_dir.c_str(), family_name(cfg.family),
                static_cast<long long>(model->parameter_count()));
    std::printf("precision        %s, %d threads, %s decode kernels\n", precision_name(model->precision()), model->threads(),
                decode_kernel_set(model->kernels(), model->precision()));
    std::printf("load             %.2f s (to the first forward pass)\n", load_s);
    std::printf("prefill          %.1f tokens/s median (min %.1f, max %.1f) over %d runs of %d tokens\n", p.median, p.min, p.max,
                o.repeat, o.prompt_tokens);
    std::printf("decode           %.2f tokens/s median (min %.2f, max %.2f) over %d runs of %d tokens\n", d.median, d.min, d.max,
                o.repeat, o.gen_tokens);
    std::printf("slowest step     %.1f ms (of every decoded token in every run)\n", slowest_step * 1e3);
    std::printf("weights/token    %.1f MB read per decoded token -> %.1f GB/s at the median\n", weight_bytes / 1e6,
                weight_bytes * d.median / 1e9);
    std::printf("KV cache         %.1f MB after %d tokens (%s)\n", kv_bytes / 1e6, o.prompt_tokens + o.gen_tokens,
                kv_type_name(model->kv_type()));
    std::printf("peak RSS         %.1f MB\n", peak_rss_bytes() / 1e6);
    return 0;
}

}  // namespace wp::cli
