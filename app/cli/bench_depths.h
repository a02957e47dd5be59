// windowpane-cli bench-depths: decode tokens/s after several context lengths, measured together
// so that a machine's noise falls on every depth alike.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "wp/cache/kv_cache.h"
#include "wp/model/kernel_options.h"
#include "wp/model/precision.h"

namespace wp::cli {

struct BenchDepthsOptions {
    std::string model_dir;
    std::optional<Precision> precision;  // unset: the model's default
    std::optional<KvType> kv;            // unset: the precision's default
    int threads = 0;
    std::vector<int> depths{128, 4096, 8192};
    int gen_tokens = 64;
    int repeat = 1;
    bool json = false;
    KernelOptions kernels;
    bool decode_choice = true;
};

// One context per depth, each given that many random tokens (in the generator's prefill chunks);
// then `gen_tokens` rounds in which every context decodes one token (greedy), the depths taking
// turns step by step. A depth's decode tokens/s is gen_tokens over the sum of its steps' times;
// `repeat` runs of it (each prefilled anew) give the median, min and max, and each run's ratio to
// the first depth gives the median ratio. Also each depth's slowest step.
int bench_depths(const BenchDepthsOptions& options);

}  // namespace wp::cli
