#include "wp/model/model_config.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "wp/error.h"
#include "wp/io/file_util.h"

namespace wp {

namespace fs = std::filesystem;
using json = nlohmann::json;

const char* family_name(Family f) {
    switch (f) {
        case Family::Gemma: return "gemma";
        case Family::Gemma2: return "gemma2";
        case Family::Qwen2: return "qwen2";
    }
    return "?";
}

namespace {

struct Reader {
    const json& j;
    std::string where;

    bool has(const char* key) const { return j.contains(key) && !j[key].is_null(); }

    int get_int(const char* key, int def, int min_value = 1) const {
        if (!has(key)) return def;
        const json& v = j[key];
        if (!v.is_number_integer() && !(v.is_number_float() && std::floor(v.get<double>()) == v.get<double>()))
            throw Error(where + ": " + key + " must be an integer");
        const auto x = v.get<std::int64_t>();
        if (x < min_value || x > (1ll << 30))
            throw Error(where + ": " + key + " = " + std::to_string(x) + " is out of range");
        return static_cast<int>(x);
    }
    double get_double(const char* key, double def) const {
        if (!has(key)) return def;
        if (!j[key].is_number()) throw Error(where + ": " + key + " must be a number");
        return j[key].get<double>();
    }
    bool get_bool(const char* key, bool def) const {
        if (!has(key)) return def;
        if (!j[key].is_boolean()) throw Error(where + ": " + key + " must be true or false");
        return j[key].get<bool>();
    }
    std::string get_string(const char* key, const std::string& def) const {
        if (!has(key)) return def;
        if (!j[key].is_string()) throw Error(where + ": " + key + " must be a string");
        return j[key].get<std::string>();
    }
};

std::vector<int> id_list(const json& v, const std::string& where) {
    std::vector<int> out;
    if (v.is_null()) return out;
    if (v.is_number_integer()) {
        out.push_back(v.get<int>());
    } else if (v.is_array()) {
        for (const auto& x : v) {
            if (!x.is_number_integer()) throw Error(where + ": eos_token_id entries must be integers");
            out.push_back(x.get<int>());
        }
    } else {
        throw Error(where + ": eos_token_id must be an integer or a list of integers");
    }
    return out;
}

json parse_json(const std::string& text, const std::string& where) {
    try {
        return json::parse(text);
    } catch (const json::exception& e) {
        throw Error(where + ": not valid JSON: " + e.what());
    }
}

}  // namespace

ModelConfig ModelConfig::load(const fs::path& dir) {
    if (!fs::is_directory(dir)) throw Error(dir.string() + ": not a folder");
    const fs::path cfg = dir / "config.json";
    if (!fs::exists(cfg)) throw Error(dir.string() + ": no config.json in the folder");
    std::string gen;
    if (fs::exists(dir / "generation_config.json")) gen = read_text_file(dir / "generation_config.json");
    return parse(read_text_file(cfg), gen, "config.json");
}

ModelConfig ModelConfig::parse(const std::string& config_json, const std::string& generation_json,
                               const std::string& where) {
    const json j = parse_json(config_json, where);
    if (!j.is_object()) throw Error(where + ": expected a JSON object");
    const Reader r{j, where};

    ModelConfig c;
    c.model_type = r.get_string("model_type", "");
    if (c.model_type == "gemma") {
        c.family = Family::Gemma;
    } else if (c.model_type == "gemma2") {
        c.family = Family::Gemma2;
    } else if (c.model_type == "qwen2") {
        c.family = Family::Qwen2;
    } else if (c.model_type.empty()) {
        throw Error(where + ": no model_type (supported: gemma, gemma2, qwen2)");
    } else {
        throw Error(where + ": unknown model_type \"" + c.model_type +
                    "\" (supported: gemma, gemma2, qwen2)");
    }

    // transformers' class defaults (configuration_gemma.py, configuration_gemma2.py,
    // configuration_qwen2.py) for the keys a config.json may omit.
    const bool gemma_like = c.family != Family::Qwen2;
    int def_vocab = 256000, def_hidden = 3072, def_inter = 24576, def_layers = 28, def_heads = 16,
        def_kv = 16, def_max_pos = 8192;
    if (c.family == Family::Gemma2) {
        def_hidden = 2304; def_inter = 9216; def_layers = 26; def_heads = 8; def_kv = 4;
    } else if (c.family == Family::Qwen2) {
        def_vocab = 151936; def_hidden = 4096; def_inter = 22016; def_layers = 32; def_heads = 32;
        def_kv = 32; def_max_pos = 32768;
    }
    c.vocab_size = r.get_int("vocab_size", def_vocab);
    c.hidden_size = r.get_int("hidden_size", def_hidden);
    c.intermediate_size = r.get_int("intermediate_size", def_inter);
    c.num_layers = r.get_int("num_hidden_layers", def_layers);
    c.num_heads = r.get_int("num_attention_heads", def_heads);
    // num_key_value_heads: null means "same as num_attention_heads".
    c.num_kv_heads = j.contains("num_key_value_heads") && j["num_key_value_heads"].is_null()
                         ? c.num_heads
                         : r.get_int("num_key_value_heads", def_kv);
    if (gemma_like) {
        c.head_dim = r.get_int("head_dim", 256);
    } else {
        if (c.hidden_size % c.num_heads != 0 && !r.has("head_dim"))
            throw Error(where + ": hidden_size " + std::to_string(c.hidden_size) +
                        " is not divisible by num_attention_heads " + std::to_string(c.num_heads));
        c.head_dim = r.get_int("head_dim", c.hidden_size / c.num_heads);
    }
    c.max_position_embeddings = r.get_int("max_position_embeddings", def_max_pos);
    c.rms_norm_eps = r.get_double("rms_norm_eps", 1e-6);
    c.tie_word_embeddings = r.get_bool("tie_word_embeddings", gemma_like);
    c.torch_dtype = r.get_string("torch_dtype", r.get_string("dtype", ""));

    if (c.num_heads % c.num_kv_heads != 0)
        throw Error(where + ": num_attention_heads " + std::to_string(c.num_heads) +
                    " is not a multiple of num_key_value_heads " + std::to_string(c.num_kv_heads));
    if (c.head_dim % 2 != 0)
        throw Error(where + ": head_dim " + std::to_string(c.head_dim) + " must be even for RoPE");

    // RoPE: v4 writes rope_theta (+ rope_scaling); v5 writes rope_parameters.
    c.rope_theta = r.get_double("rope_theta", 10000.0);
    auto check_rope = [&](const json& rp, const char* key) {
        if (rp.is_null()) return;
        if (!rp.is_object()) throw Error(where + ": " + key + " must be an object");
        std::string type = "default";
        if (rp.contains("rope_type") && rp["rope_type"].is_string()) type = rp["rope_type"];
        else if (rp.contains("type") && rp["type"].is_string()) type = rp["type"];
        if (type != "default")
            throw Error(where + ": " + key + " type \"" + type +
                        "\" is not supported (only default RoPE)");
        if (rp.contains("rope_theta") && rp["rope_theta"].is_number()) c.rope_theta = rp["rope_theta"];
    };
    if (j.contains("rope_scaling")) check_rope(j["rope_scaling"], "rope_scaling");
    if (j.contains("rope_parameters")) check_rope(j["rope_parameters"], "rope_parameters");
    if (!(c.rope_theta > 0)) throw Error(where + ": rope_theta must be positive");

    // Activation.
    std::string act;
    if (gemma_like) {
        // Gemma reads hidden_activation; hidden_act is a legacy key transformers ignores.
        act = r.get_string("hidden_activation", "gelu_pytorch_tanh");
    } else {
        act = r.get_string("hidden_act", "silu");
    }
    if (act == "gelu_pytorch_tanh" || act == "gelu_new" || act == "gelu_fast" ||
        act == "gelu_python_tanh") {
        c.activation = Activation::GeluTanh;
    } else if (act == "silu" || act == "swish") {
        c.activation = Activation::Silu;
    } else {
        throw Error(where + ": activation \"" + act + "\" is not supported (gelu_pytorch_tanh, silu)");
    }

    // Family description.
    c.norm_style = gemma_like ? NormStyle::OnePlusWeight : NormStyle::Weight;
    c.scale_embeddings = gemma_like;
    c.sandwich_norms = c.family == Family::Gemma2;
    c.qkv_bias = c.family == Family::Qwen2 || r.get_bool("attention_bias", false);
    c.attention_out_bias = c.family != Family::Qwen2 && r.get_bool("attention_bias", false);
    if (c.family == Family::Gemma2) {
        const double qpas = r.get_double("query_pre_attn_scalar", 256);
        if (!(qpas > 0)) throw Error(where + ": query_pre_attn_scalar must be positive");
        c.attn_scale = static_cast<float>(1.0 / std::sqrt(qpas));
        c.attn_softcap = static_cast<float>(r.get_double("attn_logit_softcapping", 50.0));
        c.final_softcap = static_cast<float>(r.get_double("final_logit_softcapping", 30.0));
        if (j.contains("attn_logit_softcapping") && j["attn_logit_softcapping"].is_null()) c.attn_softcap = 0;
        if (j.contains("final_logit_softcapping") && j["final_logit_softcapping"].is_null()) c.final_softcap = 0;
    } else {
        c.attn_scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(c.head_dim)));
    }
    if (c.attn_softcap < 0 || c.final_softcap < 0) throw Error(where + ": soft-capping must be >= 0");

    // Which layers slide, and by how much.
    int window = 0;
    std::vector<bool> sliding(c.num_layers, false);
    if (c.family == Family::Gemma2) {
        window = j.contains("sliding_window") && j["sliding_window"].is_null() ? 0 : r.get_int("sliding_window", 4096);
        for (int i = 0; i < c.num_layers; ++i) sliding[i] = (i + 1) % 2 != 0;  // even layers slide
    } else if (c.family == Family::Qwen2) {
        const bool use_sw = r.get_bool("use_sliding_window", false);
        window = use_sw && r.has("sliding_window") ? r.get_int("sliding_window", 4096) : 0;
        if (use_sw && !j.contains("sliding_window")) window = 4096;
        const int max_window_layers = r.get_int("max_window_layers", 28, 0);
        for (int i = 0; i < c.num_layers; ++i) sliding[i] = window > 0 && i >= max_window_layers;
    }
    if (r.has("layer_types")) {
        const json& lt = j["layer_types"];
        if (!lt.is_array() || static_cast<int>(lt.size()) != c.num_layers)
            throw Error(where + ": layer_types must list one entry per layer (" +
                        std::to_string(c.num_layers) + ")");
        for (int i = 0; i < c.num_layers; ++i) {
            const std::string t = lt[i].is_string() ? lt[i].get<std::string>() : "";
            if (t == "sliding_attention") sliding[i] = true;
            else if (t == "full_attention") sliding[i] = false;
            else throw Error(where + ": layer_types[" + std::to_string(i) + "] \"" + t +
                             "\" is not sliding_attention or full_attention");
        }
    }
    c.sliding_window = window;
    c.layer_masks.assign(c.num_layers, MaskSpec{});
    for (int i = 0; i < c.num_layers; ++i)
        if (sliding[i] && window > 0) c.layer_masks[i].window = window;

    // Token ids: generation_config.json overrides config.json, as in transformers; eos is the
    // union so that any of them stops generation.
    if (r.has("bos_token_id") && j["bos_token_id"].is_number_integer()) c.bos_token_id = j["bos_token_id"].get<int>();
    if (r.has("pad_token_id") && j["pad_token_id"].is_number_integer()) c.pad_token_id = j["pad_token_id"].get<int>();
    std::vector<int> eos;
    c.cache_implementation = r.get_string("cache_implementation", "");
    if (!generation_json.empty()) {
        const json g = parse_json(generation_json, "generation_config.json");
        if (g.is_object()) {
            if (g.contains("eos_token_id")) eos = id_list(g["eos_token_id"], "generation_config.json");
            if (g.contains("bos_token_id") && g["bos_token_id"].is_number_integer())
                c.bos_token_id = g["bos_token_id"].get<int>();
            if (g.contains("pad_token_id") && g["pad_token_id"].is_number_integer())
                c.pad_token_id = g["pad_token_id"].get<int>();
            if (g.contains("cache_implementation") && g["cache_implementation"].is_string())
                c.cache_implementation = g["cache_implementation"].get<std::string>();
        }
    }
    if (j.contains("eos_token_id"))
        for (int id : id_list(j["eos_token_id"], where))
            if (std::find(eos.begin(), eos.end(), id) == eos.end()) eos.push_back(id);
    if (eos.empty() && gemma_like) eos.push_back(1);
    c.eos_token_ids = eos;
    if (c.family == Family::Gemma2 && c.cache_implementation.empty()) c.cache_implementation = "hybrid";
    return c;
}

}  // namespace wp
