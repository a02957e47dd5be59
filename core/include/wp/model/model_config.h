// A model's architecture as data: config.json (+ generation_config.json) parsed with the
// transformers defaults of each model_type. Family differences are fields, not code paths.
// A new family is a Family value here and one FamilySpec (its defaults and differences) in the
// table of model_config.cpp; its built-in chat template, if any, goes in chat_template.cpp.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "wp/attention/mask.h"

namespace wp {

enum class Family { Gemma, Gemma2, Qwen2 };
enum class NormStyle { Weight, OnePlusWeight };  // Qwen2: x*w; Gemma/Gemma2: x*(1+w)
enum class Activation { GeluTanh, Silu };
// What sits on the body: the language-model head, or one of transformers' task heads
// (config.json's architectures: *ForCausalLM, *ForSequenceClassification, ...).
enum class Head { CausalLM, SequenceClassification, TokenClassification, QuestionAnswering };

const char* family_name(Family f);
// A regular file that starts with GGUF's magic (a .gguf download, or an Ollama blob without a suffix):
// a model to open as one file rather than a folder.
bool is_gguf_file(const std::filesystem::path& path);
// "causal-lm", "sequence-classification", "token-classification", "question-answering".
const char* head_name(Head h);

struct ModelConfig {
    Family family = Family::Gemma;
    std::string model_type;

    int vocab_size = 0;
    int hidden_size = 0;
    int intermediate_size = 0;
    int num_layers = 0;
    int num_heads = 0;
    int num_kv_heads = 0;
    int head_dim = 0;
    int max_position_embeddings = 0;
    double rms_norm_eps = 1e-6;
    double rope_theta = 10000.0;
    bool tie_word_embeddings = true;
    std::string torch_dtype;  // as written ("float32", "bfloat16", ...), may be empty

    // The head, from architectures[0] (absent: a causal LM).
    Head head = Head::CausalLM;
    std::string architecture;             // as written, "" when absent
    std::vector<std::string> labels;      // id2label in id order (sequence and token classification)
    std::string weights_prefix = "model.";  // the body's tensors ("transformer." for Qwen2ForQuestionAnswering)

    // Family differences as data.
    NormStyle norm_style = NormStyle::OnePlusWeight;
    Activation activation = Activation::GeluTanh;
    bool scale_embeddings = false;     // h = embed * sqrt(hidden) (Gemma, Gemma2)
    bool sandwich_norms = false;       // Gemma2 post-attention / pre+post-feedforward norms
    bool qkv_bias = false;             // Qwen2
    bool attention_out_bias = false;
    float attn_scale = 0.f;            // query scaling (head_dim^-0.5 or query_pre_attn_scalar^-0.5)
    float attn_softcap = 0.f;          // 0 = off
    float final_softcap = 0.f;         // 0 = off
    int sliding_window = 0;            // window of the sliding layers (0 = none)
    std::vector<MaskSpec> layer_masks; // per layer: causal, optional window

    // Token ids.
    std::optional<int> bos_token_id;
    std::optional<int> pad_token_id;
    std::vector<int> eos_token_ids;    // union of config.json and generation_config.json
    std::string cache_implementation;  // from generation_config/config ("hybrid" for Gemma2)

    bool layer_is_sliding(int l) const { return layer_masks[l].window > 0; }
    int q_dim() const { return num_heads * head_dim; }
    int kv_dim() const { return num_kv_heads * head_dim; }
    // What forward returns per token: vocab_size logits, one per label, or 2 (start, end).
    int num_outputs() const {
        return head == Head::CausalLM ? vocab_size : head == Head::QuestionAnswering ? 2 : static_cast<int>(labels.size());
    }

    // Parses `dir/config.json` and, when present, `dir/generation_config.json`; or, when `dir` is a
    // GGUF file, its metadata (gguf_checkpoint.h). Throws wp::Error.
    static ModelConfig load(const std::filesystem::path& dir);
    // Parses config JSON text (and optional generation config text); `where` names the source.
    static ModelConfig parse(const std::string& config_json, const std::string& generation_json = {},
                             const std::string& where = "config.json");
};

}  // namespace wp
