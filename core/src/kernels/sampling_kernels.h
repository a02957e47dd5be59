// The sampler's passes over a row of logits (generate/sampler.cpp), vectorised: a vocabulary of
// 150,000 or more is read several times per sampled token, and one at a time with std::exp those
// passes took 0.6-1.9 ms a token (docs/KERNELS.md, "Sampling").
#pragma once

#include <cstddef>

#include "kernels/kernel_choice.h"

namespace wp {

// vec_exp_sums adds its values in chunks of this many, so a draw finds its chunk first.
inline constexpr std::size_t kSampleChunk = 256;

// The largest of x[0..n) (n > 0), NaNs passed over (-inf when there is nothing else).
float vec_max(const float* x, std::size_t n, const KernelOptions& options = {});
// y[i] = x[i] / d, IEEE division as one value at a time gives it (y may be x).
void vec_divide(const float* x, float* y, std::size_t n, float d, const KernelOptions& options = {});
// x[i] = -inf wherever x[i] < threshold.
void vec_drop_below(float* x, std::size_t n, float threshold, const KernelOptions& options = {});
// p[i] = e^(x[i] - shift), exactly 0 where x[i] is -inf or NaN; chunk_sums[c] is the sum of p over chunk
// c (kSampleChunk values; the last may be shorter), and the total is returned.
double vec_exp_sums(const float* x, std::size_t n, float shift, float* p, double* chunk_sums,
                    const KernelOptions& options = {});
// The indices i with lo <= p[i] < hi, ascending, written to out; returns how many. Stops once
// more than `limit` are found (a count > limit says so; out has room for n).
std::size_t vec_indices_in(const float* p, std::size_t n, float lo, float hi, int* out, std::size_t limit,
                           const KernelOptions& options = {});
// masses[b] = the sum of the p[i] (>= 0, <= 1) whose top 12 bits are b (b < 1024): non-negative
// floats order as their bits, so these are the masses of 1024 ranges of probability. `masses`
// holds 4096 doubles; the rest are scratch.
void vec_range_masses(const float* p, std::size_t n, double* masses);
// x[i] = -inf wherever p[i] < threshold.
void vec_drop_where_below(float* x, const float* p, std::size_t n, float threshold, const KernelOptions& options = {});
// The k-th largest of x[0..n) (1 <= k <= n), equal values counted apart, as std::nth_element
// finds it; NaNs count as -inf. `heap` is scratch for k floats.
float vec_kth_largest(const float* x, std::size_t n, std::size_t k, float* heap, const KernelOptions& options = {});

}  // namespace wp
