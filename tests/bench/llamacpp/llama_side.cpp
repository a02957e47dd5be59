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
//   llama_side batched MODEL.gguf THREADS STREAMS_CSV [PROMPT=32] [GEN=64] [REPEAT=3] [CTX=256] [f16|q8_0]
//
// bench prints one JSON object: {"pp_tok_s": {...}, "tg_tok_s": {...}} with median, min and max.
// batched drives llama.cpp's batched decode as llama-batched-bench does (tools/batched-bench: a
// context with n_seq_max = N sequences, the KV cache not unified, n_batch 2048, n_ubatch 512,
// flash attention and swa_full as its defaults; N different random prompts of PROMPT tokens in one
// batch, then one llama_decode of N tokens per step, each with its own sequence id and position).
// Unlike batched-bench, each sequence's next token is the argmax of its logits (greedy, as
// `windowpane-cli bench-batch` asks its scheduler for), and the counting is bench-batch's: each
// sequence generates GEN tokens, the first from the prompt pass, and decode tokens/s is the
// N x (GEN - 1) tokens after the first ones over the time from the first tokens to the last step.
// For each N of STREAMS_CSV, a context of N sequences of CTX positions each (n_ctx = N x CTX), a
// warm-up round (GEN 2), then REPEAT rounds; prints one JSON object with a row per N:
// decode_tok_s and ttft_ms (prompt pass of all N to their first tokens) as median, min and max.
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
void llama_free(llama_context* ctx);
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

// The model's parameters: the defaults, or with LLAMA_NO_EXTRA_BUFTS set, use_extra_bufts off, so
// that llama.cpp keeps its weights in plain CPU buffers (no AMX or repacked layouts; on a machine
// where its AMX kernels fault, the fastest of it that runs). The flag is the third of the booleans
// at offset 72 in this llama.cpp's llama_model_params (vocab_only, check_tensors, use_extra_bufts,
// no_host: defaults 0, 0, 1, 0), checked before it is written.
params_blob model_params() {
    params_blob mp = llama_model_default_params();
    if (std::getenv("LLAMA_NO_EXTRA_BUFTS") == nullptr) return mp;
    if (mp.bytes[72] != 0 || mp.bytes[73] != 0 || mp.bytes[74] != 1 || mp.bytes[75] != 0) {
        std::fprintf(stderr, "llama_side: llama_model_params has another layout (no use_extra_bufts at 74)\n");
        std::exit(2);
    }
    mp.bytes[74] = 0;
    return mp;
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
    llama_model* model = llama_model_load_from_file(model_path, model_params());
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

std::string spread_json(const std::vector<double>& v) {
    if (v.empty()) return "null";
    const Stats s = stats(v);
    char b[128];
    std::snprintf(b, sizeof b, "{\"median\": %.3f, \"min\": %.3f, \"max\": %.3f}", s.median, s.min, s.max);
    return b;
}

int argmax(const float* row, int n) {
    return static_cast<int>(std::max_element(row, row + n) - row);
}

// batched MODEL THREADS STREAMS_CSV PROMPT GEN REPEAT CTX KV: see the top of the file.
int batched_cmd(const char* model_path, int threads, const char* streams_csv, int n_prompt, int n_gen, int repeat,
                int ctx_per_seq, const std::string& kv) {
    std::vector<int> streams;
    for (const char* p = streams_csv; *p;) {
        char* end = nullptr;
        const long v = std::strtol(p, &end, 10);
        if (end == p || v < 1 || v > 256 || (*end && *end != ',')) {
            std::fprintf(stderr, "llama_side batched: bad stream list \"%s\"\n", streams_csv);
            return 2;
        }
        streams.push_back(static_cast<int>(v));
        p = *end == ',' ? end + 1 : end;
    }
    if (streams.empty() || threads < 1 || n_prompt < 1 || n_gen < 2 || repeat < 1 || ctx_per_seq < n_prompt + n_gen) {
        std::fprintf(stderr, "llama_side batched: streams >= 1, threads >= 1, PROMPT >= 1, GEN >= 2, REPEAT >= 1, "
                             "CTX >= PROMPT + GEN\n");
        return 2;
    }
    llama_model* model = llama_model_load_from_file(model_path, model_params());
    if (!model) return 1;
    const int n_vocab = llama_vocab_n_tokens(llama_model_get_vocab(model));
    std::mt19937 rng(1);
    auto random_token = [&] { return static_cast<llama_token>(rng() % n_vocab); };

    std::string rows;
    for (const int n : streams) {
        params_blob cp = llama_context_default_params();
        // n_ctx (all sequences: each gets CTX when the cache is not unified), n_batch (a whole
        // prompt pass in one llama_decode; batched-bench's 2048 at least), n_ubatch 512, n_seq_max.
        const uint32_t n_ctx = static_cast<uint32_t>(n * ctx_per_seq);
        const uint32_t n_batch = static_cast<uint32_t>(std::max(2048, n * n_prompt)), n_ubatch = 512;
        const uint32_t n_seq_max = static_cast<uint32_t>(n);
        std::uint32_t seq_default = 0;
        std::memcpy(&seq_default, cp.bytes + 12, 4);
        // The booleans at 128..133: embeddings, offload_kqv, no_perf, op_offload, swa_full, kv_unified
        // (defaults false, true, true, true, true, false): checked, as the KV types are.
        const unsigned char bools[6] = {0, 1, 1, 1, 1, 0};
        if (seq_default != 1 || std::memcmp(cp.bytes + 128, bools, 6) != 0) {
            std::fprintf(stderr, "llama_side: llama_context_params has another layout (n_seq_max %u)\n", seq_default);
            return 1;
        }
        std::memcpy(cp.bytes + 0, &n_ctx, 4);
        std::memcpy(cp.bytes + 4, &n_batch, 4);
        std::memcpy(cp.bytes + 8, &n_ubatch, 4);
        std::memcpy(cp.bytes + 12, &n_seq_max, 4);
        cp.bytes[132] = 0;  // swa_full: false, as common_params (and so batched-bench) has it
        // kv_unified (133) stays false: batched-bench's default.
        if (kv == "q8_0" && !set_kv_type(cp, 8)) return 1;  // GGML_TYPE_Q8_0
        llama_context* ctx = llama_init_from_model(model, cp);
        if (!ctx) return 1;
        llama_set_n_threads(ctx, threads, threads);
        auto* mem = llama_get_memory(ctx);
        llama_batch batch = llama_batch_init(static_cast<int32_t>(n_batch), 0, 1);
        auto add = [&](llama_token t, int pos, int seq, bool out) {
            const int i = batch.n_tokens++;
            batch.token[i] = t;
            batch.pos[i] = pos;
            batch.n_seq_id[i] = 1;
            batch.seq_id[i][0] = seq;
            batch.logits[i] = out ? 1 : 0;
        };
        auto run = [&](llama_batch& b) {
            if (llama_decode(ctx, b) != 0) {
                std::fprintf(stderr, "llama_decode failed (%d sequences)\n", n);
                std::exit(1);
            }
            llama_synchronize(ctx);
        };
        // One round: N prompts in one batch, then GEN - 1 steps of N tokens. Returns decode
        // tokens/s and the time to the first tokens (ms).
        auto round = [&](int gen, double* ttft_ms) {
            llama_memory_clear(mem, false);
            batch.n_tokens = 0;
            for (int j = 0; j < n; ++j)
                for (int i = 0; i < n_prompt; ++i) add(random_token(), i, j, i == n_prompt - 1);
            std::vector<llama_token> next(static_cast<std::size_t>(n));
            const auto t0 = clk::now();
            run(batch);
            for (int j = 0; j < n; ++j) next[j] = argmax(llama_get_logits_ith(ctx, (j + 1) * n_prompt - 1), n_vocab);
            const auto t_first = clk::now();
            for (int step = 1; step < gen; ++step) {
                batch.n_tokens = 0;
                for (int j = 0; j < n; ++j) add(next[j], n_prompt + step - 1, j, true);
                run(batch);
                for (int j = 0; j < n; ++j) next[j] = argmax(llama_get_logits_ith(ctx, j), n_vocab);
            }
            const auto t_end = clk::now();
            *ttft_ms = 1e3 * std::chrono::duration<double>(t_first - t0).count();
            return n * (gen - 1) / std::chrono::duration<double>(t_end - t_first).count();
        };
        // Warm-up, as batched-bench (16 tokens of sequence 0), then one short round.
        batch.n_tokens = 0;
        for (int i = 0; i < 16; ++i) add(random_token(), i, 0, false);
        run(batch);
        double ttft = 0;
        round(2, &ttft);
        std::vector<double> tps, ttfts;
        for (int r = 0; r < repeat; ++r) {
            tps.push_back(round(n_gen, &ttft));
            ttfts.push_back(ttft);
        }
        llama_batch_free(batch);
        llama_free(ctx);
        char b[160];
        std::snprintf(b, sizeof b, "%s{\"streams\": %d, \"decode_tokens\": %d, \"decode_tok_s\": ", rows.empty() ? "" : ", ", n,
                      n * (n_gen - 1));
        rows += b + spread_json(tps) + ", \"ttft_ms\": " + spread_json(ttfts) + "}";
    }
    std::printf("{\"engine\": \"llama.cpp\", \"threads\": %d, \"prompt_tokens\": %d, \"gen_tokens\": %d, \"repeat\": %d, "
                "\"ctx\": %d, \"kv\": \"%s\", \"rows\": [%s]}\n",
                threads, n_prompt, n_gen, repeat, ctx_per_seq, kv.c_str(), rows.c_str());
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 3) {
        std::fprintf(stderr, "usage: llama_side quantize IN OUT q8_0|q4_0|bf16|f32|q4_k_m|q5_k_m|q6_k | bench MODEL THREADS [P] [N] [R] [DEPTH] [f16|q8_0]"
                             " | logits MODEL IDS_CSV OUT"
                             " | batched MODEL THREADS STREAMS_CSV [P] [G] [R] [CTX] [f16|q8_0]\n");
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
    if (cmd == "batched" && argc >= 5 && argc <= 10) {
        const std::string kv = argc > 9 ? argv[9] : "f16";
        if (kv != "f16" && kv != "q8_0") return 2;
        return batched_cmd(argv[2], std::atoi(argv[3]), argv[4], argc > 5 ? std::atoi(argv[5]) : 32,
                           argc > 6 ? std::atoi(argv[6]) : 64, argc > 7 ? std::atoi(argv[7]) : 3,
                           argc > 8 ? std::atoi(argv[8]) : 256, kv);
    }
    if (cmd != "bench") return 2;
    const int threads = std::atoi(argv[3]);
    const int n_prompt = argc > 4 ? std::atoi(argv[4]) : 512;
    const int n_gen = argc > 5 ? std::atoi(argv[5]) : 128;
    const int repeat = argc > 6 ? std::atoi(argv[6]) : 5;
    const int depth = argc > 7 ? std::atoi(argv[7]) : 0;
    const std::string kv = argc > 8 ? argv[8] : "f16";  // the KV cache's type (-ctk/-ctv)
    if (kv != "f16" && kv != "q8_0") return 2;

    llama_model* model = llama_model_load_from_file(argv[2], model_params());
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
