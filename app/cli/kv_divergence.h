// kv-divergence: what a KV cache type costs in accuracy. A text is run through the model twice,
// token by token, with the reference cache type and the one measured; each position's next-token
// distributions are compared.
#pragma once

#include <filesystem>
#include <optional>
#include <string>

#include "wp/cache/kv_cache.h"
#include "wp/model/precision.h"

namespace wp::cli {

struct KvDivergenceOptions {
    std::filesystem::path model_dir, text_file;
    std::optional<Precision> precision;
    KvType kv = KvType::Q8, against = KvType::F16;
    int max_tokens = 2048;  // at most; and no more than the model's positions
    int threads = 0;
    bool json = false;
    bool int8_queries = true;         // KernelOptions::int8_queries, both caches
    bool int16_probabilities = true;  // KernelOptions::int16_probabilities, both caches
};

// Prints tokens, mean and max KL(reference || measured) in nats, the 99th percentile, and how
// often the top token agrees.
int kv_divergence(const KvDivergenceOptions& options);

}  // namespace wp::cli
