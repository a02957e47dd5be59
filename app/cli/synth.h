#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace wp::cli {

std::vector<std::string> synth_presets();
// Writes a random-weight Hugging Face model folder at a real model's shape (config.json,
// generation_config.json, safetensors sharded at ~2 GB, a fixture tokenizer from `shared_dir`).
// labels > 0: a *ForSequenceClassification model with that many labels (score.weight, no lm_head).
int synth(const std::string& preset, const std::string& dtype, const std::string& out_dir, std::uint64_t seed,
          const std::string& shared_dir, bool config_only, int labels = 0);

}  // namespace wp::cli
