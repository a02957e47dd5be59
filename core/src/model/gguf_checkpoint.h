// A GGUF file read as a model folder would be: the config from its metadata (with the conventions
// of llama.cpp's converter undone or recorded), and each transformers tensor name mapped to the
// file's tensor of llama.cpp's naming.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "io/gguf.h"
#include "wp/model/model_config.h"

namespace wp {

// ModelConfig from `general.architecture` (gemma, gemma2, qwen2) and its hyperparameters. Gemma's
// RMSNorm weights are stored with the +1 already added (convert_hf_to_gguf.py), so the config's
// norm_style is Weight for them. Throws wp::Error naming the file and the key.
ModelConfig gguf_model_config(const GgufFile& file);

// The file's tensor holding transformers' `hf_name` ("model.layers.3.self_attn.q_proj.weight" ->
// "blk.3.attn_q.weight"), checked against `shape` (transformers' order, outermost first); nullptr
// when absent. Throws wp::Error when present with another shape.
const GgufTensor* gguf_tensor(const GgufFile& file, const ModelConfig& cfg, const std::string& hf_name,
                              const std::vector<std::int64_t>& shape);

// llama.cpp's name for a transformers tensor name ("" when it has none).
std::string gguf_tensor_name(const ModelConfig& cfg, const std::string& hf_name);

}  // namespace wp
