// config.json (+ generation_config.json) to ModelConfig. The keys every family shares are read once,
// by parse; what differs between families is one FamilySpec each (kFamilies), written, as
// transformers' modular_gemma2.py writes Gemma2, as differences from the family it derives from.
#include "wp/model/model_config.h"

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string_view>

#include "model/gguf_checkpoint.h"
#include "wp/error.h"
#include "wp/io/json_file.h"
#include "wp/io/file_util.h"

namespace wp {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

// Upper bounds of the shape keys, checked before anything is sized by them. Each is far above every
// released model of these families (Gemma2 27B: 46 layers, hidden 4608, intermediate 36864,
// vocabulary 256000, head_dim 128; Qwen2 72B: 80 layers, 64 heads, hidden 8192, intermediate 29568,
// vocabulary 152064, context 131072), and small enough that no product of them overflows the
// 64-bit sizes the loader and the caches compute, nor q_dim/kv_dim (heads * head_dim) an int.
struct ShapeLimit {
    const char* key;
    std::int64_t max;
};
constexpr ShapeLimit kShapeLimits[] = {
    {"vocab_size", 1 << 22},
    {"hidden_size", 1 << 17},
    {"intermediate_size", 1 << 20},
    {"num_hidden_layers", 1024},
    {"num_attention_heads", 1024},
    {"num_key_value_heads", 1024},
    {"head_dim", 2048},
    {"max_position_embeddings", 1 << 22},
    {"sliding_window", 1 << 22},
    {"max_window_layers", 1 << 22},
};

struct Reader {
    const json& j;
    std::string where;

    bool has(const char* key) const { return j.contains(key) && !j[key].is_null(); }
    bool is_null(const char* key) const { return j.contains(key) && j[key].is_null(); }

    // An integer in [min_value, max_value]. JSON numbers arrive as uint64 (any n >= 0), int64 or double
    // (1e9, or anything past 2^64): each is range-checked in its own type, so that the message
    // shows what the file says and nothing wraps on the way to int.
    int get_int(const char* key, int def, std::int64_t min_value, std::int64_t max_value) const {
        if (!has(key)) return def;
        const json& v = j[key];
        const auto out_of_range = [&](const std::string& shown) {
            return Error(where + ": " + key + " = " + shown + " is out of range (" + std::to_string(min_value) +
                         ".." + std::to_string(max_value) + ")");
        };
        if (v.is_number_unsigned()) {
            const auto x = v.get<std::uint64_t>();
            if (x > static_cast<std::uint64_t>(max_value) || static_cast<std::int64_t>(x) < min_value)
                throw out_of_range(std::to_string(x));
            return static_cast<int>(x);
        }
        if (v.is_number_integer()) {
            const auto x = v.get<std::int64_t>();
            if (x < min_value || x > max_value) throw out_of_range(std::to_string(x));
            return static_cast<int>(x);
        }
        if (!v.is_number_float() || !std::isfinite(v.get<double>()) || std::floor(v.get<double>()) != v.get<double>())
            throw Error(where + ": " + key + " must be an integer");
        const double d = v.get<double>();
        if (d < static_cast<double>(min_value) || d > static_cast<double>(max_value)) {
            // Doubles below 1e20 print exactly as the integer they hold; past that, say so.
            char buf[32];
            std::snprintf(buf, sizeof buf, "%.0f", d);
            throw out_of_range(std::fabs(d) < 1e20 ? std::string(buf) : d < 0 ? "too small" : "too large");
        }
        return static_cast<int>(d);
    }
    // A shape key, within 1..its limit in kShapeLimits (min_value 0 where 0 means "none").
    int get_shape(const char* key, int def, std::int64_t min_value = 1) const {
        for (const ShapeLimit& l : kShapeLimits)
            if (std::string_view(l.key) == key) return get_int(key, def, min_value, l.max);
        throw Error(where + ": " + key + " has no limit");  // a key missing from kShapeLimits
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

// Which layers use a sliding window, and its size (0: none does).
struct SlidingLayers {
    int window = 0;
    std::vector<bool> sliding;  // per layer
};

// Gemma2: every other layer slides (the even ones); sliding_window: null turns the window off.
SlidingLayers gemma2_sliding_layers(const Reader& r, int num_layers) {
    SlidingLayers s;
    s.window = r.is_null("sliding_window") ? 0 : r.get_shape("sliding_window", 4096);
    s.sliding.resize(num_layers);
    for (int i = 0; i < num_layers; ++i) s.sliding[i] = (i + 1) % 2 != 0;
    return s;
}

// Qwen2: only with use_sliding_window, and then the layers from max_window_layers on. The window
// is written in every config, so it is inert unless enabled.
SlidingLayers qwen2_sliding_layers(const Reader& r, int num_layers) {
    SlidingLayers s;
    const bool use_sw = r.get_bool("use_sliding_window", false);
    s.window = use_sw && r.has("sliding_window") ? r.get_shape("sliding_window", 4096) : 0;
    if (use_sw && !r.j.contains("sliding_window")) s.window = 4096;
    const int max_window_layers = r.get_shape("max_window_layers", 28, 0);
    s.sliding.resize(num_layers);
    for (int i = 0; i < num_layers; ++i) s.sliding[i] = s.window > 0 && i >= max_window_layers;
    return s;
}

// A model family as data: transformers' class defaults (configuration_<model_type>.py) for the keys
// a config.json may omit, and what the family fixes in the architecture.
struct FamilySpec {
    Family family;
    const char* model_type;

    // Defaults of the shape keys.
    int vocab_size, hidden_size, intermediate_size, num_hidden_layers, num_attention_heads, num_key_value_heads;
    int head_dim;  // 0: hidden_size / num_attention_heads, which must then divide
    int max_position_embeddings;
    bool tie_word_embeddings;
    const char* activation_key;  // the key the family reads (Gemma ignores the legacy hidden_act)
    const char* activation;
    std::optional<int> eos_token_id;  // when neither config nor generation_config names one

    // The architecture.
    NormStyle norm_style;
    bool scale_embeddings;
    bool sandwich_norms;
    bool qkv_bias_only;  // q, k, v projections always biased, o never; else attention_bias sets all four
    // > 0: queries are scaled by query_pre_attn_scalar^-0.5 (this its default), else head_dim^-0.5.
    double query_pre_attn_scalar;
    // > 0: the family soft-caps (these the defaults of attn_ and final_logit_softcapping, which a
    // null turns off); 0: it does not and ignores the keys.
    double attn_logit_softcapping, final_logit_softcapping;
    SlidingLayers (*sliding_layers)(const Reader& r, int num_layers);  // nullptr: no layer slides
    const char* cache_implementation;  // when neither file names one
};

constexpr FamilySpec kGemma = {
    .family = Family::Gemma,
    .model_type = "gemma",
    .vocab_size = 256000,
    .hidden_size = 3072,
    .intermediate_size = 24576,
    .num_hidden_layers = 28,
    .num_attention_heads = 16,
    .num_key_value_heads = 16,
    .head_dim = 256,
    .max_position_embeddings = 8192,
    .tie_word_embeddings = true,
    .activation_key = "hidden_activation",
    .activation = "gelu_pytorch_tanh",
    .eos_token_id = 1,
    .norm_style = NormStyle::OnePlusWeight,
    .scale_embeddings = true,
    .sandwich_norms = false,
    .qkv_bias_only = false,
    .query_pre_attn_scalar = 0,
    .attn_logit_softcapping = 0,
    .final_logit_softcapping = 0,
    .sliding_layers = nullptr,
    .cache_implementation = "",
};

// Gemma2 is Gemma with other sizes, norms before and after attention and feed-forward, queries
// scaled by query_pre_attn_scalar, soft-capped logits, and every other layer sliding, which a
// hybrid cache serves.
constexpr FamilySpec kGemma2 = [] {
    FamilySpec f = kGemma;
    f.family = Family::Gemma2;
    f.model_type = "gemma2";
    f.hidden_size = 2304;
    f.intermediate_size = 9216;
    f.num_hidden_layers = 26;
    f.num_attention_heads = 8;
    f.num_key_value_heads = 4;
    f.sandwich_norms = true;
    f.query_pre_attn_scalar = 256;
    f.attn_logit_softcapping = 50.0;
    f.final_logit_softcapping = 30.0;
    f.sliding_layers = gemma2_sliding_layers;
    f.cache_implementation = "hybrid";
    return f;
}();

constexpr FamilySpec kQwen2 = {
    .family = Family::Qwen2,
    .model_type = "qwen2",
    .vocab_size = 151936,
    .hidden_size = 4096,
    .intermediate_size = 22016,
    .num_hidden_layers = 32,
    .num_attention_heads = 32,
    .num_key_value_heads = 32,
    .head_dim = 0,
    .max_position_embeddings = 32768,
    .tie_word_embeddings = false,
    .activation_key = "hidden_act",
    .activation = "silu",
    .eos_token_id = std::nullopt,
    .norm_style = NormStyle::Weight,
    .scale_embeddings = false,
    .sandwich_norms = false,
    .qkv_bias_only = true,
    .query_pre_attn_scalar = 0,
    .attn_logit_softcapping = 0,
    .final_logit_softcapping = 0,
    .sliding_layers = qwen2_sliding_layers,
    .cache_implementation = "",
};

// Every family, in the order error messages list them.
constexpr const FamilySpec* kFamilies[] = {&kGemma, &kGemma2, &kQwen2};

std::string supported_model_types() {
    std::string out;
    for (const FamilySpec* s : kFamilies) out += (out.empty() ? "" : ", ") + std::string(s->model_type);
    return out;
}

const FamilySpec& read_family(const Reader& r) {
    const std::string model_type = r.get_string("model_type", "");
    for (const FamilySpec* s : kFamilies)
        if (model_type == s->model_type) return *s;
    if (model_type.empty()) throw Error(r.where + ": no model_type (supported: " + supported_model_types() + ")");
    throw Error(r.where + ": unknown model_type \"" + model_type + "\" (supported: " + supported_model_types() + ")");
}

void read_shape(const Reader& r, const FamilySpec& f, ModelConfig& c) {
    c.vocab_size = r.get_shape("vocab_size", f.vocab_size);
    c.hidden_size = r.get_shape("hidden_size", f.hidden_size);
    c.intermediate_size = r.get_shape("intermediate_size", f.intermediate_size);
    c.num_layers = r.get_shape("num_hidden_layers", f.num_hidden_layers);
    c.num_heads = r.get_shape("num_attention_heads", f.num_attention_heads);
    // num_key_value_heads: null means "same as num_attention_heads".
    c.num_kv_heads = r.is_null("num_key_value_heads") ? c.num_heads
                                                      : r.get_shape("num_key_value_heads", f.num_key_value_heads);
    if (f.head_dim > 0) {
        c.head_dim = r.get_shape("head_dim", f.head_dim);
    } else {
        if (c.hidden_size % c.num_heads != 0 && !r.has("head_dim"))
            throw Error(r.where + ": hidden_size " + std::to_string(c.hidden_size) +
                        " is not divisible by num_attention_heads " + std::to_string(c.num_heads));
        c.head_dim = r.get_shape("head_dim", c.hidden_size / c.num_heads);
    }
    if (c.head_dim > 2048)  // hidden_size / num_attention_heads, when head_dim is not written
        throw Error(r.where + ": head_dim = " + std::to_string(c.head_dim) + " is out of range (1..2048)");
    c.max_position_embeddings = r.get_shape("max_position_embeddings", f.max_position_embeddings);
    c.rms_norm_eps = r.get_double("rms_norm_eps", 1e-6);
    if (!(c.rms_norm_eps > 0) || !std::isfinite(c.rms_norm_eps))
        throw Error(r.where + ": rms_norm_eps must be a positive finite number");
    c.tie_word_embeddings = r.get_bool("tie_word_embeddings", f.tie_word_embeddings);
    c.torch_dtype = r.get_string("torch_dtype", r.get_string("dtype", ""));

    if (c.num_heads % c.num_kv_heads != 0)
        throw Error(r.where + ": num_attention_heads " + std::to_string(c.num_heads) +
                    " is not a multiple of num_key_value_heads " + std::to_string(c.num_kv_heads));
    if (c.head_dim % 2 != 0)
        throw Error(r.where + ": head_dim " + std::to_string(c.head_dim) + " must be even for RoPE");
}

// RoPE: transformers v4 writes rope_theta (+ rope_scaling); v5 writes rope_parameters.
void read_rope(const Reader& r, ModelConfig& c) {
    c.rope_theta = r.get_double("rope_theta", 10000.0);
    auto check_rope = [&](const json& rp, const char* key) {
        if (rp.is_null()) return;
        if (!rp.is_object()) throw Error(r.where + ": " + key + " must be an object");
        std::string type = "default";
        if (rp.contains("rope_type") && rp["rope_type"].is_string()) type = rp["rope_type"];
        else if (rp.contains("type") && rp["type"].is_string()) type = rp["type"];
        if (type != "default")
            throw Error(r.where + ": " + key + " type \"" + type + "\" is not supported (only default RoPE)");
        if (rp.contains("rope_theta") && rp["rope_theta"].is_number()) c.rope_theta = rp["rope_theta"];
    };
    if (r.j.contains("rope_scaling")) check_rope(r.j["rope_scaling"], "rope_scaling");
    if (r.j.contains("rope_parameters")) check_rope(r.j["rope_parameters"], "rope_parameters");
    if (!(c.rope_theta > 0) || !std::isfinite(c.rope_theta))
        throw Error(r.where + ": rope_theta must be a positive finite number");
}

Activation read_activation(const Reader& r, const FamilySpec& f) {
    const std::string act = r.get_string(f.activation_key, f.activation);
    if (act == "gelu_pytorch_tanh" || act == "gelu_new" || act == "gelu_fast" || act == "gelu_python_tanh")
        return Activation::GeluTanh;
    if (act == "silu" || act == "swish") return Activation::Silu;
    throw Error(r.where + ": activation \"" + act + "\" is not supported (gelu_pytorch_tanh, silu)");
}

void read_attention(const Reader& r, const FamilySpec& f, ModelConfig& c) {
    if (f.qkv_bias_only) {
        c.qkv_bias = true;
        c.attention_out_bias = false;
    } else {
        c.qkv_bias = c.attention_out_bias = r.get_bool("attention_bias", false);
    }
    if (f.query_pre_attn_scalar > 0) {
        const double qpas = r.get_double("query_pre_attn_scalar", f.query_pre_attn_scalar);
        if (!(qpas > 0) || !std::isfinite(qpas))
            throw Error(r.where + ": query_pre_attn_scalar must be a positive finite number");
        c.attn_scale = static_cast<float>(1.0 / std::sqrt(qpas));
    } else {
        c.attn_scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(c.head_dim)));
    }
    auto softcap = [&](const char* key, double def) {
        if (def == 0) return 0.f;
        const auto v = static_cast<float>(r.get_double(key, def));
        return r.is_null(key) ? 0.f : v;
    };
    c.attn_softcap = softcap("attn_logit_softcapping", f.attn_logit_softcapping);
    c.final_softcap = softcap("final_logit_softcapping", f.final_logit_softcapping);
    if (!(c.attn_softcap >= 0) || !(c.final_softcap >= 0) || !std::isfinite(c.attn_softcap) ||
        !std::isfinite(c.final_softcap))
        throw Error(r.where + ": soft-capping must be a finite number >= 0");
}

// The family's sliding layers, unless layer_types (transformers v5, and some v4 configs) lists
// every layer's kind.
void read_layer_masks(const Reader& r, const FamilySpec& f, ModelConfig& c) {
    SlidingLayers s = f.sliding_layers ? f.sliding_layers(r, c.num_layers) : SlidingLayers{};
    s.sliding.resize(c.num_layers, false);
    if (r.has("layer_types")) {
        const json& lt = r.j["layer_types"];
        if (!lt.is_array() || static_cast<int>(lt.size()) != c.num_layers)
            throw Error(r.where + ": layer_types must list one entry per layer (" + std::to_string(c.num_layers) +
                        ")");
        for (int i = 0; i < c.num_layers; ++i) {
            const std::string t = lt[i].is_string() ? lt[i].get<std::string>() : "";
            if (t == "sliding_attention")
                s.sliding[i] = true;
            else if (t == "full_attention")
                s.sliding[i] = false;
            else
                throw Error(r.where + ": layer_types[" + std::to_string(i) + "] \"" + t +
                            "\" is not sliding_attention or full_attention");
        }
    }
    c.sliding_window = s.window;
    c.layer_masks.assign(c.num_layers, MaskSpec{});
    for (int i = 0; i < c.num_layers; ++i)
        if (s.sliding[i] && s.window > 0) c.layer_masks[i].window = s.window;
}

// A token id written as a JSON integer, checked to fit an int before it is converted.
int token_id(const json& v, const std::string& where, const char* key) {
    if ((v.is_number_unsigned() && v.get<std::uint64_t>() > INT_MAX) ||
        (!v.is_number_unsigned() && (v.get<std::int64_t>() < 0 || v.get<std::int64_t>() > INT_MAX)))
        throw Error(where + ": " + key + " " + v.dump() + " is not a token id (0.." + std::to_string(INT_MAX) + ")");
    return static_cast<int>(v.get<std::int64_t>());
}

std::vector<int> id_list(const json& v, const std::string& where) {
    std::vector<int> out;
    if (v.is_null()) return out;
    if (v.is_number_integer()) {
        out.push_back(token_id(v, where, "eos_token_id"));
    } else if (v.is_array()) {
        for (const auto& x : v) {
            if (!x.is_number_integer()) throw Error(where + ": eos_token_id entries must be integers");
            out.push_back(token_id(x, where, "eos_token_id"));
        }
    } else {
        throw Error(where + ": eos_token_id must be an integer or a list of integers");
    }
    return out;
}

// transformers' cache_implementation values (generation/configuration_utils.py) and what
// Windowpane serves each with. Where a value changes only where the cache lives (offloaded_*) or how
// it is allocated (static, dynamic_full), the attention is the same: Windowpane's hybrid cache for
// the sliding kinds (model.cpp's default_cache), its dynamic cache for the rest; the precision of
// the cache follows Windowpane's own precision setting, so "quantized" is served as dynamic too.
// Chunked attention (Llama 4) is no part of these families.
struct CacheImplementation {
    const char* name;
    const char* served_as;  // nullptr: refused
};
constexpr CacheImplementation kCacheImplementations[] = {
    {"hybrid", "hybrid"},
    {"sliding_window", "sliding_window"},
    {"offloaded_hybrid", "hybrid"},
    {"static", "static"},
    {"offloaded_static", "static"},
    {"dynamic", "dynamic"},
    {"dynamic_full", "dynamic"},
    {"offloaded", "dynamic"},
    {"quantized", "dynamic"},
    {"hybrid_chunked", nullptr},
    {"offloaded_hybrid_chunked", nullptr},
};

std::string checked_cache_implementation(const std::string& name, const std::string& where) {
    if (name.empty()) return name;
    std::string known;
    for (const CacheImplementation& ci : kCacheImplementations) {
        if (name == ci.name) {
            if (!ci.served_as)
                throw Error(where + ": cache_implementation \"" + name + "\" (chunked attention) is not supported");
            return ci.served_as;
        }
        if (ci.served_as) known += (known.empty() ? "" : ", ") + std::string(ci.name);
    }
    throw Error(where + ": unknown cache_implementation \"" + name + "\" (supported: " + known + ")");
}

json parse_config(const std::string& text, const std::string& where) {
    return parse_json<json>(text, where);
}

// Token ids and the cache: generation_config.json overrides config.json, as in transformers; eos is
// the union so that any of them stops generation.
void read_generation(const Reader& r, const FamilySpec& f, const std::string& generation_json, ModelConfig& c) {
    const json& j = r.j;
    if (r.has("bos_token_id") && j["bos_token_id"].is_number_integer())
        c.bos_token_id = token_id(j["bos_token_id"], r.where, "bos_token_id");
    if (r.has("pad_token_id") && j["pad_token_id"].is_number_integer())
        c.pad_token_id = token_id(j["pad_token_id"], r.where, "pad_token_id");
    std::vector<int> eos;
    c.cache_implementation = checked_cache_implementation(r.get_string("cache_implementation", ""), r.where);
    if (!generation_json.empty()) {
        const json g = parse_config(generation_json, "generation_config.json");
        if (g.is_object()) {
            if (g.contains("eos_token_id")) eos = id_list(g["eos_token_id"], "generation_config.json");
            if (g.contains("bos_token_id") && g["bos_token_id"].is_number_integer())
                c.bos_token_id = token_id(g["bos_token_id"], "generation_config.json", "bos_token_id");
            if (g.contains("pad_token_id") && g["pad_token_id"].is_number_integer())
                c.pad_token_id = token_id(g["pad_token_id"], "generation_config.json", "pad_token_id");
            if (g.contains("cache_implementation") && g["cache_implementation"].is_string())
                c.cache_implementation = checked_cache_implementation(g["cache_implementation"].get<std::string>(),
                                                                      "generation_config.json");
        }
    }
    if (j.contains("eos_token_id"))
        for (int id : id_list(j["eos_token_id"], r.where))
            if (std::find(eos.begin(), eos.end(), id) == eos.end()) eos.push_back(id);
    if (eos.empty() && f.eos_token_id) eos.push_back(*f.eos_token_id);
    c.eos_token_ids = eos;
    if (c.cache_implementation.empty()) c.cache_implementation = f.cache_implementation;
}

}  // namespace

const char* family_name(Family f) {
    for (const FamilySpec* s : kFamilies)
        if (s->family == f) return s->model_type;
    return "?";
}

bool is_gguf_file(const fs::path& path) {
    std::error_code ec;
    if (!fs::is_regular_file(path, ec)) return false;
    std::ifstream in(path, std::ios::binary);
    char magic[4] = {};
    return in.read(magic, 4) && std::memcmp(magic, "GGUF", 4) == 0;
}

ModelConfig ModelConfig::load(const fs::path& dir) {
    if (is_gguf_file(dir)) return gguf_model_config(GgufFile(dir));
    if (!fs::is_directory(dir)) throw Error(dir.string() + ": not a model folder or a GGUF file");
    const fs::path cfg = dir / "config.json";
    if (!fs::exists(cfg)) throw Error(dir.string() + ": no config.json in the folder");
    std::string gen;
    if (fs::exists(dir / "generation_config.json")) gen = read_text_file(dir / "generation_config.json");
    return parse(read_text_file(cfg), gen, "config.json");
}

// The head from architectures[0]: one of the classes transformers defines for the family.
void read_head(const Reader& r, ModelConfig& c) {
    const char* family_class = c.family == Family::Gemma ? "Gemma" : c.family == Family::Gemma2 ? "Gemma2" : "Qwen2";
    struct Known {
        const char* suffix;
        Head head;
    };
    std::vector<Known> known = {{"ForCausalLM", Head::CausalLM},
                                {"ForSequenceClassification", Head::SequenceClassification},
                                {"ForTokenClassification", Head::TokenClassification}};
    if (c.family == Family::Qwen2) known.push_back({"ForQuestionAnswering", Head::QuestionAnswering});
    if (r.has("architectures")) {
        const json& a = r.j["architectures"];
        if (!a.is_array() || a.empty() || !a[0].is_string())
            throw Error(r.where + ": architectures must be a list of class names");
        c.architecture = a[0].get<std::string>();
        bool found = false;
        std::string names;
        for (const Known& k : known) {
            const std::string name = std::string(family_class) + k.suffix;
            names += (names.empty() ? "" : ", ") + name;
            if (c.architecture == name) {
                c.head = k.head;
                found = true;
            }
        }
        if (!found)
            throw Error(r.where + ": architecture \"" + c.architecture + "\" is not one Windowpane runs for model_type " +
                        c.model_type + " (" + names + ")");
    }
    if (c.head == Head::QuestionAnswering) c.weights_prefix = "transformer.";  // Qwen2's base_model_prefix
    if (c.head != Head::SequenceClassification && c.head != Head::TokenClassification) return;
    // id2label names the labels; num_labels, when written too, must agree with it.
    constexpr int kMaxLabels = 1 << 16;
    if (r.has("id2label")) {
        const json& m = r.j["id2label"];
        if (!m.is_object() || m.empty() || m.size() > kMaxLabels)
            throw Error(r.where + ": id2label must map 0.." + std::to_string(kMaxLabels - 1) + " to label names");
        c.labels.assign(m.size(), std::string());
        for (std::size_t i = 0; i < m.size(); ++i) {
            const auto it = m.find(std::to_string(i));
            if (it == m.end() || !it->is_string())
                throw Error(r.where + ": id2label has no name for label " + std::to_string(i) + " (labels are 0.." +
                            std::to_string(m.size() - 1) + ")");
            c.labels[i] = it->get<std::string>();
        }
        if (r.has("num_labels") && r.get_int("num_labels", 0, 1, kMaxLabels) != static_cast<int>(c.labels.size()))
            throw Error(r.where + ": id2label has " + std::to_string(c.labels.size()) + " labels but num_labels is " +
                        std::to_string(r.get_int("num_labels", 0, 1, kMaxLabels)));
    } else {
        const int n = r.get_int("num_labels", 2, 1, kMaxLabels);  // transformers' default: two
        for (int i = 0; i < n; ++i) c.labels.push_back("LABEL_" + std::to_string(i));
    }
}

ModelConfig ModelConfig::parse(const std::string& config_json, const std::string& generation_json,
                               const std::string& where) {
    const json j = parse_config(config_json, where);
    if (!j.is_object()) throw Error(where + ": expected a JSON object");
    const Reader r{j, where};

    const FamilySpec& f = read_family(r);
    ModelConfig c;
    c.family = f.family;
    c.model_type = f.model_type;
    read_shape(r, f, c);
    read_rope(r, c);
    c.activation = read_activation(r, f);
    c.norm_style = f.norm_style;
    c.scale_embeddings = f.scale_embeddings;
    c.sandwich_norms = f.sandwich_norms;
    read_attention(r, f, c);
    read_layer_masks(r, f, c);
    read_generation(r, f, generation_json, c);
    read_head(r, c);
    return c;
}

const char* head_name(Head h) {
    switch (h) {
        case Head::CausalLM: return "causal-lm";
        case Head::SequenceClassification: return "sequence-classification";
        case Head::TokenClassification: return "token-classification";
        case Head::QuestionAnswering: return "question-answering";
    }
    return "causal-lm";
}

}  // namespace wp
