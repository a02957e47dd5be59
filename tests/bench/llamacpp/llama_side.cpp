// The llama.cpp half of the side-by-side benchmark: quantizes a GGUF file and measures prompt
// processing and generation the way llama-bench does (-p 512 -n 128 -r 5, random token ids, a
// warm-up run, an empty context for each test). Built against the prebuilt llama.cpp libraries
// of the node-llama-cpp npm package by run.sh (and tests/gguf/llamacpp_gguf_test.sh); only the few
// entry points used are declared here.
//
//   llama_side quantize IN.gguf OUT.gguf q8_0|q4_0|bf16   (every matrix in that type, "pure")
//   llama_side quantize IN.gguf OUT.gguf f32|q4_k_m|q5_k_m|q6_k   (llama-quantize's default rules:
//              the K-quant mixes put some matrices in other types, e.g. Q6_K for the output)
//   llama_side bench MODEL.gguf THREADS [PROMPT=512] [GEN=128] [REPEAT=5] [DEPTH=0]
//   llama_side logits MODEL.gguf IDS_CSV OUT.f32   (logits of every position of one batch)
//
// bench prints one JSON object: {"pp_tok_s": {...}, "tg_tok_s": {...}} with median, min and max.
// logits evaluates the ids (positions 0..n-1, one sequence) in one llama_decode with an output
// for every token, on 1 thread (LLAMA_SIDE_THREADS), F32 K and V cache, flash attention off, and
// writes raw little-endian f32 [tokens, n_vocab].
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

extern "C" {
struct llama_model;
struct llama_context;
struct llama_vocab;
struct llama_memory_i;
typedef int32_t llama_token;

// Parameter structs are only created by the library's *_default_params() and passed back; they
// are large enough for any recent version (returned and passed in memory per the SysV ABI). The
// leading fields used here have kept their places for many releases.
struct params_blob {
    alignas(8) unsigned char bytes[1024];
};
struct llama_batch {
    int32_t n_tokens;
    llama_token* token;
    float* embd;
    int32_t* pos;
    int32_t* n_seq_id;
    int32_t** seq_id;
    int8_t* logits;
};

typedef void (*log_callback)(int level, const char* text, void* user);
void llama_log_set(log_callback cb, void* user);
void ggml_backend_load_all_from_path(const char* dir);
void llama_backend_init(void);
params_blob llama_model_default_params(void);
params_blob llama_context_default_params(void);
params_blob llama_model_quantize_default_params(void);
uint32_t llama_model_quantize(const char* in, const char* out, const void* params);
llama_model* llama_model_load_from_file(const char* path, params_blob params);
llama_context* llama_init_from_model(llama_model* model, params_blob params);
void llama_set_n_threads(llama_context* ctx, int32_t n_threads, int32_t n_threads_batch);
const llama_vocab* llama_model_get_vocab(const llama_model* model);
int32_t llama_vocab_n_tokens(const llama_vocab* vocab);
llama_batch llama_batch_get_one(llama_token* tokens, int32_t n_tokens);
llama_batch llama_batch_init(int32_t n_tokens, int32_t embd, int32_t n_seq_max);
void llama_batch_free(llama_batch batch);
float* llama_get_logits_ith(llama_context* ctx, int32_t i);
int32_t llama_decode(llama_context* ctx, llama_batch batch);
void llama_synchronize(llama_context* ctx);
llama_memory_i* llama_get_memory(const llama_context* ctx);
void llama_memory_clear(llama_memory_i* mem, bool data);
}

namespace {

using clk = std::chrono::steady_clock;

struct Stats {
    double median, min, max;
};
Stats stats(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    const std::size_t n = v.size();
    return {n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2, v.front(), v.back()};
}

void decode(llama_context* ctx, std::vector<llama_token>& toks, int n_batch) {
    for (std::size_t i = 0; i < toks.size(); i += n_batch) {
        const int n = static_cast<int>(std::min<std::size_t>(n_batch, toks.size() - i));
        if (llama_decode(ctx, llama_batch_get_one(toks.data() + i, n)) != 0) {
            std::fprintf(stderr, "llama_decode failed\n");
            std::exit(1);
        }
    }
    llama_synchronize(ctx);
}

// The KV cache's types (type_k and type_v, enum ggml_type) follow the callback pointers: offsets
// 104 and 108 in this llama.cpp's llama_context_params. Their default is F16 (1), checked before
// another type is written, so that a different layout fails instead of corrupting another field.
bool set_kv_type(params_blob& cp, std::int32_t type) {
    std::int32_t tk = 0, tv = 0;
    std::memcpy(&tk, cp.bytes + 104, 4);
    std::memcpy(&tv, cp.bytes + 108, 4);
    if (tk != 1 || tv != 1) {
        std::fprintf(stderr, "llama_side: llama_context_params has another layout (type_k %d, type_v %d)\n", tk, tv);
        return false;
    }
    std::memcpy(cp.bytes + 104, &type, 4);
    std::memcpy(cp.bytes + 108, &type, 4);
    return true;
}

// logits MODEL IDS_CSV OUT: one batch, an output for every token (llama_batch_get_one asks for the
// last token's only), rows in batch order.
int logits_cmd(const char* model_path, const char* ids_csv, const char* out_path) {
    std::vector<llama_token> ids;
    for (const char* p = ids_csv; *p;) {
        char* end = nullptr;
        const long v = std::strtol(p, &end, 10);
        if (end == p || v < 0 || (*end && *end != ',')) {
            std::fprintf(stderr, "llama_side logits: bad id list \"%s\"\n", ids_csv);
            return 2;
        }
        ids.push_back(static_cast<llama_token>(v));
        p = *end == ',' ? end + 1 : end;
    }
    if (ids.empty()) return 2;
    const int n = static_cast<int>(ids.size());
    llama_model* model = llama_model_load_from_file(model_path, llama_model_default_params());
    if (!model) return 1;
    const int n_vocab = llama_vocab_n_tokens(llama_model_get_vocab(model));
    for (llama_token t : ids)
        if (t >= n_vocab) {
            std::fprintf(stderr, "llama_side logits: id %d outside the vocabulary (%d)\n", t, n_vocab);
            return 2;
        }
    params_blob cp = llama_context_default_params();
    const uint32_t n_ctx = static_cast<uint32_t>(n), n_batch = static_cast<uint32_t>(n);
    std::memcpy(cp.bytes + 0, &n_ctx, 4);  // n_ctx, n_batch, n_ubatch: the whole batch in one ubatch
    std::memcpy(cp.bytes + 4, &n_batch, 4);
    std::memcpy(cp.bytes + 8, &n_batch, 4);
    // flash_attn_type at offset 52 (after 9 uint32 counts and 4 enums): AUTO (-1) by default, set
    // to DISABLED (0); checked first, as the KV types are.
    std::int32_t fa = 0;
    std::memcpy(&fa, cp.bytes + 52, 4);
    if (fa != -1) {
        std::fprintf(stderr, "llama_side: llama_context_params has another layout (flash_attn_type %d)\n", fa);
        return 1;
    }
    const std::int32_t fa_off = 0;
    std::memcpy(cp.bytes + 52, &fa_off, 4);
    if (!set_kv_type(cp, 0)) return 1;  // GGML_TYPE_F32
    llama_context* ctx = llama_init_from_model(model, cp);
    if (!ctx) return 1;
    const char* th = std::getenv("LLAMA_SIDE_THREADS");
    const int threads = th ? std::max(1, std::atoi(th)) : 1;
    llama_set_n_threads(ctx, threads, threads);
    llama_batch b = llama_batch_init(n, 0, 1);
    for (int i = 0; i < n; ++i) {
        b.token[i] = ids[i];
        b.pos[i] = i;
        b.n_seq_id[i] = 1;
        b.seq_id[i][0] = 0;
        b.logits[i] = 1;
    }
    b.n_tokens = n;
    if (llama_decode(ctx, b) != 0) {
        std::fprintf(stderr, "llama_decode failed\n");
        return 1;
    }
    llama_synchronize(ctx);
    std::FILE* f = std::fopen(out_path, "wb");
    if (!f) return 1;
    for (int i = 0; i < n; ++i) {
        const float* row = llama_get_logits_ith(ctx, i);
        if (!row || std::fwrite(row, sizeof(float), n_vocab, f) != static_cast<std::size_t>(n_vocab)) {
            std::fclose(f);
            return 1;
        }
    }
    llama_batch_free(b);
    return std::fclose(f) == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 3) {
        std::fprintf(stderr, "usage: llama_side quantize IN OUT q8_0|q4_0|bf16|f32|q4_k_m|q5_k_m|q6_k | bench MODEL THREADS [P] [N] [R] [DEPTH] [f16|q8_0]"
                             " | logits MODEL IDS_CSV OUT\n");
        return 2;
    }
    const std::string cmd = argv[1];
    // Warnings, errors and which CPU variant was loaded; not llama.cpp's chatty info lines, unless
    // LLAMA_SIDE_LOG is set (to see, say, the KV cache's types and size).
    static const bool all_lines = std::getenv("LLAMA_SIDE_LOG") != nullptr;
    llama_log_set(
        [](int level, const char* text, void*) {
            if (all_lines || (level >= 3 && level <= 4) || std::strstr(text, "CPU backend")) std::fputs(text, stderr);
        },
        nullptr);
    const char* libdir = std::getenv("LLAMA_LIB_DIR");
    ggml_backend_load_all_from_path(libdir ? libdir : ".");
    llama_backend_init();

    if (cmd == "quantize" && argc == 5) {
        const std::string t = argv[4];
        // enum llama_ftype: the first three "pure", the others with llama-quantize's default rules.
        const bool pure = t == "q8_0" || t == "q4_0" || t == "bf16";
        const int ftype = t == "q8_0" ? 7 : t == "q4_0" ? 2 : t == "bf16" ? 32 : t == "f32" ? 0 : t == "q4_k_m" ? 15
                          : t == "q5_k_m" ? 17 : t == "q6_k" ? 18 : -1;
        if (ftype < 0) return 2;
        params_blob p = llama_model_quantize_default_params();
        std::memcpy(p.bytes + 4, &ftype, 4);  // nthread, then ftype
        // nthread, ftype, output_tensor_type, token_embedding_type, allow_requantize,
        // quantize_output_tensor, only_copy, pure: with pure, every matrix in the named type (no Q6_K
        // output).
        if (pure) p.bytes[19] = 1;
        return llama_model_quantize(argv[2], argv[3], p.bytes) == 0 ? 0 : 1;
    }
    if (cmd == "logits" && argc == 5) return logits_cmd(argv[2], argv[3], argv[4]);
    if (cmd != "bench") return 2;
    const int threads = std::atoi(argv[3]);
    const int n_prompt = argc > 4 ? std::atoi(argv[4]) : 512;
    const int n_gen = argc > 5 ? std::atoi(argv[5]) : 128;
    const int repeat = argc > 6 ? std::atoi(argv[6]) : 5;
    const int depth = argc > 7 ? std::atoi(argv[7]) : 0;
    const std::string kv = argc > 8 ? argv[8] : "f16";  // the KV cache's type (-ctk/-ctv)
    if (kv != "f16" && kv != "q8_0") return 2;

    llama_model* model = llama_model_load_from_file(argv[2], llama_model_default_params());
    if (!model) return 1;
    params_blob cp = llama_context_default_params();
    const uint32_t n_ctx = static_cast<uint32_t>(depth + std::max(n_prompt, n_gen) + 16), n_batch = 512;
    std::memcpy(cp.bytes + 0, &n_ctx, 4);  // n_ctx, n_batch, n_ubatch
    std::memcpy(cp.bytes + 4, &n_batch, 4);
    std::memcpy(cp.bytes + 8, &n_batch, 4);
    if (kv == "q8_0" && !set_kv_type(cp, 8)) return 1;  // GGML_TYPE_Q8_0
    llama_context* ctx = llama_init_from_model(model, cp);
    if (!ctx) return 1;
    llama_set_n_threads(ctx, threads, threads);
    const int n_vocab = llama_vocab_n_tokens(llama_model_get_vocab(model));
    std::mt19937 rng(1);
    auto random_tokens = [&](int n) {
        std::vector<llama_token> t(n);
        for (auto& x : t) x = static_cast<llama_token>(rng() % n_vocab);
        return t;
    };
    auto* mem = llama_get_memory(ctx);
    auto prefill_depth = [&] {
        llama_memory_clear(mem, true);
        if (depth > 0) {
            auto d = random_tokens(depth);
            decode(ctx, d, n_batch);
        }
    };

    // Warm-up, as llama-bench: one prompt batch and one generated token.
    prefill_depth();
    {
        auto t = random_tokens(std::min(n_prompt, 512));
        decode(ctx, t, n_batch);
        auto g = random_tokens(1);
        decode(ctx, g, 1);
    }
    std::vector<double> pp, tg;
    for (int r = 0; r < repeat; ++r) {
        if (n_prompt > 0) {
            prefill_depth();
            auto t = random_tokens(n_prompt);
            const auto t0 = clk::now();
            decode(ctx, t, n_batch);
            pp.push_back(n_prompt / std::chrono::duration<double>(clk::now() - t0).count());
        }
        if (n_gen > 0) {
            prefill_depth();
            const auto t0 = clk::now();
            for (int i = 0; i < n_gen; ++i) {
                auto g = random_tokens(1);
                decode(ctx, g, 1);
            }
            tg.push_back(n_gen / std::chrono::duration<double>(clk::now() - t0).count());
        }
    }
    auto obj = [](const std::vector<double>& v) {
        if (v.empty()) return std::string("null");
        const Stats s = stats(v);
        char b[128];
        std::snprintf(b, sizeof b, "{\"median\": %.3f, \"min\": %.3f, \"max\": %.3f}", s.median, s.min, s.max);
        return std::string(b);
    };
    std::printf("{\"pp_tok_s\": %s, \"tg_tok_s\": %s, \"threads\": %d, \"depth\": %d}\n", obj(pp).c_str(), obj(tg).c_str(),
                threads, depth);
    return 0;
}
