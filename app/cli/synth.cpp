// windowpane-cli synth: a complete random-weight model folder at the exact shape of a real model,
// for benchmarks (real weights cannot be downloaded on the build machines).
#include "synth.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "wp/error.h"
#include "wp/io/float16.h"

namespace wp::cli {

namespace fs = std::filesystem;
using ojson = nlohmann::ordered_json;

namespace {

// Shapes from the models' own config.json files on the Hugging Face hub.
struct Preset {
    const char* name;
    const char* model_type;
    int vocab, hidden, inter, layers, heads, kv_heads, head_dim, max_pos;
    bool tied;
    double rope_theta;
    const char* tokenizer_fixture;  // a fixture whose tokenizer is copied in
    int sliding_window = 4096;      // Gemma2's sliding layers
};

const Preset kPresets[] = {
    {"gemma-2b", "gemma", 256000, 2048, 16384, 18, 8, 1, 256, 8192, true, 10000.0, "tiny-gemma"},
    {"gemma2-2b", "gemma2", 256000, 2304, 9216, 26, 8, 4, 256, 8192, true, 10000.0, "tiny-gemma2"},
    {"gemma2-9b", "gemma2", 256000, 3584, 14336, 42, 16, 8, 256, 8192, true, 10000.0, "tiny-gemma2"},
    {"qwen2-0.5b", "qwen2", 151936, 896, 4864, 24, 14, 2, 64, 32768, true, 1000000.0, "tiny-qwen2"},
    {"qwen2-1.5b", "qwen2", 151936, 1536, 8960, 28, 12, 2, 128, 32768, true, 1000000.0, "tiny-qwen2"},
    {"qwen2-7b", "qwen2", 152064, 3584, 18944, 28, 28, 4, 128, 32768, false, 1000000.0, "tiny-qwen2"},
    // Small test shapes whose every matrix row is a multiple of 256 long, so llama.cpp's K-quants
    // apply to all of them (tests/gguf); the fixtures' 1000-token vocabularies.
    {"gemma2-k256", "gemma2", 1000, 256, 512, 4, 4, 2, 64, 8192, true, 10000.0, "tiny-gemma2", 16},
    {"qwen2-k256", "qwen2", 1000, 256, 512, 4, 4, 2, 64, 32768, false, 1000000.0, "tiny-qwen2"},
};

ojson config_for(const Preset& p, const std::string& dtype, int labels) {
    ojson c;
    const bool gemma = std::string(p.model_type) != "qwen2";
    const std::string family = std::string(p.model_type) == "gemma"    ? "Gemma"
                               : std::string(p.model_type) == "gemma2" ? "Gemma2"
                                                                       : "Qwen2";
    c["architectures"] = {family + (labels > 0 ? "ForSequenceClassification" : "ForCausalLM")};
    if (labels > 0) {
        ojson id2label;
        for (int i = 0; i < labels; ++i) id2label[std::to_string(i)] = "LABEL_" + std::to_string(i);
        c["id2label"] = id2label;
    }
    c["model_type"] = p.model_type;
    c["vocab_size"] = p.vocab;
    c["hidden_size"] = p.hidden;
    c["intermediate_size"] = p.inter;
    c["num_hidden_layers"] = p.layers;
    c["num_attention_heads"] = p.heads;
    c["num_key_value_heads"] = p.kv_heads;
    if (gemma) c["head_dim"] = p.head_dim;
    c["max_position_embeddings"] = p.max_pos;
    c["rms_norm_eps"] = 1e-6;
    c["rope_theta"] = p.rope_theta;
    c["tie_word_embeddings"] = p.tied;
    c["torch_dtype"] = dtype == "bf16" ? "bfloat16" : "float32";
    if (gemma) {
        c["hidden_activation"] = "gelu_pytorch_tanh";
        c["bos_token_id"] = 2;
        c["eos_token_id"] = 1;
        c["pad_token_id"] = 0;
    } else {
        c["hidden_act"] = "silu";
        c["use_sliding_window"] = false;
        c["sliding_window"] = p.max_pos;
        c["max_window_layers"] = p.layers;
        c["bos_token_id"] = 151643;
        c["eos_token_id"] = 151645;
    }
    if (std::string(p.model_type) == "gemma2") {
        c["query_pre_attn_scalar"] = p.head_dim;  // as the real 2B and 9B (and GGUF files: head_dim^-0.5)
        c["sliding_window"] = p.sliding_window;
        c["attn_logit_softcapping"] = 50.0;
        c["final_logit_softcapping"] = 30.0;
        c["cache_implementation"] = "hybrid";
    }
    return c;
}

struct TensorSpec {
    std::string name;
    std::vector<std::int64_t> shape;
    float scale;   // standard deviation of the random values
    float offset;  // added (norm weights)
    std::uint64_t bytes(std::size_t elem) const {
        std::uint64_t n = elem;
        for (auto d : shape) n *= static_cast<std::uint64_t>(d);
        return n;
    }
};

std::vector<TensorSpec> tensors_for(const Preset& p, int labels) {
    const bool gemma = std::string(p.model_type) != "qwen2";
    const bool gemma2 = std::string(p.model_type) == "gemma2";
    const std::int64_t H = p.hidden, I = p.inter, V = p.vocab, QD = static_cast<std::int64_t>(p.heads) * p.head_dim,
                       KD = static_cast<std::int64_t>(p.kv_heads) * p.head_dim;
    // Scales keep activations finite and logits spread: weights ~ N(0, 1/fan_in); Gemma's norm
    // weights are applied as (1 + w), so w ~ 0; Qwen2's as w, so w ~ 1.
    const float norm_offset = gemma ? 0.0f : 1.0f;
    std::vector<TensorSpec> t;
    t.push_back({"model.embed_tokens.weight", {V, H}, gemma ? 1.0f / std::sqrt(static_cast<float>(H)) : 0.05f, 0});
    for (int l = 0; l < p.layers; ++l) {
        const std::string pre = "model.layers." + std::to_string(l) + ".";
        auto lin = [&](const std::string& n, std::int64_t out, std::int64_t in) {
            t.push_back({pre + n + ".weight", {out, in}, 1.0f / std::sqrt(static_cast<float>(in)), 0});
        };
        t.push_back({pre + "input_layernorm.weight", {H}, 0.02f, norm_offset});
        lin("self_attn.q_proj", QD, H);
        lin("self_attn.k_proj", KD, H);
        lin("self_attn.v_proj", KD, H);
        if (!gemma) {
            t.push_back({pre + "self_attn.q_proj.bias", {QD}, 0.02f, 0});
            t.push_back({pre + "self_attn.k_proj.bias", {KD}, 0.02f, 0});
            t.push_back({pre + "self_attn.v_proj.bias", {KD}, 0.02f, 0});
        }
        lin("self_attn.o_proj", H, QD);
        t.push_back({pre + "post_attention_layernorm.weight", {H}, 0.02f, norm_offset});
        if (gemma2) {
            t.push_back({pre + "pre_feedforward_layernorm.weight", {H}, 0.02f, norm_offset});
            t.push_back({pre + "post_feedforward_layernorm.weight", {H}, 0.02f, norm_offset});
        }
        lin("mlp.gate_proj", I, H);
        lin("mlp.up_proj", I, H);
        lin("mlp.down_proj", H, I);
    }
    t.push_back({"model.norm.weight", {H}, 0.02f, norm_offset});
    if (labels > 0) t.push_back({"score.weight", {labels, H}, 1.0f / std::sqrt(static_cast<float>(H)), 0});
    else if (!p.tied) t.push_back({"lm_head.weight", {V, H}, 1.0f / std::sqrt(static_cast<float>(H)), 0});
    return t;
}

// Fast deterministic normal-ish values: sum of uniforms (Irwin-Hall, 4 terms), xorshift.
struct Rng {
    std::uint64_t s;
    std::uint64_t next() {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        return s;
    }
    float normal() {
        const std::uint64_t r = next();
        float sum = 0;
        for (int i = 0; i < 4; ++i) sum += static_cast<float>((r >> (16 * i)) & 0xffff) / 65535.0f;
        return (sum - 2.0f) * 1.7320508f;  // variance of the sum of 4 U(0,1) is 1/3
    }
};

void write_shard(const fs::path& path, const std::vector<const TensorSpec*>& tensors, bool bf16, std::uint64_t seed) {
    const std::size_t elem = bf16 ? 2 : 4;
    ojson header;
    header["__metadata__"] = {{"format", "pt"}};
    std::uint64_t off = 0;
    for (const TensorSpec* t : tensors) {
        header[t->name] = {{"dtype", bf16 ? "BF16" : "F32"}, {"shape", t->shape}, {"data_offsets", {off, off + t->bytes(elem)}}};
        off += t->bytes(elem);
    }
    std::string h = header.dump();
    while (h.size() % 8) h += ' ';
    // Every write covers whole, aligned 4 MB pieces of the file (the header included), as a
    // downloader writing fixed-size chunks does: the page cache then holds the file in 2 MB
    // folios that a mapping can use as huge pages (bf16 decoding reads the weights straight
    // from the mapping). Writes at unaligned offsets (the header first, then the data) left a
    // third to a half of each model in small folios.
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    if (!out) throw Error(path.string() + ": cannot write");
    std::vector<char> buf(std::size_t{1} << 22);
    std::size_t used = 0;
    auto put = [&](const void* data, std::size_t n) {
        const char* p = static_cast<const char*>(data);
        while (n > 0) {
            const std::size_t k = std::min(n, buf.size() - used);
            std::memcpy(buf.data() + used, p, k);
            used += k;
            p += k;
            n -= k;
            if (used == buf.size()) {
                out.write(buf.data(), static_cast<std::streamsize>(used));
                used = 0;
            }
        }
    };
    const std::uint64_t hl = h.size();
    put(&hl, 8);
    put(h.data(), h.size());
    std::vector<char> chunk(std::size_t{1} << 20);
    for (const TensorSpec* t : tensors) {
        Rng rng{seed ^ (std::hash<std::string>{}(t->name) | 1)};
        std::uint64_t left = t->bytes(elem) / elem;
        while (left > 0) {
            const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(left, chunk.size() / elem));
            for (std::size_t i = 0; i < n; ++i) {
                const float v = t->offset + t->scale * rng.normal();
                if (bf16) {
                    const std::uint16_t b = f32_to_bf16(v);
                    std::memcpy(chunk.data() + 2 * i, &b, 2);
                } else {
                    std::memcpy(chunk.data() + 4 * i, &v, 4);
                }
            }
            put(chunk.data(), n * elem);
            left -= n;
        }
    }
    out.write(buf.data(), static_cast<std::streamsize>(used));
    out.flush();
    if (!out) throw Error(path.string() + ": write failed (disk full?)");
}

}  // namespace

std::vector<std::string> synth_presets() {
    std::vector<std::string> v;
    for (const Preset& p : kPresets) v.push_back(p.name);
    return v;
}

int synth(const std::string& preset, const std::string& dtype, const std::string& out_dir, std::uint64_t seed,
          const std::string& shared_dir, bool config_only, int labels) {
    const Preset* p = nullptr;
    for (const Preset& c : kPresets)
        if (preset == c.name) p = &c;
    if (p == nullptr) {
        std::string names;
        for (const auto& n : synth_presets()) names += (names.empty() ? "" : ", ") + n;
        throw Error("unknown preset \"" + preset + "\" (" + names + ")");
    }
    if (dtype != "bf16" && dtype != "f32") throw Error("--dtype must be bf16 or f32");
    const fs::path dir(out_dir);
    fs::create_directories(dir);
    const bool bf16 = dtype == "bf16";
    if (labels < 0) throw Error("--labels must be 0 (a causal LM) or more");
    const auto tensors = tensors_for(*p, labels);
    std::uint64_t total = 0;
    for (const auto& t : tensors) total += t.bytes(bf16 ? 2 : 4);

    {
        std::ofstream cfg(dir / "config.json");
        cfg << config_for(*p, dtype, labels).dump(2) << "\n";
        std::ofstream gen(dir / "generation_config.json");
        ojson g;
        g["eos_token_id"] = std::string(p->model_type) == "qwen2" ? ojson::array({151645, 151643}) : ojson::array({1, 107});
        if (std::string(p->model_type) == "gemma2") g["cache_implementation"] = "hybrid";
        gen << g.dump(2) << "\n";
    }
    // A tokenizer (a tiny fixture's: its ids are valid in any of these vocabularies).
    const fs::path tok_src = fs::path(shared_dir) / "fixtures" / p->tokenizer_fixture;
    for (const char* f : {"tokenizer.json", "tokenizer.model", "tokenizer_config.json", "special_tokens_map.json"})
        if (fs::exists(tok_src / f)) fs::copy_file(tok_src / f, dir / f, fs::copy_options::overwrite_existing);
    if (!fs::exists(dir / "tokenizer.json") && !fs::exists(dir / "tokenizer.model"))
        std::fprintf(stderr, "note: no tokenizer copied (%s not found); token-id commands still work\n", tok_src.c_str());

    if (config_only) {
        std::printf("%s: config only (%0.2f GB of weights not written)\n", dir.c_str(), total / 1e9);
        return 0;
    }
    const fs::space_info space = fs::space(dir);
    if (space.available < total + (1ull << 30))
        throw Error("not enough disk space for " + std::to_string(total / 1000000) + " MB of weights in " + dir.string() +
                    " (use --config-only)");

    // Shards of at most ~2 GB, as the hub's checkpoints are split.
    const std::uint64_t shard_limit = 2ull << 30;
    std::vector<std::vector<const TensorSpec*>> shards(1);
    std::uint64_t in_shard = 0;
    for (const auto& t : tensors) {
        const std::uint64_t b = t.bytes(bf16 ? 2 : 4);
        if (in_shard > 0 && in_shard + b > shard_limit) {
            shards.emplace_back();
            in_shard = 0;
        }
        shards.back().push_back(&t);
        in_shard += b;
    }
    for (const char* stale : {"model.safetensors", "model.safetensors.index.json"}) fs::remove(dir / stale);
    if (shards.size() == 1) {
        write_shard(dir / "model.safetensors", shards[0], bf16, seed);
    } else {
        ojson index;
        index["metadata"] = {{"total_size", total}};
        for (std::size_t i = 0; i < shards.size(); ++i) {
            char name[64];
            std::snprintf(name, sizeof name, "model-%05zu-of-%05zu.safetensors", i + 1, shards.size());
            write_shard(dir / name, shards[i], bf16, seed + i);
            for (const TensorSpec* t : shards[i]) index["weight_map"][t->name] = name;
            std::fprintf(stderr, "wrote %s\n", name);
        }
        std::ofstream(dir / "model.safetensors.index.json") << index.dump(2) << "\n";
    }
    std::printf("%s: %s %s, %.2f GB of random weights in %zu file(s)\n", dir.c_str(), p->name, dtype.c_str(), total / 1e9,
                shards.size());
    return 0;
}

}  // namespace wp::cli
