#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "wp/kernels/qmatrix.h"

namespace wp::cli {

struct BenchOptions {
    std::string model_dir;
    std::optional<Precision> precision;  // unset: the model's default
    int threads = 0;
    int prompt_tokens = 512;
    int gen_tokens = 128;
    int repeat = 5;
    bool json = false;
};

// Load time, prefill and decode tokens/s (median, min, max), peak RSS and KV bytes.
int bench(const BenchOptions& options);
// Memory read bandwidth with 1..threads threads.
int bench_memory(int threads);
// Matrix-vector throughput (GB/s of weights) of each precision's decode kernel at one shape.
int bench_kernels(int rows, int cols, int threads, int repeat, int mb, const std::vector<Precision>& precisions);
double measure_read_bandwidth(int threads, std::size_t bytes, int repeat);

}  // namespace wp::cli
