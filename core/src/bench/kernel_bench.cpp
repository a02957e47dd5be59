#include "wp/bench/kernel_bench.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "wp/io/float16.h"
#include "attention/self_attention.h"
#include "kernels/attention_kernels.h"
#include "kernels/f16_vectors.h"
#include "kernels/huge_pages.h"
#include "kernels/qmatrix.h"
#include "kernels/thread_pool.h"
#include "wp/model/threads.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace wp::bench {

namespace {

using clock_type = std::chrono::steady_clock;

double seconds_since(clock_type::time_point t) { return std::chrono::duration<double>(clock_type::now() - t).count(); }

int pool_threads(int threads) { return threads > 0 ? threads : default_thread_count(); }

#if defined(__x86_64__)
__attribute__((target("avx2"))) std::uint64_t sum_bytes_avx2(const std::uint8_t* p, std::size_t n) {
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
    for (std::size_t i = 0; i + 128 <= n; i += 128) {
        // 3 KB ahead, as the decode kernels fetch: the hardware prefetcher alone reads less than
        // the kernels do.
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
    // In huge pages, as the weights are (4 KB pages read measurably slower).
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

// Enough distinct matrices (by default about 512 MB in f32) that every product reads from
// memory, as in decoding; the same random values in every precision. A small `mb` keeps them in
// cache, which shows the kernels' arithmetic limit. With several input rows the products take
// matmul's path for that many rows, as prompt processing does.
struct KernelBench::State {
    KernelBenchOptions o;
    std::size_t per = 0;  // weights per matrix
    int count = 0;
    // In huge pages, as a model's weights are (bf16 is used in place, so its kernel reads these).
    std::vector<std::uint16_t, HugePageAllocator<std::uint16_t>> bf;
    std::vector<float> x, y;
    ThreadPool pool;
    explicit State(const KernelBenchOptions& options) : o(options), pool(pool_threads(options.threads)) {}
};

KernelBench::KernelBench(const KernelBenchOptions& options) : state_(std::make_unique<State>(options)) {
    State& s = *state_;
    s.per = static_cast<std::size_t>(options.rows) * options.cols;
    s.count = static_cast<int>(std::max<std::size_t>(1, (static_cast<std::size_t>(options.mb) << 20) / (s.per * 4)));
    std::mt19937 rng(3);
    std::normal_distribution<float> nd(0.0f, 0.05f);
    s.bf.resize(s.per * s.count);
    for (auto& v : s.bf) v = f32_to_bf16(nd(rng));
    s.x.resize(static_cast<std::size_t>(options.cols) * options.inputs);
    s.y.resize(static_cast<std::size_t>(options.rows) * options.inputs);
    for (auto& v : s.x) v = nd(rng) * 20;
}

KernelBench::~KernelBench() = default;

int KernelBench::matrices() const { return state_->count; }
int KernelBench::threads() const { return state_->pool.size(); }

Spread KernelBench::run(Precision precision) {
    State& s = *state_;
    const KernelBenchOptions& o = s.o;
    WeightStorage st;
    std::vector<QMatrix> ms;
    for (int i = 0; i < s.count; ++i)
        ms.push_back(make_qmatrix(precision, o.rows, o.cols, nullptr, s.bf.data() + s.per * i, st));
    KernelScratch scratch;
    for (const auto& m : ms) matmul(m, s.x.data(), o.inputs, s.y.data(), s.pool, scratch, o.kernels);  // warm-up
    std::vector<double> rate;
    for (int r = 0; r < o.repeat; ++r) {
        const auto t0 = clock_type::now();
        for (const auto& m : ms) matmul(m, s.x.data(), o.inputs, s.y.data(), s.pool, scratch, o.kernels);
        const double t = seconds_since(t0);
        rate.push_back(o.inputs == 1 ? static_cast<double>(ms[0].bytes()) * s.count / t / 1e9
                                     : static_cast<double>(s.per) * o.inputs * s.count / t / 1e9);
    }
    return summarize(rate);
}

AttentionBenchResult run_attention_bench(const AttentionBenchOptions& o) {
    // The engine's own decode attention over a KV cache of the given type, full in every layer,
    // so that every token reads it all from memory as decoding does.
    ModelConfig c;
    c.num_layers = o.layers;
    c.num_heads = o.heads;
    c.num_kv_heads = o.kv_heads;
    c.head_dim = o.head_dim;
    c.attn_scale = 1.0f / std::sqrt(static_cast<float>(o.head_dim));
    c.attn_softcap = o.softcap;  // gemma2's tanh is part of its work; qwen2 has none
    c.layer_masks.assign(o.layers, MaskSpec{});
    const int n = o.context, KD = c.kv_dim();
    KvCache cache(c, CacheKind::Static, n + 1, o.kv);
    std::mt19937 rng(5);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    constexpr int kChunk = 256;
    std::vector<float> k(static_cast<std::size_t>(kChunk) * KD), v(k.size());
    for (int t = 0; t < n; t += kChunk) {
        const int m = std::min(kChunk, n - t);
        for (int l = 0; l < o.layers; ++l) {
            for (auto& x : k) x = nd(rng);
            for (auto& x : v) x = nd(rng);
            cache.store(l, k.data(), v.data(), m);
        }
        cache.advance(m);
    }
    std::vector<float> q(static_cast<std::size_t>(o.heads) * o.head_dim), out(q.size());
    for (auto& x : q) x = nd(rng);
    ThreadPool pool(pool_threads(o.threads));
    AttentionScratch scratch;
    const KernelOptions& kernels = o.kernels;
    auto token = [&] {
        for (int l = 0; l < o.layers; ++l)
            decode_attention({c, cache, l, n, 1, q.data(), k.data(), v.data(), out.data(), nullptr, kernels}, pool, scratch);
    };
    token();  // warm-up
    std::vector<double> ms, gbs;
    const double bytes = static_cast<double>(cache.bytes_used());
    for (int r = 0; r < o.repeat; ++r) {
        const auto t0 = clock_type::now();
        token();
        const double s = seconds_since(t0);
        ms.push_back(s * 1e3);
        gbs.push_back(bytes / s / 1e9);
    }
    AttentionBenchResult result;
    result.ms_per_token = summarize(ms);
    result.gb_per_s = summarize(gbs);
    result.bytes_per_token = bytes;
    result.threads = pool.size();
    return result;
}

Spread summarize(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return {v[v.size() / 2], v.front(), v.back()};
}

}  // namespace wp::bench
