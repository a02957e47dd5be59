// windowpane-cli: the engine from the command line, for scripts, tests and benchmarks.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <unistd.h>

#include "bench.h"
#include "bench_tokenize.h"
#include "synth.h"
#include "wp/attention/mask_text.h"
#include "wp/chat/chat_template.h"
#include "wp/error.h"
#include "wp/generate/chat_session.h"
#include "wp/generate/generator.h"
#include "wp/io/file_util.h"
#include "wp/model/model.h"
#include "wp/model/threads.h"
#include "wp/version.h"

namespace {

using wp::Error;

struct UsageError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// Benchmarks with --avx2: our kernels as a CPU without AVX-512 VNNI runs them (OpenBLAS still
// chooses its own).
void avx2_only(wp::KernelOptions& kernels) {
    kernels.avx512 = false;
    kernels.int8_gemm = false;
}

const char* kUsage = R"(usage: windowpane-cli <command> [options]

Model commands (DIR is a Hugging Face model folder):
  info        --model DIR
              Family, parameter count, dtype, layers with their kind and window, context length,
              KV-cache bytes per token.
  generate    --model DIR [--prompt TEXT] [sampling options]
              Continues the text (read from standard input without --prompt) and streams it.
  generate    --model DIR --ids 2,17,5 [--cache dynamic|static|hybrid] [sampling options]
              Continues token ids and prints the new ids, comma-separated.
  chat        --model DIR [--system TEXT] [sampling options]
              Interactive chat with the model's chat template. /reset, /system TEXT, /quit;
              Ctrl-C stops the current reply.
  logits      --model DIR --ids 2,17,5 [--cache KIND] [--step] [--out FILE]
              Logits of every position. --step feeds one token at a time through the cache.
              --out writes raw little-endian f32, row-major [tokens, vocab]; without it a summary
              (arg-max per position) is printed.

  mask        --model DIR --prompt TEXT [--no-special] [--color]
              The attention mask of every distinct layer kind as text (a row per query token,
              ■ seen, ⬚ masked; sliding-window layers labelled with their window), in the manner
              of transformers' AttentionMaskVisualizer. Needs config.json and the tokenizer only.

Tokenizer commands (DIR may hold only tokenizer files):
  tokenize    --model DIR [--no-special] [--json] TEXT|-
              Token ids (comma-separated), or {"ids": [...], "pieces": [...]} with --json.
              - reads the text from standard input, byte for byte.
  detokenize  --model DIR [--skip-special] 1,2,3
              The text, exactly, with no newline added.
  chat-render --model DIR --messages FILE.json [--add-generation-prompt]
              The prompt the chat template renders (FILE: a list of {"role", "content"}, or
              {"messages": [...], "tools": [...]}). A template error exits with status 3.

Benchmarks:
  bench       --model DIR [--precision f32|bf16|q8|q4] [--threads N] [--prompt-tokens 512]
              [--gen-tokens 128] [--repeat 5] [--json] [--no-int8-gemm] [--avx2]
              Load time, prefill and decode tokens/s (median, min-max), peak RSS, KV bytes.
              --no-int8-gemm: q8/q4 prompts through sgemm instead of the int8 product.
              --avx2: the AVX2 decode kernels and no int8 product, as on a CPU without AVX-512
              VNNI (for comparison; OpenBLAS still picks its own kernels).
  bench-memory [--threads 2]
              Memory read bandwidth with 1..N threads (decode speed is bound by it).
  bench-attention [--context 2048] [--layers 26] [--heads 8] [--kv-heads 4] [--head-dim 256]
              [--threads 2] [--repeat 7] [--f32-cache]
              Decode attention over a full cache in every layer (defaults: gemma2-2b's shape):
              time per token and GB/s of cache read.
  bench-kernels [--rows 4864] [--cols 896] [--threads 2] [--repeat 7] [--mb 512]
              [--precision all|f32|bf16|q8|q4] [--inputs 1] [--no-int8-gemm] [--avx2]
              Decode kernel throughput: GB/s of weights read by matrix-vector products over about
              MB megabytes of matrices (a small value keeps them in cache). --inputs N > 1: the
              products with N input rows (a prompt), in GMAC/s; --no-int8-gemm takes sgemm
              instead of the int8 product for q8/q4; --avx2 as for bench.
  synth       --preset NAME --out DIR [--dtype bf16|f32] [--seed N] [--config-only] [--shared DIR]
              A random-weight model folder at a real model's shape: gemma-2b, gemma2-2b, gemma2-9b,
              qwen2-0.5b, qwen2-1.5b, qwen2-7b (tokenizer copied from DIR/fixtures).
  bench-tokenize --model DIR [--mb 4] [--repeat 5]
              Tokenizer load time and encode throughput on generated mixed text, one thread.

Sampling options: --greedy (default), or --temperature T --top-k K --top-p P --min-p P;
  --repetition-penalty R, --seed S, --max-new-tokens N, --ignore-eos.
Compute options (generate, chat): --precision f32|bf16|q8|q4 (default: bf16 for bf16 weights,
  else f32), --threads N (default: every core).

  --help    this text;  --version  the version
)";

// Options as --name value pairs plus boolean flags.
class Args {
public:
    Args(int argc, char** argv, int first, const std::vector<std::string>& flags, int max_positional = 0) {
        for (int i = first; i < argc; ++i) {
            std::string a = argv[i];
            if (a.rfind("--", 0) != 0 || a == "--") {
                if (a == "--" && i + 1 < argc) a = argv[++i];
                if (static_cast<int>(positional_.size()) >= max_positional)
                    throw UsageError("unexpected argument \"" + a + "\"");
                positional_.push_back(a);
                continue;
            }
            std::string name = a.substr(2);
            std::string value;
            if (auto eq = name.find('='); eq != std::string::npos) {
                value = name.substr(eq + 1);
                name = name.substr(0, eq);
            } else if (std::find(flags.begin(), flags.end(), name) != flags.end()) {
                value = "1";
            } else {
                if (i + 1 >= argc) throw UsageError("option --" + name + " needs a value");
                value = argv[++i];
            }
            values_[name] = value;
        }
    }
    bool has(const std::string& k) const { return values_.count(k) != 0; }
    const std::vector<std::string>& positional() const { return positional_; }
    std::string str(const std::string& k) const {
        auto it = values_.find(k);
        if (it == values_.end()) throw UsageError("missing option --" + k);
        used_.push_back(k);
        return it->second;
    }
    std::string str(const std::string& k, const std::string& def) const { return has(k) ? str(k) : def; }
    long long integer(const std::string& k, long long def) const {
        if (!has(k)) return def;
        const std::string s = str(k);
        try {
            std::size_t pos = 0;
            long long v = std::stoll(s, &pos);
            if (pos != s.size()) throw std::invalid_argument(s);
            return v;
        } catch (const std::exception&) {
            throw UsageError("--" + k + " expects an integer, got \"" + s + "\"");
        }
    }
    double number(const std::string& k, double def) const {
        if (!has(k)) return def;
        const std::string s = str(k);
        try {
            std::size_t pos = 0;
            double v = std::stod(s, &pos);
            if (pos != s.size()) throw std::invalid_argument(s);
            return v;
        } catch (const std::exception&) {
            throw UsageError("--" + k + " expects a number, got \"" + s + "\"");
        }
    }
    bool flag(const std::string& k) const {
        if (has(k)) used_.push_back(k);
        return has(k);
    }
    // Every option given must have been read by the command.
    void check_all_used() const {
        for (const auto& [k, v] : values_)
            if (std::find(used_.begin(), used_.end(), k) == used_.end())
                throw UsageError("unknown option --" + k);
    }

private:
    std::map<std::string, std::string> values_;
    std::vector<std::string> positional_;
    mutable std::vector<std::string> used_;
};

std::vector<int> parse_ids(const std::string& s) {
    std::vector<int> ids;
    std::stringstream ss(s);
    std::string item;
    while (std::getline(ss, item, ',')) {
        if (item.empty()) continue;
        try {
            std::size_t pos = 0;
            long v = std::stol(item, &pos);
            if (pos != item.size() || v < 0 || v > 0x7fffffff) throw std::invalid_argument(item);
            ids.push_back(static_cast<int>(v));
        } catch (const std::exception&) {
            throw UsageError("--ids expects comma-separated token ids, got \"" + item + "\"");
        }
    }
    if (ids.empty()) throw UsageError("--ids is empty");
    return ids;
}

std::string with_commas(long long n) {
    std::string s = std::to_string(n);
    for (int i = static_cast<int>(s.size()) - 3; i > 0; i -= 3) s.insert(static_cast<std::size_t>(i), ",");
    return s;
}

wp::CacheKind cache_from(const Args& a, const wp::Model& m) {
    return a.has("cache") ? wp::parse_cache_kind(a.str("cache")) : m.default_cache();
}

std::unique_ptr<wp::Context> make_context(const wp::Model& m, wp::CacheKind kind, std::int64_t need) {
    // A static cache is preallocated to what the command needs (or the model's context).
    std::int64_t max_len = 0;
    if (kind == wp::CacheKind::Static) max_len = std::max<std::int64_t>(need, 1);
    return m.new_context(kind, max_len);
}

int cmd_info(const Args& a) {
    const auto model = wp::Model::load(a.str("model"));
    a.check_all_used();
    const wp::ModelConfig& c = model->config();
    std::printf("model          %s\n", model->dir().string().c_str());
    std::printf("family         %s\n", wp::family_name(c.family));
    std::printf("parameters     %s\n", with_commas(model->parameter_count()).c_str());
    std::printf("dtype          %s weights%s, %s compute\n", model->weights_dtype().c_str(),
                c.torch_dtype.empty() ? "" : (" (config: " + c.torch_dtype + ")").c_str(),
                wp::precision_name(model->precision()));
    std::printf("vocabulary     %d\n", c.vocab_size);
    std::printf("hidden         %d, intermediate %d, %s MLP\n", c.hidden_size, c.intermediate_size,
                c.activation == wp::Activation::GeluTanh ? "GELU-tanh" : "SiLU");
    std::printf("attention      %d heads, %d KV heads, head_dim %d, scale %.6g", c.num_heads,
                c.num_kv_heads, c.head_dim, c.attn_scale);
    if (c.attn_softcap > 0) std::printf(", soft-cap %g", c.attn_softcap);
    std::printf("\n");
    if (c.final_softcap > 0) std::printf("final softcap  %g\n", c.final_softcap);
    std::printf("context        %d tokens\n", c.max_position_embeddings);
    std::printf("tied lm_head   %s\n", c.tie_word_embeddings ? "yes" : "no");
    std::string eos;
    for (int id : c.eos_token_ids) eos += (eos.empty() ? "" : ", ") + std::to_string(id);
    std::printf("eos ids        %s\n", eos.c_str());
    std::printf("default cache  %s\n", wp::cache_kind_name(model->default_cache()));
    const std::size_t per_layer = static_cast<std::size_t>(c.kv_dim()) * sizeof(float) * 2;
    std::printf("KV bytes/token %s (f32 K and V, %s per layer)\n",
                with_commas(static_cast<long long>(model->kv_bytes_per_token())).c_str(),
                with_commas(static_cast<long long>(per_layer)).c_str());
    int sliding = 0;
    for (int l = 0; l < c.num_layers; ++l) sliding += c.layer_is_sliding(l);
    if (sliding > 0 && model->default_cache() == wp::CacheKind::Hybrid)
        std::printf("               the hybrid cache keeps %d sliding layers at most %d tokens "
                    "(%s bytes); only the %d global layers grow\n",
                    sliding, c.sliding_window,
                    with_commas(static_cast<long long>(per_layer) * sliding * c.sliding_window).c_str(),
                    c.num_layers - sliding);
    std::printf("layers         %d\n", c.num_layers);
    for (int l = 0; l < c.num_layers; ++l) {
        if (c.layer_is_sliding(l))
            std::printf("  %3d  sliding  window %d\n", l, c.layer_masks[l].window);
        else
            std::printf("  %3d  global\n", l);
    }
    return 0;
}

int cmd_logits(const Args& a) {
    const auto model = wp::Model::load(a.str("model"));
    const std::vector<int> ids = parse_ids(a.str("ids"));
    const wp::CacheKind kind = cache_from(a, *model);
    const bool step = a.flag("step");
    const std::string out_path = a.str("out", "");
    a.check_all_used();
    const int V = model->config().vocab_size;
    auto ctx = make_context(*model, kind, static_cast<std::int64_t>(ids.size()));
    std::vector<float> all(ids.size() * V);
    if (step) {
        for (std::size_t t = 0; t < ids.size(); ++t) {
            auto l = model->forward(*ctx, std::span<const int>(&ids[t], 1), wp::LogitsMode::Last);
            std::copy(l.begin(), l.end(), all.begin() + static_cast<std::ptrdiff_t>(t * V));
        }
    } else {
        auto l = model->forward(*ctx, ids, wp::LogitsMode::All);
        std::copy(l.begin(), l.end(), all.begin());
    }
    if (!out_path.empty()) {
        std::ofstream f(out_path, std::ios::binary);
        if (!f) throw Error(out_path + ": cannot write");
        f.write(reinterpret_cast<const char*>(all.data()), static_cast<std::streamsize>(all.size() * sizeof(float)));
        if (!f) throw Error(out_path + ": write failed");
        std::fprintf(stderr, "wrote %zu x %d logits (f32) to %s\n", ids.size(), V, out_path.c_str());
        return 0;
    }
    std::printf("pos  token  argmax  max logit\n");
    for (std::size_t t = 0; t < ids.size(); ++t) {
        const float* r = all.data() + t * V;
        int best = 0;
        for (int i = 1; i < V; ++i)
            if (r[i] > r[best]) best = i;
        std::printf("%3zu  %5d  %6d  %9.5f\n", t, ids[t], best, r[best]);
    }
    return 0;
}

std::atomic<bool> g_cancel{false};
std::atomic<bool> g_generating{false};

// Ctrl-C stops the reply being generated; at any other time it ends the program.
void on_sigint(int) {
    if (g_generating.load()) {
        g_cancel = true;
    } else {
        std::signal(SIGINT, SIG_DFL);
        std::raise(SIGINT);
    }
}

std::string read_stdin() {
    std::ostringstream ss;
    ss << std::cin.rdbuf();
    return ss.str();
}

wp::GenerateOptions generation_options(const Args& a, int default_max) {
    wp::GenerateOptions opts;
    opts.max_new_tokens = static_cast<int>(a.integer("max-new-tokens", default_max));
    if (opts.max_new_tokens < 0) throw UsageError("--max-new-tokens must be >= 0");
    wp::SamplingParams& sp = opts.sampling;
    const bool greedy = a.flag("greedy");
    const bool sampling = a.has("temperature") || a.has("top-k") || a.has("top-p") || a.has("min-p");
    if (greedy && sampling) throw UsageError("--greedy excludes --temperature, --top-k, --top-p and --min-p");
    sp.greedy = !sampling;
    sp.temperature = static_cast<float>(a.number("temperature", 1.0));
    sp.top_k = static_cast<int>(a.integer("top-k", 0));
    sp.top_p = static_cast<float>(a.number("top-p", 1.0));
    sp.min_p = static_cast<float>(a.number("min-p", 0.0));
    sp.repetition_penalty = static_cast<float>(a.number("repetition-penalty", 1.0));
    sp.seed = static_cast<std::uint64_t>(a.integer("seed", static_cast<long long>(
        std::chrono::steady_clock::now().time_since_epoch().count() & 0x7fffffff)));
    if (a.flag("ignore-eos")) opts.eos_ids = std::vector<int>{};
    sp.validate();
    return opts;
}

// --precision f32|bf16|q8|q4 and --threads N (default: the model's own precision, every core).
wp::LoadOptions load_options_from(const Args& a) {
    wp::LoadOptions o;
    if (a.has("precision")) o.precision = wp::parse_precision(a.str("precision"));
    o.threads = static_cast<int>(a.integer("threads", 0));
    if (o.threads < 0) throw UsageError("--threads must be >= 0");
    wp::set_blas_threads(o.threads);  // once per process: this command's --threads
    return o;
}

void print_stats(const wp::GenerateResult& r) {
    const double tps = r.tokens.size() > 1 ? (r.tokens.size() - 1) / std::max(r.decode_seconds, 1e-9) : 0.0;
    std::fprintf(stderr, "%zu tokens, stop: %s, prompt %d tokens, first token %.1f ms, %.1f tokens/s\n",
                 r.tokens.size(), wp::stop_reason_name(r.reason), r.prompt_tokens, r.prefill_seconds * 1e3, tps);
}

int cmd_generate(const Args& a) {
    const std::string dir = a.str("model");
    if (a.has("ids") && a.has("prompt")) throw UsageError("--ids and --prompt exclude each other");
    const bool ids_mode = a.has("ids");
    const std::vector<int> ids = ids_mode ? parse_ids(a.str("ids")) : std::vector<int>{};
    std::string prompt = a.str("prompt", "");
    wp::GenerateOptions opts = generation_options(a, ids_mode ? 32 : 256);
    const std::string cache = a.str("cache", "");
    const wp::LoadOptions load_options = load_options_from(a);
    a.check_all_used();
    if (!ids_mode && !a.has("prompt")) {
        // Like a prompt typed on the command line: the newline that ends the piped line is not
        // part of it.
        prompt = read_stdin();
        if (!prompt.empty() && prompt.back() == '\n') prompt.pop_back();
        if (!prompt.empty() && prompt.back() == '\r') prompt.pop_back();
    }

    std::signal(SIGINT, on_sigint);
    opts.cancel = &g_cancel;
    if (ids_mode) {
        // Token ids in, token ids out: no tokenizer needed.
        const auto model = wp::Model::load(dir, {}, load_options);
        const wp::CacheKind kind = cache.empty() ? model->default_cache() : wp::parse_cache_kind(cache);
        auto ctx = make_context(*model, kind, static_cast<std::int64_t>(ids.size()) + opts.max_new_tokens);
        bool first = true;
        opts.on_token = [&](const wp::GeneratedToken& t) {
            std::printf("%s%d", first ? "" : ",", t.id);
            std::fflush(stdout);
            first = false;
            return true;
        };
        g_generating = true;
        const wp::GenerateResult r = wp::generate(*model, *ctx, ids, opts);
        g_generating = false;
        std::printf("\n");
        print_stats(r);
        return 0;
    }
    const auto lm = wp::LoadedModel::load(dir, {}, load_options);
    const wp::CacheKind kind = cache.empty() ? lm->model().default_cache() : wp::parse_cache_kind(cache);
    wp::ChatSession session(*lm, kind, kind == wp::CacheKind::Static ? lm->model().config().max_position_embeddings : 0);
    g_generating = true;
    const wp::Reply r = session.complete(prompt, opts, [](const std::string& text, const wp::GeneratedToken&) {
        std::fwrite(text.data(), 1, text.size(), stdout);
        std::fflush(stdout);
        return true;
    });
    g_generating = false;
    std::printf("\n");
    print_stats(r.result);
    return 0;
}

int cmd_tokenize(const Args& a) {
    const std::string dir = a.str("model");
    const bool no_special = a.flag("no-special");
    const bool as_json = a.flag("json");
    a.check_all_used();
    if (a.positional().size() != 1) throw UsageError("tokenize needs one TEXT argument (or - to read stdin)");
    const std::string text = a.positional()[0] == "-" ? read_stdin() : a.positional()[0];
    const auto tok = wp::Tokenizer::load(dir);
    const std::vector<int> ids = tok->encode(text, !no_special);
    if (as_json) {
        nlohmann::json j;
        j["ids"] = ids;
        j["pieces"] = nlohmann::json::array();
        for (int id : ids) j["pieces"].push_back(tok->piece(id));
        std::printf("%s\n", j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    } else {
        std::string out;
        for (int id : ids) out += (out.empty() ? "" : ",") + std::to_string(id);
        std::printf("%s\n", out.c_str());
    }
    return 0;
}

int cmd_detokenize(const Args& a) {
    const std::string dir = a.str("model");
    const bool skip = a.flag("skip-special");
    a.check_all_used();
    if (a.positional().size() != 1) throw UsageError("detokenize needs the token ids, e.g. 2,17,5");
    const std::vector<int> ids = parse_ids(a.positional()[0]);
    const auto tok = wp::Tokenizer::load(dir);
    for (int id : ids)
        if (id >= tok->vocab_size())
            throw Error("token id " + std::to_string(id) + " is outside the tokenizer's vocabulary (0.." +
                        std::to_string(tok->vocab_size() - 1) + ")");
    const std::string text = tok->decode(ids, skip);
    std::fwrite(text.data(), 1, text.size(), stdout);
    return 0;
}

struct TemplateFailure : std::runtime_error {
    using std::runtime_error::runtime_error;
};

int cmd_chat_render(const Args& a) {
    const std::filesystem::path dir = a.str("model");
    const std::string file = a.str("messages");
    const bool gen = a.flag("add-generation-prompt");
    a.check_all_used();
    nlohmann::ordered_json doc;
    try {
        doc = nlohmann::ordered_json::parse(file == "-" ? read_stdin() : wp::read_text_file(file));
    } catch (const nlohmann::json::exception& e) {
        throw Error(file + ": not valid JSON: " + e.what());
    }
    nlohmann::ordered_json ctx = wp::ChatTemplate::special_tokens_context(dir);
    if (doc.is_array()) {
        ctx["messages"] = doc;
    } else if (doc.is_object() && doc.contains("messages")) {
        ctx["messages"] = doc["messages"];
        if (doc.contains("tools")) ctx["tools"] = doc["tools"];
    } else {
        throw Error(file + ": expected a list of messages or an object with \"messages\"");
    }
    if (!ctx.contains("tools")) ctx["tools"] = nullptr;
    ctx["documents"] = nullptr;
    ctx["add_generation_prompt"] = gen;
    std::optional<wp::ChatTemplate> tmpl = wp::ChatTemplate::from_folder(dir);
    if (!tmpl) {
        if (!std::filesystem::exists(dir / "config.json"))
            throw Error(dir.string() + ": no chat template (chat_template.jinja or tokenizer_config.json) and no config.json to pick a built-in one");
        const wp::ModelConfig cfg = wp::ModelConfig::load(dir);
        tmpl = wp::ChatTemplate::builtin(cfg.family == wp::Family::Qwen2 ? "qwen2" : "gemma");
    }
    std::string out;
    try {
        out = tmpl->render(ctx);
    } catch (const wp::TemplateError& e) {
        throw TemplateFailure(e.what());
    }
    std::fwrite(out.data(), 1, out.size(), stdout);
    return 0;
}

int cmd_mask(const Args& a) {
    const std::filesystem::path dir = a.str("model");
    const bool color = a.flag("color");
    const bool no_special = a.flag("no-special");
    std::string prompt = a.str("prompt", "");
    a.check_all_used();
    if (!a.has("prompt")) {
        prompt = read_stdin();
        if (!prompt.empty() && prompt.back() == '\n') prompt.pop_back();
    }
    // Only the config (which layers slide) and the tokenizer are needed, not the weights.
    const wp::ModelConfig cfg = wp::ModelConfig::load(dir);
    const auto tok = wp::Tokenizer::load(dir);
    std::vector<std::string> pieces;
    for (int id : tok->encode(prompt, !no_special)) pieces.push_back(tok->piece(id));
    if (pieces.empty()) throw Error("the prompt has no tokens");
    const std::string out = wp::render_mask_text(pieces, cfg.layer_masks, color);
    std::fwrite(out.data(), 1, out.size(), stdout);
    return 0;
}

int cmd_chat(const Args& a) {
    const std::string dir = a.str("model");
    wp::GenerateOptions opts = generation_options(a, 512);
    std::string system = a.str("system", "");
    const wp::LoadOptions load_options = load_options_from(a);
    a.check_all_used();
    const auto lm = wp::LoadedModel::load(dir, {}, load_options);
    wp::ChatSession session(*lm);
    std::vector<wp::ChatMessage> conv;
    std::string why;
    const bool system_ok = lm->supports_system_role(&why);
    auto set_system = [&](const std::string& text) {
        if (!system_ok) {
            std::fprintf(stderr, "[this model's chat template has no system role: %s]\n", why.c_str());
            return;
        }
        system = text;
    };
    if (!system.empty()) set_system(system);
    const bool tty = isatty(0);
    std::fprintf(stderr, "Chatting with %s (%s). /reset starts over, /system TEXT sets the system prompt, "
                         "/quit ends; Ctrl-C stops a reply.\n",
                 dir.c_str(), wp::family_name(lm->model().config().family));
    std::signal(SIGINT, on_sigint);
    opts.cancel = &g_cancel;
    std::string line;
    for (;;) {
        if (tty) {
            std::fputs("> ", stdout);
            std::fflush(stdout);
        }
        if (!std::getline(std::cin, line)) break;
        if (line.empty()) continue;
        if (line == "/quit" || line == "/exit") break;
        if (line == "/reset") {
            conv.clear();
            session.reset();
            std::fprintf(stderr, "[conversation cleared]\n");
            continue;
        }
        if (line.rfind("/system", 0) == 0) {
            set_system(line.size() > 8 ? line.substr(8) : std::string());
            conv.clear();
            continue;
        }
        std::vector<wp::ChatMessage> msgs;
        if (!system.empty()) msgs.push_back({"system", system});
        msgs.insert(msgs.end(), conv.begin(), conv.end());
        msgs.push_back({"user", line});
        g_cancel = false;
        g_generating = true;
        wp::Reply r;
        try {
            r = session.reply(msgs, opts, [](const std::string& text, const wp::GeneratedToken&) {
                std::fwrite(text.data(), 1, text.size(), stdout);
                std::fflush(stdout);
                return true;
            });
        } catch (const wp::Error& e) {
            g_generating = false;
            std::fprintf(stderr, "\n[error: %s]\n", e.what());
            continue;
        }
        g_generating = false;
        std::printf("\n");
        if (r.result.reason == wp::StopReason::Cancelled) std::fprintf(stderr, "[stopped]\n");
        conv.push_back({"user", line});
        conv.push_back({"assistant", r.text});
        const double tps = r.result.tokens.size() > 1 ? (r.result.tokens.size() - 1) / std::max(r.result.decode_seconds, 1e-9) : 0.0;
        std::fprintf(stderr, "[%zu tokens, %.1f tokens/s, context %lld/%d]\n", r.result.tokens.size(), tps,
                     static_cast<long long>(session.context().cache.length()),
                     lm->model().config().max_position_embeddings);
    }
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fputs(kUsage, stderr);
        return 2;
    }
    const std::string cmd = argv[1];
    if (cmd == "--help" || cmd == "-h" || cmd == "help") {
        std::fputs(kUsage, stdout);
        return 0;
    }
    if (cmd == "--version") {
        std::printf("windowpane-cli %s\n", WP_VERSION);
        return 0;
    }
    try {
        if (cmd == "info") return cmd_info(Args(argc, argv, 2, {}));
        if (cmd == "logits") return cmd_logits(Args(argc, argv, 2, {"step"}));
        if (cmd == "generate") return cmd_generate(Args(argc, argv, 2, {"greedy", "ignore-eos"}));
        if (cmd == "tokenize") return cmd_tokenize(Args(argc, argv, 2, {"no-special", "json"}, 1));
        if (cmd == "detokenize") return cmd_detokenize(Args(argc, argv, 2, {"skip-special"}, 1));
        if (cmd == "chat-render") return cmd_chat_render(Args(argc, argv, 2, {"add-generation-prompt"}));
        if (cmd == "bench-tokenize") {
            const Args a(argc, argv, 2, {});
            const std::string dir = a.str("model");
            const double mb = a.number("mb", 4.0);
            const int repeat = static_cast<int>(a.integer("repeat", 5));
            a.check_all_used();
            return wp::cli::bench_tokenize(dir, mb, repeat);
        }
        if (cmd == "bench") {
            const Args a(argc, argv, 2, {"json", "no-int8-gemm", "avx2"});
            wp::cli::BenchOptions o;
            if (a.flag("no-int8-gemm")) o.kernels.int8_gemm = false;
            if (a.flag("avx2")) avx2_only(o.kernels);
            o.model_dir = a.str("model");
            if (a.has("precision")) o.precision = wp::parse_precision(a.str("precision"));
            o.threads = static_cast<int>(a.integer("threads", 0));
            o.prompt_tokens = static_cast<int>(a.integer("prompt-tokens", 512));
            o.gen_tokens = static_cast<int>(a.integer("gen-tokens", 128));
            o.repeat = static_cast<int>(a.integer("repeat", 5));
            o.json = a.flag("json");
            a.check_all_used();
            if (o.prompt_tokens < 1 || o.gen_tokens < 1 || o.repeat < 1 || o.threads < 0)
                throw UsageError("--prompt-tokens, --gen-tokens and --repeat must be >= 1, --threads >= 0");
            wp::set_blas_threads(o.threads);
            return wp::cli::bench(o);
        }
        if (cmd == "bench-memory") {
            const Args a(argc, argv, 2, {});
            const int threads = static_cast<int>(a.integer("threads", 2));
            a.check_all_used();
            return wp::cli::bench_memory(threads);
        }
        if (cmd == "bench-kernels") {
            const Args a(argc, argv, 2, {"no-int8-gemm", "avx2"});
            const int rows = static_cast<int>(a.integer("rows", 4864));
            const int inputs = static_cast<int>(a.integer("inputs", 1));
            wp::bench::KernelBenchOptions ko;
            if (a.flag("no-int8-gemm")) ko.kernels.int8_gemm = false;
            if (a.flag("avx2")) avx2_only(ko.kernels);
            const int cols = static_cast<int>(a.integer("cols", 896));
            const int threads = static_cast<int>(a.integer("threads", 2));
            const int repeat = static_cast<int>(a.integer("repeat", 7));
            const std::string which = a.str("precision", "all");
            const int mb = static_cast<int>(a.integer("mb", 512));
            a.check_all_used();
            if (rows < 1 || cols < 32 || cols % 32 || repeat < 1 || threads < 0 || mb < 1 || inputs < 1)
                throw UsageError("--rows >= 1, --cols a multiple of 32, --repeat >= 1, --inputs >= 1 and --threads >= 0");
            std::vector<wp::Precision> ps;
            if (which == "all")
                ps = {wp::Precision::F32, wp::Precision::BF16, wp::Precision::Q8, wp::Precision::Q4};
            else
                ps = {wp::parse_precision(which)};
            ko.rows = rows, ko.cols = cols, ko.threads = threads, ko.repeat = repeat, ko.mb = mb, ko.inputs = inputs;
            return wp::cli::bench_kernels(ko, ps);
        }
        if (cmd == "bench-attention") {
            const Args a(argc, argv, 2, {"f32-cache"});
            wp::bench::AttentionBenchOptions o;
            o.context = static_cast<int>(a.integer("context", o.context));
            o.layers = static_cast<int>(a.integer("layers", o.layers));
            o.heads = static_cast<int>(a.integer("heads", o.heads));
            o.kv_heads = static_cast<int>(a.integer("kv-heads", o.kv_heads));
            o.head_dim = static_cast<int>(a.integer("head-dim", o.head_dim));
            o.threads = static_cast<int>(a.integer("threads", o.threads));
            o.repeat = static_cast<int>(a.integer("repeat", o.repeat));
            o.f32_cache = a.flag("f32-cache");
            a.check_all_used();
            if (o.context < 1 || o.layers < 1 || o.kv_heads < 1 || o.heads < o.kv_heads || o.heads % o.kv_heads ||
                o.head_dim < 8 || o.head_dim % 8 || o.repeat < 1 || o.threads < 0)
                throw UsageError("--context, --layers, --kv-heads and --repeat >= 1; --heads a multiple of --kv-heads; "
                                 "--head-dim a multiple of 8; --threads >= 0");
            return wp::cli::bench_attention(o);
        }
        if (cmd == "synth") {
            const Args a(argc, argv, 2, {"config-only"});
            const std::string preset = a.str("preset");
            const std::string dtype = a.str("dtype", "bf16");
            const std::string out = a.str("out");
            const auto seed = static_cast<std::uint64_t>(a.integer("seed", 1));
            const std::string shared = a.str("shared", WP_DEFAULT_SHARED_DIR);
            const bool config_only = a.flag("config-only");
            a.check_all_used();
            return wp::cli::synth(preset, dtype, out, seed, shared, config_only);
        }
        if (cmd == "mask") return cmd_mask(Args(argc, argv, 2, {"color", "no-special"}));
        if (cmd == "chat") return cmd_chat(Args(argc, argv, 2, {"greedy", "ignore-eos"}));
        throw UsageError("unknown command \"" + cmd + "\" (see windowpane-cli --help)");
    } catch (const TemplateFailure& e) {
        std::fprintf(stderr, "windowpane-cli: template error: %s\n", e.what());
        return 3;
    } catch (const UsageError& e) {
        std::fprintf(stderr, "windowpane-cli: %s\n", e.what());
        return 2;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "windowpane-cli: error: %s\n", e.what());
        return 1;
    }
}
