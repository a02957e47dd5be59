// The compute precisions of a model's weight matrices (LoadOptions::precision, --precision).
// Their layouts in memory: docs/KERNELS.md.
#pragma once

#include <string>

namespace wp {

//  f32  — 32-bit floats: the file's values, or bf16/f16 widened once at load.
//  bf16 — bf16 values used in place from the file's mapping.
//  q8   — blocks of 32 weights: 32 int8 and one f16 scale (8.5 bits per weight), quantized at load.
//  q4   — blocks of 32 weights: 32 four-bit values and one f16 scale (4.5 bits per weight).
enum class Precision { F32, BF16, Q8, Q4 };

const char* precision_name(Precision p);          // "f32", "bf16", "q8", "q4"
Precision parse_precision(const std::string& s);  // the same names; throws wp::Error for others

}  // namespace wp
