#pragma once

#include <string>

namespace wp::cli {

// Prints tokenizer load time and encode throughput (MB/s) for the tokenizer of `dir`.
int bench_tokenize(const std::string& dir, double megabytes, int repeat);

}  // namespace wp::cli
