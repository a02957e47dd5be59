// windowpane-cli bench and bench-memory: model speed (load, prefill, decode, memory) and the
// machine's memory read bandwidth, the limit of decoding.
#include "bench.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <random>
#include <sys/resource.h>
#include <thread>
#include <vector>

#include "wp/kernels/attention_kernels.h"
#include "wp/kernels/f16_vectors.h"
#include "wp/kernels/huge_pages.h"
#include "wp/kernels/ops.h"
#include "wp/kernels/thread_pool.h"
#include "wp/model/model.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace wp::cli {

namespace {

using clock_type = std::chrono::steady_clock;

double seconds_since(clock_type::time_point t) { return std::chrono::duration<double>(clock_type::now() - t).count(); }

struct Summary {
    double median = 0, min = 0, max = 0;
};

Summary summarize(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return {v[v.size() / 2], v.front(), v.back()};
}

long peak_rss_bytes() {
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss * 1024L;
}

#if defined(__x86_64__)
__attribute__((target("avx2"))) std::uint64_t sum_bytes_avx2(const std::uint8_t* p, std::size_t n) {
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
    for (std::size_t i = 0; i + 128 <= n; i += 128) {
        // 3 KB ahead, as the decode kernels fetch: the hardware prefetcher alone left this loop
        // at 26.5 GB/s with 2 threads on a machine whose decode kernels read 30-31.
        _mm_prefetch(reinterpret_cast<const char*>(p + i) + 3072, _MM_HINT_T0);
        _mm_prefetch(reinterpret_cast<const char*>(p + i) + 3072 + 64, _MM_HINT_T0);
        a0 = _mm256_xor_si256(a0, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i)));
        a1 = _mm256_xor_si256(a1, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i + 32)));
        a2 = _mm256_xor_si256(a2, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i + 64)));
        a3 = _mm256_xor_si256(a3, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i + 96)));
    }
    const __m256i x = _mm256_xor_si256(_mm256_xor_si256(a0, a1), _mm256_xor_si256(a2, a3));
    return static_cast<std::uint64_t>(_mm256_extract_epi64(x, 0) ^ _mm256_extract_epi64(x, 3));
}
#endif

}  // namespace

double measure_read_bandwidth(int threads, std::size_t bytes, int repeat) {
    // In huge pages, as the weights are: in 4 KB pages the same loop read 31-34 GB/s on a machine
    // whose f32 decoding streams weights at 40-44.
    std::vector<std::uint8_t, HugePageAllocator<std::uint8_t>> raw(bytes);
    std::uint8_t* buf = raw.data();
    for (std::size_t i = 0; i < bytes; i += 4096) buf[i] = static_cast<std::uint8_t>(i);
    ThreadPool pool(threads);
    double best = 0;
    volatile std::uint64_t sink = 0;
    for (int r = 0; r < repeat; ++r) {
        const auto t0 = clock_type::now();
        pool.parallel_for(static_cast<std::int64_t>(bytes), 1 << 20, [&](std::int64_t b, std::int64_t e) {
#if defined(__x86_64__)
            sink = sink + sum_bytes_avx2(buf + b, static_cast<std::size_t>(e - b));
#else
            std::uint64_t s = 0;
            for (std::int64_t i = b; i < e; i += 8) s ^= *reinterpret_cast<const std::uint64_t*>(buf + i);
            sink = sink + s;
#endif
        });
        best = std::max(best, bytes / seconds_since(t0));
    }
    return best;
}

int bench_memory(int threads) {
    const std::size_t bytes = std::size_t{1} << 30;
    for (int t = 1; t <= std::max(1, threads); ++t)
        std::printf("memory read bandwidth, %d thread%s: %.1f GB/s (best of 5 passes over 1 GiB)\n", t, t > 1 ? "s" : "",
                    measure_read_bandwidth(t, bytes, 5) / 1e9);
    return 0;
}

int bench_kernels(int rows, int cols, int threads, int repeat, int mb, const std::vector<Precision>& precisions,
                  int inputs, const KernelOptions& kernels) {
    // Enough distinct matrices (by default about 512 MB in f32) that every product reads from
    // memory, as in decoding; the same random values in every precision. A small --mb keeps them
    // in cache, which shows the kernels' arithmetic limit. With several input rows (a prompt)
    // the products take matmul's path for that many rows, as prompt processing does.
    const std::size_t per = static_cast<std::size_t>(rows) * cols;
    const int count = static_cast<int>(std::max<std::size_t>(1, (static_cast<std::size_t>(mb) << 20) / (per * 4)));
    std::mt19937 rng(3);
    std::normal_distribution<float> nd(0.0f, 0.05f);
    std::vector<std::uint16_t> bf(per * count);
    for (auto& v : bf) v = ops::f32_to_bf16(nd(rng));
    std::vector<float> x(static_cast<std::size_t>(cols) * inputs), y(static_cast<std::size_t>(rows) * inputs);
    for (auto& v : x) v = nd(rng) * 20;
    ThreadPool pool(threads > 0 ? threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
    if (inputs == 1)
        std::printf("matrix-vector products, %d x %d, %d matrices, %d thread%s (GB/s of weights read, median of %d passes)\n",
                    rows, cols, count, pool.size(), pool.size() > 1 ? "s" : "", repeat);
    else
        std::printf("matrix products, %d x %d weights, %d input rows, %d matrices, %d thread%s (GMAC/s, median of %d passes)\n",
                    rows, cols, inputs, count, pool.size(), pool.size() > 1 ? "s" : "", repeat);
    for (Precision p : precisions) {
        WeightStorage st;
        std::vector<QMatrix> ms;
        for (int i = 0; i < count; ++i) ms.push_back(make_qmatrix(p, rows, cols, nullptr, bf.data() + per * i, st));
        KernelScratch scratch;
        for (const auto& m : ms) matmul(m, x.data(), inputs, y.data(), pool, scratch, kernels);  // warm-up
        std::vector<double> rate;
        for (int r = 0; r < repeat; ++r) {
            const auto t0 = clock_type::now();
            for (const auto& m : ms) matmul(m, x.data(), inputs, y.data(), pool, scratch, kernels);
            const double t = seconds_since(t0);
            rate.push_back(inputs == 1 ? static_cast<double>(ms[0].bytes()) * count / t / 1e9
                                       : static_cast<double>(per) * inputs * count / t / 1e9);
        }
        const Summary s = summarize(rate);
        std::printf("  %-5s %6.1f %s (min %.1f, max %.1f)\n", precision_name(p), s.median, inputs == 1 ? "GB/s" : "GMAC/s",
                    s.min, s.max);
    }
    return 0;
}

int bench_attention(const AttentionBenchOptions& o) {
    // One cache per layer, laid out as the KV cache is (head-major: each KV head's rows
    // contiguous), so that every token reads them all from memory as decoding does.
    const int n = o.context, hd = o.head_dim;
    const std::size_t per = static_cast<std::size_t>(n) * o.kv_heads * hd, head = static_cast<std::size_t>(n) * hd;
    std::mt19937 rng(5);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    std::vector<float> k32, v32;
    std::vector<std::uint16_t> k16, v16;
    if (o.f32_cache) {
        k32.resize(per * o.layers);
        v32.resize(per * o.layers);
        for (auto& x : k32) x = nd(rng);
        for (auto& x : v32) x = nd(rng);
    } else {
        std::vector<float> tmp(per * o.layers);
        k16.resize(tmp.size());
        v16.resize(tmp.size());
        for (auto& x : tmp) x = nd(rng);
        f32_to_f16_array(tmp.data(), k16.data(), tmp.size());
        for (auto& x : tmp) x = nd(rng);
        f32_to_f16_array(tmp.data(), v16.data(), tmp.size());
    }
    std::vector<float> q(static_cast<std::size_t>(o.heads) * hd), scores(static_cast<std::size_t>(o.heads) * n),
        out(static_cast<std::size_t>(o.heads) * hd);
    for (auto& x : q) x = nd(rng);
    ThreadPool pool(o.threads > 0 ? o.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
    // As Model::attention_decode: the query heads of one KV head together, KV heads in parallel.
    const DecodeHeadSplit split(pool.size(), o.heads, o.kv_heads);
    const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
    auto token = [&] {
        for (int l = 0; l < o.layers; ++l) {
            pool.parallel_for(split.units, 1, [&](std::int64_t u0, std::int64_t u1) {
                for (std::int64_t u = u0; u < u1; ++u) {
                    const int g = split.kv_head(u), h0 = split.first_head(u), h1 = split.end_head(u);
                    float* rows = scores.data() + static_cast<std::size_t>(h0) * n;
                    const std::size_t off = per * l + head * g;
                    const float* qh = q.data() + static_cast<std::size_t>(h0) * hd;
                    if (o.f32_cache)
                        attention_scores(qh, h1 - h0, hd, k32.data() + off, hd, n, rows, n);
                    else
                        attention_scores(qh, h1 - h0, hd, k16.data() + off, hd, n, rows, n);
                    for (int h = 0; h < h1 - h0; ++h) softmax_row(rows + static_cast<std::size_t>(h) * n, n, scale, 50.0f, nullptr);
                    float* oh = out.data() + static_cast<std::size_t>(h0) * hd;
                    if (o.f32_cache)
                        attention_mix(rows, n, h1 - h0, v32.data() + off, hd, n, hd, oh);
                    else
                        attention_mix(rows, n, h1 - h0, v16.data() + off, hd, n, hd, oh);
                }
            });
        }
    };
    token();  // warm-up
    std::vector<double> ms, gbs;
    const double bytes = 2.0 * static_cast<double>(per) * o.layers * (o.f32_cache ? 4 : 2);
    for (int r = 0; r < o.repeat; ++r) {
        const auto t0 = clock_type::now();
        token();
        const double s = seconds_since(t0);
        ms.push_back(s * 1e3);
        gbs.push_back(bytes / s / 1e9);
    }
    const Summary t = summarize(ms), g = summarize(gbs);
    std::printf("decode attention, %d tokens of context, %d layers, %d heads / %d KV heads of %d, %s cache, %d thread%s\n",
                n, o.layers, o.heads, o.kv_heads, hd, o.f32_cache ? "f32" : "f16", pool.size(), pool.size() > 1 ? "s" : "");
    std::printf("  %.2f ms per token (min %.2f, max %.2f), %.1f GB/s of cache read (%.1f MB per token), median of %d\n",
                t.median, t.min, t.max, g.median, bytes / 1e6, o.repeat);
    return 0;
}

int bench(const BenchOptions& o) {
    const auto t0 = clock_type::now();
    LoadOptions lo;
    lo.precision = o.precision;
    lo.threads = o.threads;
    lo.kernels = o.kernels;
    auto model = Model::load(o.model_dir, {}, lo);
    const ModelConfig& cfg = model->config();
    std::mt19937_64 rng(7);
    std::uniform_int_distribution<int> tok(3, std::min(cfg.vocab_size, 1000) - 1);
    {
        auto ctx = model->new_context();
        const int first[1] = {tok(rng)};
        model->forward(*ctx, first, LogitsMode::Last);
    }
    const double load_s = seconds_since(t0);

    std::vector<double> prefill, decode;
    std::size_t kv_bytes = 0;
    for (int r = 0; r < std::max(1, o.repeat); ++r) {
        auto ctx = model->new_context();
        std::vector<int> prompt(static_cast<std::size_t>(o.prompt_tokens));
        for (int& t : prompt) t = tok(rng);
        auto tp = clock_type::now();
        auto logits = model->forward(*ctx, prompt, LogitsMode::Last);
        prefill.push_back(o.prompt_tokens / seconds_since(tp));
        int next = static_cast<int>(std::max_element(logits.begin(), logits.end()) - logits.begin());
        auto td = clock_type::now();
        for (int i = 0; i < o.gen_tokens; ++i) {
            const int one[1] = {next};
            logits = model->forward(*ctx, one, LogitsMode::Last);
            next = static_cast<int>(std::max_element(logits.begin(), logits.end()) - logits.begin());
        }
        decode.push_back(o.gen_tokens / seconds_since(td));
        kv_bytes = ctx->cache.bytes_used();
    }
    const Summary p = summarize(prefill), d = summarize(decode);
    const double weight_bytes = static_cast<double>(model->weight_bytes_per_token());
    if (o.json) {
        nlohmann::ordered_json j;
        j["model"] = o.model_dir;
        j["load_s"] = load_s;
        j["prefill_tok_s"] = {{"median", p.median}, {"min", p.min}, {"max", p.max}};
        j["decode_tok_s"] = {{"median", d.median}, {"min", d.min}, {"max", d.max}};
        j["peak_rss_bytes"] = peak_rss_bytes();
        j["kv_bytes"] = kv_bytes;
        j["precision"] = precision_name(model->precision());
        j["threads"] = model->threads();
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
    std::printf("precision        %s, %d threads\n", precision_name(model->precision()), model->threads());
    std::printf("load             %.2f s (to the first forward pass)\n", load_s);
    std::printf("prefill          %.1f tokens/s median (min %.1f, max %.1f) over %d runs of %d tokens\n", p.median, p.min, p.max,
                o.repeat, o.prompt_tokens);
    std::printf("decode           %.2f tokens/s median (min %.2f, max %.2f) over %d runs of %d tokens\n", d.median, d.min, d.max,
                o.repeat, o.gen_tokens);
    std::printf("weights/token    %.1f MB read per decoded token -> %.1f GB/s at the median\n", weight_bytes / 1e6,
                weight_bytes * d.median / 1e9);
    std::printf("KV cache         %.1f MB after %d tokens\n", kv_bytes / 1e6, o.prompt_tokens + o.gen_tokens);
    std::printf("peak RSS         %.1f MB\n", peak_rss_bytes() / 1e6);
    return 0;
}

}  // namespace wp::cli
