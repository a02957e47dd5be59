// Benchmark commands: bench, bench-depths, bench-batch, bench-memory, bench-attention,
// bench-kernels, synth and bench-tokenize. Each turns its arguments into the options of the
// functions in bench.h, bench_depths.h, bench_batch.h, bench_tokenize.h and synth.h; the parsing
// of every benchmark option is here.
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "bench.h"
#include "bench_batch.h"
#include "bench_depths.h"
#include "decode_kernels.h"
#include "kv_divergence.h"
#include "bench_tokenize.h"
#include "command.h"
#include "model_argument.h"
#include "synth.h"
#include "wp/bench/kernel_bench.h"

namespace wp::cli {

namespace {

// --no-int8-gemm, --no-bf16-gemm, --no-amx, --no-int8-queries, --no-int16-probabilities and --avx2 of
// bench, bench-kernels and bench-attention. --avx2: our kernels as a CPU
// without AVX-512 runs them (OpenBLAS still chooses its own).
void apply_kernel_flags(const Args& a, KernelOptions& kernels) {
    if (a.flag("no-int8-gemm")) kernels.int8_gemm = false;
    if (a.flag("no-bf16-gemm")) kernels.bf16_gemm = false;
    if (a.flag("no-amx")) kernels.amx = false;
    if (a.flag("no-int8-queries")) kernels.int8_queries = false;
    if (a.flag("no-int16-probabilities")) kernels.int16_probabilities = false;
    if (a.flag("avx2")) {
        kernels.avx512 = false;
        kernels.int8_gemm = false;
        kernels.bf16_gemm = false;
    }
}

// --model, --precision, --kv, --threads and the kernel flags of bench and bench-depths.
void parse_bench_model(const Args& a, BenchModelOptions& o) {
    apply_kernel_flags(a, o.kernels);
    o.model_dir = model_dir(a);
    if (a.has("precision")) o.precision = parse_precision(a.str("precision"));
    if (a.has("kv")) o.kv = parse_kv_type(a.str("kv"));
    o.threads = threads_option(a, 0);
    if (a.flag("avx2") && a.flag("avx512")) throw UsageError("--avx2 and --avx512 exclude each other");
    // What the app and the model commands run, unless a kernel set is pinned.
    o.decode_choice = !a.flag("avx2") && !a.flag("avx512");
}

int run_bench(const Args& a) {
    BenchOptions o;
    parse_bench_model(a, o);
    o.prompt_tokens = static_cast<int>(a.integer("prompt-tokens", 512));
    o.gen_tokens = static_cast<int>(a.integer("gen-tokens", 128));
    o.repeat = static_cast<int>(a.integer("repeat", 5));
    o.json = a.flag("json");
    if (o.prompt_tokens < 1 || o.gen_tokens < 1 || o.repeat < 1 || o.threads < 0)
        throw UsageError("--prompt-tokens, --gen-tokens and --repeat must be >= 1, --threads >= 0");
    return bench(o);
}

int run_bench_depths(const Args& a) {
    BenchDepthsOptions o;
    parse_bench_model(a, o);
    if (a.has("depths")) o.depths = parse_ids(a.str("depths"));
    o.gen_tokens = static_cast<int>(a.integer("gen-tokens", o.gen_tokens));
    o.repeat = static_cast<int>(a.integer("repeat", o.repeat));
    o.json = a.flag("json");
    for (const int d : o.depths)
        if (d < 1 || d > (1 << 20)) throw UsageError("--depths takes context lengths from 1 to 1048576");
    if (o.depths.empty() || o.gen_tokens < 1 || o.repeat < 1 || o.threads < 0)
        throw UsageError("--depths needs a length, --gen-tokens and --repeat must be >= 1, --threads >= 0");
    return bench_depths(o);
}

int run_bench_batch(const Args& a) {
    BenchBatchOptions o;
    o.model_dir = model_dir(a);
    if (a.has("precision")) o.precision = parse_precision(a.str("precision"));
    if (a.has("kv")) o.kv = parse_kv_type(a.str("kv"));
    o.threads = threads_option(a, 2);
    if (a.has("streams")) o.streams = parse_ids(a.str("streams"));
    o.prompt_tokens = static_cast<int>(a.integer("prompt", o.prompt_tokens));
    o.gen_tokens = static_cast<int>(a.integer("gen", o.gen_tokens));
    o.repeat = static_cast<int>(a.integer("repeat", o.repeat));
    o.ctx = a.integer("ctx", 0);
    o.json = a.flag("json");
    o.amx = !a.flag("no-amx");
    o.temperature = static_cast<float>(a.number("temperature", 0.0));
    o.top_p = static_cast<float>(a.number("top-p", 1.0));
    if (!(o.temperature >= 0) || !(o.top_p > 0 && o.top_p <= 1))
        throw UsageError("--temperature must be >= 0 (0: greedy) and --top-p in (0, 1]");
    for (const int n : o.streams)
        if (n < 1 || n > 256) throw UsageError("--streams takes stream counts from 1 to 256");
    if (o.prompt_tokens < 1 || o.gen_tokens < 2 || o.repeat < 1 || o.ctx < 0)
        throw UsageError("--prompt and --repeat must be >= 1, --gen >= 2, --ctx >= 0");
    if (o.ctx > 0 && o.ctx < o.prompt_tokens + o.gen_tokens) throw UsageError("--ctx must hold --prompt + --gen tokens");
    return bench_batch(o);
}

int run_bench_memory(const Args& a) {
    return bench_memory(threads_option(a, 2));
}

int run_bench_attention(const Args& a) {
    bench::AttentionBenchOptions o;
    o.context = static_cast<int>(a.integer("context", o.context));
    o.layers = static_cast<int>(a.integer("layers", o.layers));
    o.heads = static_cast<int>(a.integer("heads", o.heads));
    o.kv_heads = static_cast<int>(a.integer("kv-heads", o.kv_heads));
    o.head_dim = static_cast<int>(a.integer("head-dim", o.head_dim));
    o.threads = threads_option(a, o.threads);
    o.repeat = static_cast<int>(a.integer("repeat", o.repeat));
    o.kv = parse_kv_type(a.str("kv", "f16"));
    o.softcap = static_cast<float>(a.number("softcap", o.softcap));
    apply_kernel_flags(a, o.kernels);
    if (!(o.softcap >= 0.0f && std::isfinite(o.softcap))) throw UsageError("--softcap >= 0 (0: none)");
    if (o.context < 1 || o.layers < 1 || o.kv_heads < 1 || o.heads < o.kv_heads || o.heads % o.kv_heads ||
        o.head_dim < 8 || o.head_dim % 8 || o.repeat < 1 || o.threads < 0)
        throw UsageError("--context, --layers, --kv-heads and --repeat >= 1; --heads a multiple of --kv-heads; "
                         "--head-dim a multiple of 8; --threads >= 0");
    return bench_attention(o);
}

int run_bench_kernels(const Args& a) {
    const int rows = static_cast<int>(a.integer("rows", 4864));
    const int inputs = static_cast<int>(a.integer("inputs", 1));
    bench::KernelBenchOptions ko;
    apply_kernel_flags(a, ko.kernels);
    const int cols = static_cast<int>(a.integer("cols", 896));
    const int threads = threads_option(a, 2);
    const int repeat = static_cast<int>(a.integer("repeat", 7));
    const std::string which = a.str("precision", "all");
    const int mb = static_cast<int>(a.integer("mb", 512));
    if (rows < 1 || cols < 32 || cols % 32 || repeat < 1 || threads < 0 || mb < 1 || inputs < 1)
        throw UsageError("--rows >= 1, --cols a multiple of 32, --repeat >= 1, --inputs >= 1 and --threads >= 0");
    std::vector<Precision> ps;
    if (which == "all")
        ps = {Precision::F32, Precision::BF16, Precision::Q8, Precision::Q4};
    else
        ps = {parse_precision(which)};
    // --decode-rows: the N rows through the decode kernels, as a serving batch runs them.
    if (a.flag("decode-rows")) ko.kernels.few_rows_limit = inputs;
    ko.rows = rows, ko.cols = cols, ko.threads = threads, ko.repeat = repeat, ko.mb = mb, ko.inputs = inputs;
    return bench_kernels(ko, ps);
}

int run_synth(const Args& a) {
    const std::string preset = a.str("preset");
    const std::string dtype = a.str("dtype", "bf16");
    const std::string out = a.str("out");
    const auto seed = static_cast<std::uint64_t>(a.integer("seed", 1));
    const std::string shared = a.str("shared", WP_DEFAULT_SHARED_DIR);
    const bool config_only = a.flag("config-only");
    return synth(preset, dtype, out, seed, shared, config_only, static_cast<int>(a.integer("labels", 0)));
}

int run_bench_tokenize(const Args& a) {
    const std::string dir = model_dir(a);
    const double mb = a.number("mb", 4.0);
    const int repeat = static_cast<int>(a.integer("repeat", 5));
    return bench_tokenize(dir, mb, repeat);
}

int run_kv_divergence(const Args& a) {
    KvDivergenceOptions o;
    o.model_dir = model_dir(a);
    o.text_file = a.str("text");
    if (a.has("precision")) o.precision = parse_precision(a.str("precision"));
    o.kv = parse_kv_type(a.str("kv", "q8"));
    o.against = parse_kv_type(a.str("against", "f16"));
    o.max_tokens = static_cast<int>(a.integer("max-tokens", o.max_tokens));
    o.threads = threads_option(a, 0);
    o.json = a.flag("json");
    o.int8_queries = !a.flag("no-int8-queries");
    o.int16_probabilities = !a.flag("no-int16-probabilities");
    if (o.max_tokens < 2) throw UsageError("--max-tokens must be >= 2");
    return kv_divergence(o);
}

}  // namespace

const CommandGroup& bench_commands() {
    static const CommandGroup group{
        "Benchmarks",
        {
            {"bench", "Load time, prefill and decode tokens/s of a model",
             {"--model PATH [--precision f32|bf16|q8|q4] [--kv f32|f16|q8] [--threads N] [--prompt-tokens 512]\n"
              "[--gen-tokens 128] [--repeat 5] [--json] [--no-int8-gemm] [--no-bf16-gemm] [--no-amx]\n"
              "[--no-int8-queries] [--no-int16-probabilities] [--avx2 | --avx512]"},
             "Load time, prefill and decode tokens/s (median, min-max), peak RSS, KV bytes.\n"
             "--no-int8-gemm: q8/q4 prompts through sgemm instead of the int8 product.\n"
             "--no-bf16-gemm: bf16 prompts through sgemm instead of bf16 dot products.\n"
             "--no-amx: bf16 prompts by AVX-512 BF16, and q8 rows in batches and a q8 cache's scores by\n"
             "  AVX-512 VNNI, where the CPU has AMX tiles too.\n"
             "--no-int8-queries: a q8 cache scored against f32 queries, not int8 ones.\n"
             "--no-int16-probabilities: decode's mix over a q8 cache in f32 products, not 16-bit weights.\n"
             "--avx2: the AVX2 decode kernels and neither product, as on a CPU without AVX-512\n"
             "(for comparison; OpenBLAS still picks its own kernels).\n"
             "--avx512: the AVX-512 decode kernels for every precision; by default each precision\n"
             "decodes on the set measured fastest on this CPU (see choose-kernels).\n",
             {{"json", "no-int8-gemm", "no-bf16-gemm", "no-amx", "no-int8-queries", "no-int16-probabilities", "avx2", "avx512"},
              {"model", "precision", "kv", "threads", "prompt-tokens", "gen-tokens", "repeat"}},
             run_bench},
            {"bench-depths", "Decode tokens/s after several context lengths, the depths taking turns",
             {"--model PATH [--precision f32|bf16|q8|q4] [--kv f32|f16|q8] [--threads N] [--depths 128,4096,8192]\n"
              "[--gen-tokens 64] [--repeat 1] [--json] [--no-amx] [--no-int8-queries] [--no-int16-probabilities]\n"
              "[--avx2 | --avx512]"},
             "One context per depth, prefilled with that many random tokens; then each decodes a token in\n"
             "turn, so the machine's noise falls on every depth alike. Per depth: decode tokens/s (median,\n"
             "min-max over --repeat runs), the ratio to the first depth's, and the slowest step.\n",
             {{"json", "no-int8-gemm", "no-bf16-gemm", "no-amx", "no-int8-queries", "no-int16-probabilities", "avx2", "avx512"},
              {"model", "precision", "kv", "threads", "depths", "gen-tokens", "repeat"}},
             run_bench_depths},
            {"bench-batch", "Aggregate decode tokens/s of N concurrent streams (continuous batching)",
             {"--model PATH [--precision f32|bf16|q8|q4] [--kv f32|f16|q8] [--streams 1,2,4,8] [--prompt 32]\n"
              "[--gen 64] [--repeat 3] [--threads 2] [--ctx N] [--temperature 0] [--top-p 1] [--json]\n"
              "[--no-amx]"},
             "For each N of --streams: the serving scheduler with N sequences, N requests of --prompt\n"
             "random token ids each submitted at once, each generating --gen tokens (greedy, eos\n"
             "ignored). Decode tokens/s counts the tokens after every stream has its first (which\n"
             "comes from the prompt pass), over the time from then to the last stream's end:\n"
             "N x (gen - 1) tokens. Median, min-max over --repeat rounds after a warm-up round, the\n"
             "speed-up over 1 stream, and the time from submit to the first token (mean of the\n"
             "streams). --ctx: each sequence's positions (default: prompt + gen rounded up to 256).\n"
             "--temperature T (> 0) and --top-p P: each stream samples, seeded by its number, as\n"
             "chat clients ask (the time the sampler takes shows).\n"
             "--no-amx: q8 batches on AVX-512 VNNI where the CPU has AMX tiles too.\n"
             "tests/bench/batching.sh runs it beside llama.cpp's batched decode.\n",
             {{"json", "no-amx"}, {"model", "precision", "kv", "threads", "streams", "prompt", "gen", "repeat", "ctx",
               "temperature", "top-p"}},
             run_bench_batch},
            {"bench-memory", "Memory read bandwidth with 1..N threads", {"[--threads 2]"},
             "Memory read bandwidth with 1..N threads (decode speed is bound by it).\n",
             {{}, {"threads"}},
             run_bench_memory},
            {"bench-attention", "Decode attention over a full cache: time per token, GB/s",
             {"[--context 2048] [--layers 26] [--heads 8] [--kv-heads 4] [--head-dim 256]\n"
              "[--threads 2] [--repeat 7] [--kv f16] [--softcap 50] [--no-int8-queries]\n"
              "[--no-int16-probabilities] [--no-amx] [--avx2]"},
             "Decode attention over a full cache in every layer (defaults: gemma2-2b's shape):\n"
             "time per token and GB/s of cache read. --kv f32|f16|q8: how the cache holds K and V.\n"
             "--softcap: the logit soft-cap (gemma2's 50; 0 for none, as qwen2).\n"
             "--no-int8-queries, --no-int16-probabilities and --avx2 as for bench; --no-amx: a q8\n"
             "cache's scores by AVX-512 VNNI where the CPU has AMX tiles too.\n",
             {{"no-int8-queries", "no-int16-probabilities", "no-amx", "avx2"},
              {"context", "layers", "heads", "kv-heads", "head-dim", "threads", "repeat", "kv", "softcap"}},
             run_bench_attention},
            {"kv-divergence", "Accuracy cost of a KV cache type: KL divergence over a text",
             {"--model PATH --text FILE [--kv q8] [--against f16] [--precision P] [--max-tokens 2048]\n"
              "[--threads N] [--no-int8-queries] [--no-int16-probabilities] [--json]"},
             "Runs the text (its first --max-tokens tokens, at most the model's positions) token by\n"
             "token with a cache of type --kv and one of type --against; prints the KL divergence of\n"
             "each position's next-token distribution (mean, 99th percentile, max, in nats) and how\n"
             "often the top token agrees. --no-int8-queries: q8 caches scored against f32 queries;\n"
             "--no-int16-probabilities: their decode mix in f32 products.\n",
             {{"json", "no-int8-queries", "no-int16-probabilities"}, {"model", "text", "kv", "against", "precision", "max-tokens", "threads"}},
             run_kv_divergence},
            {"bench-kernels", "Decode kernel throughput per precision",
             {"[--rows 4864] [--cols 896] [--threads 2] [--repeat 7] [--mb 512]\n"
              "[--precision all|f32|bf16|q8|q4] [--inputs 1] [--decode-rows] [--no-int8-gemm]\n"
              "[--no-bf16-gemm] [--no-amx] [--avx2]"},
             "Decode kernel throughput: GB/s of weights read by matrix-vector products over about\n"
             "MB megabytes of matrices (a small value keeps them in cache). --inputs N > 1: the\n"
             "products with N input rows (a prompt), in GMAC/s; --no-int8-gemm and --no-bf16-gemm\n"
             "take sgemm instead of the int8 (q8/q4) or bf16 product, --no-amx the bf16 product\n"
             "by AVX-512 BF16 and q8 decode rows by AVX-512 VNNI instead of AMX tiles;\n"
             "--decode-rows runs the N rows through the decode kernels, as a serving batch does;\n"
             "--avx2 as for bench.\n",
             {{"decode-rows", "no-int8-gemm", "no-bf16-gemm", "no-amx", "avx2"}, {"rows", "inputs", "cols", "threads", "repeat", "precision", "mb"}},
             run_bench_kernels},
            {"choose-kernels", "The decode kernels measured fastest on this CPU",
             {"[--threads N] [--remeasure] [--json]"},
             "Where the CPU has both the AVX-512 and the AVX2 decode kernels, which set each precision\n"
             "decodes on: measured once per CPU model and thread count (about a second, the sets\n"
             "taking turns, each keeping its best pass), kept in $XDG_CACHE_HOME/windowpane (else\n"
             "~/.cache/windowpane) and taken by the app and every model command. --remeasure\n"
             "measures again (on an idle machine) and replaces what was kept.\n",
             {{"remeasure", "json"}, {"threads"}},
             run_choose_kernels},
            {"synth", "A random-weight model folder at a real model's shape",
             {"--preset NAME --out DIR [--dtype bf16|f32] [--seed N] [--labels N] [--config-only] [--shared SHARED]"},
             "A random-weight model folder at a real model's shape: gemma-2b, gemma2-2b, gemma2-9b,\n"
             "qwen2-0.5b, qwen2-1.5b, qwen2-7b (tokenizer copied from SHARED/fixtures).\n"
             "--labels N: the *ForSequenceClassification model with N labels instead of the causal LM.\n"
             "--config-only writes the configuration and tokenizer files, no weights.\n",
             {{"config-only"}, {"preset", "dtype", "out", "seed", "shared", "labels"}},
             run_synth},
            {"bench-tokenize", "Tokenizer load time and encode throughput", {"--model PATH [--mb 4] [--repeat 5]"},
             "Tokenizer load time and encode throughput on generated mixed text, one thread.\n",
             {{}, {"model", "mb", "repeat"}},
             run_bench_tokenize},
        }};
    return group;
}

}  // namespace wp::cli
