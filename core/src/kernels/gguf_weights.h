// GGUF tensor data (ggml's block formats) turned into Windowpane's weight forms: rows widened to
// f32 with ggml's own arithmetic, Q8_0 / Q4_0 moved losslessly into the q8 / q4 layouts, and any
// supported type converted into a compute precision. ggml's layouts: llama.cpp's
// ggml/src/ggml-common.h (the block structs) and ggml-quants.c (dequantize_row_*).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "kernels/qmatrix.h"
#include "kernels/thread_pool.h"
#include "kernels/weight_storage.h"
#include "wp/model/kernel_options.h"
#include "wp/model/precision.h"

namespace wp {

// Whether dequantize_ggml_row reads this ggml type (F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0,
// Q2_K..Q8_K), and its block geometry: elements and bytes per block.
bool ggml_dequantizable(std::uint32_t type);
bool ggml_block_geometry(std::uint32_t type, std::size_t& block_elems, std::size_t& block_bytes);

// n elements of ggml `type` at src into floats, n a multiple of the type's block. The same floats
// as ggml's dequantize_row_* (f16 scales widened exactly, the products and sums in the reference's
// order, no fused multiply-adds). Throws wp::Error naming the type for one it does not read, or
// for n not a multiple of its block.
void dequantize_ggml_row(std::uint32_t type, const std::uint8_t* src, float* dst, std::int64_t n);

// A rows x cols matrix of Q8_0 blocks (f16 d, 32 int8) or Q4_0 blocks (f16 d, 16 bytes of
// nibbles), row-major as GGUF stores it (ggml's dims [cols, rows]), moved into the q8 / q4 layouts
// bit for bit: dequantize_rows gives exactly dequantize_ggml_row's floats. cols % 32 == 0 (else
// wp::Error). Allocated as make_qmatrix does (scale and q4 slack included); on the pool's threads
// when given. Q8_0 quants of -128 are kept: every q8 kernel reads them exactly (gguf_weights.cpp).
QMatrix repack_q8_0(int rows, int cols, const std::uint8_t* blocks, WeightStorage& storage, ThreadPool* pool = nullptr);
QMatrix repack_q4_0(int rows, int cols, const std::uint8_t* blocks, WeightStorage& storage, ThreadPool* pool = nullptr);

// A rows x cols matrix of any dequantizable `type` in `precision`:
// - Q8_0 into q8, Q4_0 into q4 or q8: repacked, lossless (q8 from Q4_0: q = nibble - 8, same d).
// - F32 and BF16, suitably aligned: make_qmatrix on the file's pointer (into their own precision
//   a view, no copy; otherwise no temporary either).
// - f32 otherwise: widened straight into the storage (no temporary).
// - bf16, q8, q4 from the other types: widened a slab of rows at a time (about 8M elements, at least one row)
//   into `tmp`, then rounded or quantized by make_qmatrix's own code, so the bytes are those of
//   make_qmatrix on the whole widened matrix. Peak temporary memory: tmp (32 MB) plus, for q8/q4,
//   one slab's quantized copy; never the whole matrix in f32 (a 256000 x 2304 embedding would be
//   2.4 GB).
// Quantized precisions with cols % 32 != 0 stay f32, as in make_qmatrix. `tensor` names the
// tensor in errors (an unsupported type, a row length not a multiple of the type's block).
QMatrix dequantize_to(Precision precision, int rows, int cols, std::uint32_t type, const std::uint8_t* data,
                      WeightStorage& storage, ThreadPool* pool, std::vector<float>& tmp,
                      const KernelOptions& options = {}, std::string_view tensor = {});

}  // namespace wp
