// Which of the engine's kernels run. A model holds one (LoadOptions::kernels) and hands it to every
// matrix product and attention step it runs; benchmarks fill it from --avx2, --no-int8-gemm,
// --no-bf16-gemm, --no-amx, --no-int8-queries and --no-int16-probabilities, tests to compare the paths. The
// defaults take the fastest kernels the CPU has. Dispatch: docs/KERNELS.md.
#pragma once

#include <array>

namespace wp {

struct KernelOptions {
    // The AVX-512 kernels of decode, short prompts and prompt attention, where the CPU has
    // AVX-512 VNNI; off: the AVX2 ones.
    bool avx512 = true;
    // Products of q8/q4 weights with more than few_rows_limit input rows as int8 products
    // (AVX-512 VNNI); off: the weights widened for sgemm.
    bool int8_gemm = true;
    // Products of bf16 weights with more than few_rows_limit input rows by bf16 dot products
    // (AVX-512 BF16, the input rounded to bf16); off: the weights widened for sgemm.
    bool bf16_gemm = true;
    // AMX tiles where the CPU has them (Sapphire Rapids and later Xeons): that product (AMX-BF16;
    // off: AVX-512 BF16), and q8 decode kernels for several input rows at once and decode's
    // scores over a q8 cache (AMX-INT8; off: AVX-512 VNNI, the same floats).
    bool amx = true;
    // The plain scalar loops instead of the vector kernels, wherever these options are passed:
    // a model's matrix products and attention; quantization at load, ops:: and the KV cache's f16
    // conversion keep their vector loops (tests compare those directly). Implies the three above off.
    bool force_scalar = false;
    // Attention over a q8 KV cache takes each query rounded to int8 in the cache's blocks (one
    // scale per block, as llama.cpp's q8_0 cache scores), on every path and CPU (force_scalar
    // too: it changes what is computed, not how), so that decode scores its keys by integer dot
    // products (AVX-512 VNNI, blocks of 32); off: f32 queries.
    bool int8_queries = true;
    // Decode's mix over a q8 KV cache weighs the values by probability x value scale rounded to
    // 16 bits of each chunk's largest and sums the int8 values exactly (AVX-512 VNNI, blocks of
    // 32; attention_mix_q8.h): int16 from four query heads per KV head, two unsigned bytes below
    // (VBMI too, head_dim 128 or 256); off, and elsewhere: f32 products.
    bool int16_probabilities = true;
    // Per precision (indexed by Precision), the decode kernels (one input row, and every product
    // that takes their path) run the AVX2 set although the CPU has the AVX-512 one: what
    // choose_decode_kernels (decode_kernel_choice.h) measured to be faster on this CPU.
    std::array<bool, 4> decode_avx2{};
    // The largest input-row count that takes the decode kernels' path, for every precision;
    // negative: the measured limits of each precision. One input row always takes them.
    int few_rows_limit = -1;
};

}  // namespace wp
