// Model commands: info, generate, chat, logits and mask on a Hugging Face model folder.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include <unistd.h>

#include "command.h"
#include "model_argument.h"
#include "decode_kernels.h"
#include "standard_input.h"
#include "wp/attention/mask_text.h"
#include "wp/error.h"
#include "wp/generate/chat_session.h"
#include "wp/generate/generator.h"
#include "wp/model/model.h"

namespace wp::cli {

namespace {

// --- helpers of the model commands ---------------------------------------------------------------

std::string with_commas(long long n) {
    const std::string digits = std::to_string(n < 0 ? -static_cast<unsigned long long>(n) : static_cast<unsigned long long>(n));
    std::string s = n < 0 ? "-" : "";
    for (std::size_t i = 0; i < digits.size(); ++i) {
        if (i > 0 && (digits.size() - i) % 3 == 0) s += ',';
        s += digits[i];
    }
    return s;
}

std::unique_ptr<Context> make_context(const Model& m, CacheKind kind, std::int64_t need) {
    // A static cache is preallocated to what the command needs, never past the model's context
    // (generation stops there anyway).
    std::int64_t max_len = 0;
    if (kind == CacheKind::Static)
        max_len = std::clamp<std::int64_t>(need, 1, m.config().max_position_embeddings);
    return m.new_context(kind, max_len);
}

// Token ids that do not fit the model's context are refused before the weights load, in the words
// a too-long prompt gets. `room` is what must stay free after them (1: a generated token).
void check_ids_fit(const std::filesystem::path& dir, std::size_t count, std::size_t room) {
    const int context_len = ModelConfig::load(dir).max_position_embeddings;
    if (count + room > static_cast<std::size_t>(context_len))
        throw Error("the prompt needs " + std::to_string(count) + " tokens but the model's context holds " +
                    std::to_string(context_len) + "; shorten --ids");
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

const std::vector<std::string> kSamplingFlags = {"greedy", "ignore-eos"};
const std::vector<std::string> kSamplingOptions = {"max-new-tokens", "temperature", "top-k", "top-p",
                                                   "min-p", "repetition-penalty", "seed", "prompt-lookup"};
const std::vector<std::string> kComputeOptions = {"precision", "kv", "threads"};

const char* kSamplingHelp = R"(Sampling options: --greedy (default), or --temperature T --top-k K --top-p P --min-p P;
  --repetition-penalty R, --seed S, --max-new-tokens N, --ignore-eos. --prompt-lookup N (greedy only):
  up to N draft tokens copied from earlier in the context, checked in one pass (same output, faster
  when the reply quotes its prompt).
Compute options: --precision f32|bf16|q8|q4 (default: bf16 for bf16 weights, else f32), --threads N
  (default: every core), --kv f32|f16|q8: how the KV cache holds keys and values (default: f16 for
  q8/q4, else f32; q8 reads about half the bytes of f16 at long contexts, at a small accuracy cost).
)";

std::vector<std::string> join(std::vector<std::string> a, const std::vector<std::string>& b,
                              const std::vector<std::string>& c = {}) {
    a.insert(a.end(), b.begin(), b.end());
    a.insert(a.end(), c.begin(), c.end());
    return a;
}

GenerateOptions generation_options(const Args& a, int default_max) {
    GenerateOptions opts;
    opts.max_new_tokens = static_cast<int>(a.integer("max-new-tokens", default_max));
    if (opts.max_new_tokens < 0) throw UsageError("--max-new-tokens must be >= 0");
    SamplingParams& sp = opts.sampling;
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
    opts.prompt_lookup_tokens = static_cast<int>(a.integer("prompt-lookup", 0));
    if (opts.prompt_lookup_tokens < 0 || opts.prompt_lookup_tokens > 64)
        throw UsageError("--prompt-lookup takes 0 to 64 draft tokens");
    if (opts.prompt_lookup_tokens > 0 && sampling)
        throw UsageError("--prompt-lookup needs greedy decoding: a sampled token is not repeatable");
    sp.validate();
    return opts;
}

// --precision f32|bf16|q8|q4, --kv f32|f16|q8 and --threads N (default: the model's own precision,
// its cache type, every core), and the decode kernels measured fastest on this CPU.
LoadOptions load_options_from(const Args& a) {
    LoadOptions o;
    if (a.has("precision")) o.precision = parse_precision(a.str("precision"));
    if (a.has("kv")) o.kv_cache = parse_kv_type(a.str("kv"));
    o.threads = threads_option(a, 0);
    return with_decode_choice(o);
}

// Decode speed: the first token comes from the prompt's forward pass, not from decoding.
double tokens_per_second(const GenerateResult& r) {
    return r.tokens.size() > 1 ? (r.tokens.size() - 1) / std::max(r.decode_seconds, 1e-9) : 0.0;
}

void print_stats(const GenerateResult& r) {
    const double tps = tokens_per_second(r);
    std::fprintf(stderr, "%zu tokens, stop: %s, prompt %d tokens, first token %.1f ms, %.1f tokens/s",
                 r.tokens.size(), stop_reason_name(r.reason), r.prompt_tokens, r.prefill_seconds * 1e3, tps);
    if (r.drafted > 0) std::fprintf(stderr, ", prompt lookup: %d of %d draft tokens taken", r.accepted, r.drafted);
    std::fprintf(stderr, "\n");
}

// --- the commands ---------------------------------------------------------------------------------

int run_info(const Args& a) {
    const auto model = Model::load(model_dir(a));
    const ModelConfig& c = model->config();
    std::printf("model          %s\n", model->dir().string().c_str());
    std::printf("family         %s\n", family_name(c.family));
    std::printf("parameters     %s\n", with_commas(model->parameter_count()).c_str());
    std::printf("dtype          %s weights%s, %s compute\n", model->weights_dtype().c_str(),
                c.torch_dtype.empty() ? "" : (" (config: " + c.torch_dtype + ")").c_str(),
                precision_name(model->precision()));
    for (const WeightConversion& w : model->weight_conversions())
        std::printf("               %-5s -> %-4s %4d matrices%s\n", w.from.c_str(), precision_name(w.to), w.matrices,
                    w.repacked ? ", repacked (the file's values)"
                    : (w.from == "F32" && w.to == Precision::F32) || (w.from == "BF16" && w.to == Precision::BF16) ? ", as stored"
                                                                                                                : ", converted");
    std::printf("vocabulary     %d\n", c.vocab_size);
    std::printf("hidden         %d, intermediate %d, %s MLP\n", c.hidden_size, c.intermediate_size,
                c.activation == Activation::GeluTanh ? "GELU-tanh" : "SiLU");
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
    std::printf("default cache  %s\n", cache_kind_name(model->default_cache()));
    const std::size_t per_layer = static_cast<std::size_t>(c.kv_dim()) * sizeof(float) * 2;
    std::printf("KV bytes/token %s (f32 K and V, %s per layer)\n",
                with_commas(static_cast<long long>(model->kv_bytes_per_token())).c_str(),
                with_commas(static_cast<long long>(per_layer)).c_str());
    int sliding = 0;
    for (int l = 0; l < c.num_layers; ++l) sliding += c.layer_is_sliding(l);
    if (sliding > 0 && model->default_cache() == CacheKind::Hybrid)
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

int run_logits(const Args& a) {
    const std::vector<int> ids = parse_ids(a.str("ids"));
    check_ids_fit(model_dir(a), ids.size(), 0);
    const auto model = Model::load(model_dir(a));
    const CacheKind kind = a.has("cache") ? parse_cache_kind(a.str("cache")) : model->default_cache();
    const bool step = a.flag("step");
    const std::string out_path = a.str("out", "");
    const int V = model->config().vocab_size;
    auto ctx = make_context(*model, kind, static_cast<std::int64_t>(ids.size()));
    std::vector<float> all(ids.size() * V);
    if (step) {
        for (std::size_t t = 0; t < ids.size(); ++t) {
            auto l = model->forward(*ctx, std::span<const int>(&ids[t], 1), LogitsMode::Last);
            std::copy(l.begin(), l.end(), all.begin() + static_cast<std::ptrdiff_t>(t * V));
        }
    } else {
        auto l = model->forward(*ctx, ids, LogitsMode::All);
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

int run_generate(const Args& a) {
    const std::string dir = model_dir(a);
    if (a.has("ids") && a.has("prompt")) throw UsageError("--ids and --prompt exclude each other");
    const bool ids_mode = a.has("ids");
    const std::vector<int> ids = ids_mode ? parse_ids(a.str("ids")) : std::vector<int>{};
    std::string prompt = a.str("prompt", "");
    GenerateOptions opts = generation_options(a, ids_mode ? 32 : 256);
    const std::string cache = a.str("cache", "");
    const LoadOptions load_options = load_options_from(a);
    if (!ids_mode && !a.has("prompt")) {
        // Like a prompt typed on the command line: the newline that ends the piped line is not
        // part of it.
        prompt = read_standard_input();
        if (!prompt.empty() && prompt.back() == '\n') prompt.pop_back();
        if (!prompt.empty() && prompt.back() == '\r') prompt.pop_back();
    }

    std::signal(SIGINT, on_sigint);
    opts.cancel = &g_cancel;
    if (ids_mode) {
        // Token ids in, token ids out: no tokenizer needed.
        check_ids_fit(dir, ids.size(), 1);
        const auto model = Model::load(dir, {}, load_options);
        note_decode_choice(*model);
        const CacheKind kind = cache.empty() ? model->default_cache() : parse_cache_kind(cache);
        auto ctx = make_context(*model, kind, static_cast<std::int64_t>(ids.size()) + opts.max_new_tokens);
        bool first = true;
        opts.on_token = [&](const GeneratedToken& t) {
            std::printf("%s%d", first ? "" : ",", t.id);
            std::fflush(stdout);
            first = false;
            return true;
        };
        g_generating = true;
        const GenerateResult r = generate(*model, *ctx, ids, opts);
        g_generating = false;
        std::printf("\n");
        print_stats(r);
        return 0;
    }
    const auto lm = LoadedModel::load(dir, {}, load_options);
    note_decode_choice(lm->model());
    const CacheKind kind = cache.empty() ? lm->model().default_cache() : parse_cache_kind(cache);
    ChatSession session(*lm, kind, kind == CacheKind::Static ? lm->model().config().max_position_embeddings : 0);
    g_generating = true;
    const Reply r = session.complete(prompt, opts, [](const std::string& text, const GeneratedToken&) {
        std::fwrite(text.data(), 1, text.size(), stdout);
        std::fflush(stdout);
        return true;
    });
    g_generating = false;
    std::printf("\n");
    print_stats(r.result);
    return 0;
}

int run_chat(const Args& a) {
    const std::string dir = model_dir(a);
    GenerateOptions opts = generation_options(a, 512);
    std::string system = a.str("system", "");
    const LoadOptions load_options = load_options_from(a);
    const auto lm = LoadedModel::load(dir, {}, load_options);
    note_decode_choice(lm->model());
    ChatSession session(*lm);
    std::vector<ChatMessage> conv;
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
                 dir.c_str(), family_name(lm->model().config().family));
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
        std::vector<ChatMessage> msgs;
        if (!system.empty()) msgs.push_back({"system", system});
        msgs.insert(msgs.end(), conv.begin(), conv.end());
        msgs.push_back({"user", line});
        g_cancel = false;
        g_generating = true;
        Reply r;
        try {
            r = session.reply(msgs, opts, [](const std::string& text, const GeneratedToken&) {
                std::fwrite(text.data(), 1, text.size(), stdout);
                std::fflush(stdout);
                return true;
            });
        } catch (const Error& e) {
            g_generating = false;
            std::fprintf(stderr, "\n[error: %s]\n", e.what());
            continue;
        }
        g_generating = false;
        std::printf("\n");
        if (r.result.reason == StopReason::Cancelled) std::fprintf(stderr, "[stopped]\n");
        conv.push_back({"user", line});
        conv.push_back({"assistant", r.text});
        std::fprintf(stderr, "[%zu tokens, %.1f tokens/s, context %lld/%d]\n", r.result.tokens.size(),
                     tokens_per_second(r.result),
                     static_cast<long long>(session.context().cache.length()),
                     lm->model().config().max_position_embeddings);
    }
    return 0;
}

int run_mask(const Args& a) {
    const std::filesystem::path dir = model_dir(a);
    const bool color = a.flag("color");
    const bool no_special = a.flag("no-special");
    std::string prompt = a.str("prompt", "");
    if (!a.has("prompt")) {
        prompt = read_standard_input();
        if (!prompt.empty() && prompt.back() == '\n') prompt.pop_back();
    }
    // Only the config (which layers slide) and the tokenizer are needed, not the weights.
    const ModelConfig cfg = ModelConfig::load(dir);
    const auto tok = Tokenizer::load(dir);
    std::vector<std::string> pieces;
    for (int id : tok->encode(prompt, !no_special)) pieces.push_back(tok->piece(id));
    if (pieces.empty()) throw Error("the prompt has no tokens");
    // Refuses more tokens than the model's context (the text grows with their square).
    const std::string out = render_mask_text(pieces, cfg.layer_masks, color, cfg.max_position_embeddings);
    std::fwrite(out.data(), 1, out.size(), stdout);
    return 0;
}

}  // namespace

const CommandGroup& model_commands() {
    static const CommandGroup group{
        "Model commands (DIR is a Hugging Face model folder)",
        {
            {"info", "Family, parameters, dtype, layers and windows, KV-cache bytes per token", {"--model PATH"},
             "Family, parameter count, dtype, layers with their kind and window, context length,\n"
             "KV-cache bytes per token.\n",
             {{}, {"model"}},
             run_info},
            {"generate", "Continue a text (streamed) or token ids",
             {"--model PATH [--prompt TEXT] [--cache dynamic|static|hybrid]\n[sampling options] [compute options]",
              "--model PATH --ids 2,17,5 [--cache dynamic|static|hybrid]\n[sampling options] [compute options]"},
             std::string("Continues the text (read from standard input without --prompt) and streams it; with\n"
                         "--ids, continues the token ids and prints the new ids, comma-separated.\n"
                         "--max-new-tokens defaults to 256, or 32 with --ids.\n\n") +
                 kSamplingHelp,
             {kSamplingFlags, join({"model", "ids", "prompt", "cache"}, kSamplingOptions, kComputeOptions)},
             run_generate},
            {"chat", "Interactive chat with the model's chat template",
             {"--model PATH [--system TEXT] [sampling options] [compute options]"},
             std::string("Interactive chat with the model's chat template. /reset, /system TEXT, /quit;\n"
                         "Ctrl-C stops the current reply. --max-new-tokens defaults to 512.\n\n") +
                 kSamplingHelp,
             {kSamplingFlags, join({"model", "system"}, kSamplingOptions, kComputeOptions)},
             run_chat},
            {"logits", "Logits of every position of token ids",
             {"--model PATH --ids 2,17,5 [--cache KIND] [--step] [--out FILE]"},
             "Logits of every position. --step feeds one token at a time through the cache.\n"
             "--out writes raw little-endian f32, row-major [tokens, vocab]; without it a summary\n"
             "(arg-max per position) is printed.\n",
             {{"step"}, {"model", "ids", "cache", "out"}},
             run_logits},
            {"mask", "The attention mask of every layer kind as text",
             {"--model PATH [--prompt TEXT] [--no-special] [--color]"},
             "The attention mask of every distinct layer kind as text (a row per query token,\n"
             "■ seen, ⬚ masked; sliding-window layers labelled with their window), in the manner\n"
             "of transformers' AttentionMaskVisualizer. Needs config.json and the tokenizer only;\n"
             "without --prompt the text is read from standard input.\n",
             {{"color", "no-special"}, {"model", "prompt"}},
             run_mask},
        }};
    return group;
}

}  // namespace wp::cli
