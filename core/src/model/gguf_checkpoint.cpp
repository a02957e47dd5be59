#include "model/gguf_checkpoint.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "wp/error.h"

namespace wp {

namespace {

using json = nlohmann::json;

constexpr const char* kArchitectures[] = {"gemma", "gemma2", "qwen2"};

struct Meta {
    const GgufFile& f;
    std::string arch;
    std::string where() const { return f.path().filename().string(); }

    // A positive integer hyperparameter `arch.key`, at most `max`.
    std::int64_t shape(const std::string& key, std::int64_t max, bool required = true,
                       std::int64_t fallback = 0) const {
        const std::string k = arch + "." + key;
        const auto v = f.get_int(k);
        if (!v) {
            if (required) throw Error(where() + ": " + k + " is missing");
            return fallback;
        }
        if (*v <= 0 || *v > max)
            throw Error(where() + ": " + k + " = " + std::to_string(*v) + " is out of range (1.." + std::to_string(max) + ")");
        return *v;
    }
    std::optional<double> number(const std::string& key) const { return f.get_float(arch + "." + key); }
};

// Token ids from the tokenizer metadata; an id outside the vocabulary is an error, not a crash later.
std::optional<int> token_id(const GgufFile& f, const std::string& key, std::int64_t vocab) {
    const auto v = f.get_int(key);
    if (!v) return std::nullopt;
    if (*v < 0 || *v >= vocab)
        throw Error(f.path().filename().string() + ": " + key + " = " + std::to_string(*v) + " is outside the vocabulary (0.." +
                    std::to_string(vocab - 1) + ")");
    return static_cast<int>(*v);
}

}  // namespace

ModelConfig gguf_model_config(const GgufFile& file) {
    Meta m{file, file.require_string("general.architecture")};
    if (std::find_if(std::begin(kArchitectures), std::end(kArchitectures), [&](const char* a) { return m.arch == a; }) ==
        std::end(kArchitectures))
        throw Error(m.where() + ": general.architecture \"" + m.arch +
                    "\" is not one Windowpane runs (gemma, gemma2, qwen2)");
    const GgufTensor* embd = file.tensor("token_embd.weight");
    if (embd == nullptr || embd->dims.size() != 2) throw Error(m.where() + ": no two-dimensional token_embd.weight tensor");

    json c;
    c["model_type"] = m.arch;
    c["architectures"] = json::array({m.arch == "gemma" ? "GemmaForCausalLM" : m.arch == "gemma2" ? "Gemma2ForCausalLM"
                                                                                                 : "Qwen2ForCausalLM"});
    const std::int64_t hidden = m.shape("embedding_length", 1 << 17);
    const std::int64_t layers = m.shape("block_count", 1024);
    const std::int64_t heads = m.shape("attention.head_count", 1024);
    // The vocabulary is the embedding's rows (the converter pads the token list to it).
    const std::int64_t vocab = embd->dims[1];
    if (vocab > (1 << 22))  // config.json's bound, before any token id is compared with it
        throw Error(m.where() + ": token_embd.weight has " + std::to_string(vocab) + " rows, more than 4194304 tokens");
    c["vocab_size"] = vocab;
    c["hidden_size"] = hidden;
    c["num_hidden_layers"] = layers;
    c["num_attention_heads"] = heads;
    c["num_key_value_heads"] = m.shape("attention.head_count_kv", 1024, false, heads);
    c["intermediate_size"] = m.shape("feed_forward_length", 1 << 20);
    c["max_position_embeddings"] = m.shape("context_length", 1 << 22);
    const std::int64_t head_dim = m.shape("attention.key_length", 2048, false, hidden / heads);
    if (m.shape("attention.value_length", 2048, false, head_dim) != head_dim)
        throw Error(m.where() + ": " + m.arch + ".attention.value_length differs from the key length");
    c["head_dim"] = head_dim;
    if (auto eps = m.number("attention.layer_norm_rms_epsilon")) c["rms_norm_eps"] = *eps;
    if (auto theta = m.number("rope.freq_base")) c["rope_theta"] = *theta;
    if (auto scaling = file.get_string(m.arch + ".rope.scaling.type"); scaling && *scaling != "none")
        throw Error(m.where() + ": " + m.arch + ".rope.scaling.type \"" + *scaling + "\" is not supported (only default RoPE)");
    if (auto dims = file.get_int(m.arch + ".rope.dimension_count"); dims && *dims != head_dim)
        throw Error(m.where() + ": " + m.arch + ".rope.dimension_count = " + std::to_string(*dims) +
                    " (partial rotary embeddings are not supported)");
    c["tie_word_embeddings"] = file.tensor("output.weight") == nullptr;
    if (m.arch == "gemma2") {
        if (auto v = m.number("attn_logit_softcapping")) c["attn_logit_softcapping"] = *v;
        if (auto v = m.number("final_logit_softcapping")) c["final_logit_softcapping"] = *v;
        c["sliding_window"] = m.shape("attention.sliding_window", 1 << 22, false, 4096);
        // The file has no query_pre_attn_scalar: llama.cpp takes hidden/heads for the 27B shape (46
        // layers) and the head size otherwise, as the released checkpoints have it.
        c["query_pre_attn_scalar"] = layers == 46 ? hidden / heads : head_dim;
    }
    if (m.arch == "qwen2") c["use_sliding_window"] = false;

    // Token ids. Generation stops at eos and at the end-of-turn tokens llama.cpp treats as such.
    if (auto bos = token_id(file, "tokenizer.ggml.bos_token_id", vocab)) c["bos_token_id"] = *bos;
    if (auto pad = token_id(file, "tokenizer.ggml.padding_token_id", vocab)) c["pad_token_id"] = *pad;
    json eos = json::array();
    for (const char* key : {"tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id"})
        if (auto id = token_id(file, key, vocab); id && std::find(eos.begin(), eos.end(), *id) == eos.end()) eos.push_back(*id);
    if (file.find("tokenizer.ggml.tokens")) {
        const auto& tokens = file.string_array("tokenizer.ggml.tokens");
        for (std::size_t i = 0; i < tokens.size() && i < static_cast<std::size_t>(vocab); ++i)
            for (const char* t : {"<end_of_turn>", "<|im_end|>", "<|endoftext|>"})
                if (tokens[i] == t && std::find(eos.begin(), eos.end(), static_cast<int>(i)) == eos.end())
                    eos.push_back(static_cast<int>(i));
    }
    if (!eos.empty()) c["eos_token_id"] = eos;

    ModelConfig cfg = ModelConfig::parse(c.dump(), "", m.where());
    if (cfg.family != Family::Qwen2) cfg.norm_style = NormStyle::Weight;  // the converter stored 1 + w
    return cfg;
}

std::string gguf_tensor_name(const ModelConfig& cfg, const std::string& hf) {
    if (hf == "model.embed_tokens.weight") return "token_embd.weight";
    if (hf == "model.norm.weight") return "output_norm.weight";
    if (hf == "lm_head.weight") return "output.weight";
    const std::string prefix = "model.layers.";
    if (hf.compare(0, prefix.size(), prefix) != 0) return "";
    const std::size_t dot = hf.find('.', prefix.size());
    const std::size_t last = hf.rfind('.');
    if (dot == std::string::npos || last <= dot) return "";
    const std::string layer = hf.substr(prefix.size(), dot - prefix.size());
    const std::string part = hf.substr(dot + 1, last - dot - 1), kind = hf.substr(last + 1);
    static const std::pair<const char*, const char*> common[] = {
        {"input_layernorm", "attn_norm"},   {"self_attn.q_proj", "attn_q"}, {"self_attn.k_proj", "attn_k"},
        {"self_attn.v_proj", "attn_v"},     {"self_attn.o_proj", "attn_output"}, {"mlp.gate_proj", "ffn_gate"},
        {"mlp.up_proj", "ffn_up"},          {"mlp.down_proj", "ffn_down"}};
    // Gemma2's sandwich norms take other names; the others' post-attention norm is the FFN's input norm.
    static const std::pair<const char*, const char*> sandwich[] = {
        {"post_attention_layernorm", "post_attention_norm"}, {"pre_feedforward_layernorm", "ffn_norm"},
        {"post_feedforward_layernorm", "post_ffw_norm"}};
    static const std::pair<const char*, const char*> plain[] = {{"post_attention_layernorm", "ffn_norm"}};
    auto look = [&](const auto& table) -> std::string {
        for (const auto& [from, to] : table)
            if (part == from) return "blk." + layer + "." + to + "." + kind;
        return "";
    };
    std::string name = look(common);
    if (name.empty()) name = cfg.sandwich_norms ? look(sandwich) : look(plain);
    return name;
}

const GgufTensor* gguf_tensor(const GgufFile& file, const ModelConfig& cfg, const std::string& hf_name,
                              const std::vector<std::int64_t>& shape) {
    const std::string name = gguf_tensor_name(cfg, hf_name);
    const GgufTensor* t = name.empty() ? nullptr : file.tensor(name);
    if (t == nullptr) return nullptr;
    std::vector<std::int64_t> dims(shape.rbegin(), shape.rend());
    if (t->dims != dims) {
        GgufTensor expected;
        expected.dims = dims;
        throw Error(file.path().filename().string() + ": tensor " + name + " has shape " + t->dims_string() + ", expected " +
                    expected.dims_string());
    }
    return t;
}

}  // namespace wp
