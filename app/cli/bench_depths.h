// windowpane-cli bench-depths: decode tokens/s after several context lengths, measured together
// so that a machine's noise falls on every depth alike.
#pragma once

#include <vector>

#include "bench.h"

namespace wp::cli {

struct BenchDepthsOptions : BenchModelOptions {
    std::vector<int> depths{128, 4096, 8192};
    int gen_tokens = 64;
    int repeat = 1;
    bool json = false;
};

// One context per depth, each given that many random tokens (in the generator's prefill chunks);
// then `gen_tokens` rounds in which every context decodes one token (greedy), the depths taking
// turns step by step. A depth's decode tokens/s is gen_tokens over the sum of its steps' times;
// `repeat` runs of it (each prefilled anew) give the median, min and max, and each run's ratio to
// the first depth gives the median ratio. Also each depth's slowest step.
int bench_depths(const BenchDepthsOptions& options);

}  // namespace wp::cli
