// The compute precision of a model's weight matrices, chosen at load (LoadOptions::precision).
// docs/KERNELS.md describes each one's layout.
#pragma once

#include <string>

namespace wp {

enum class Precision { F32, BF16, Q8, Q4 };

const char* precision_name(Precision p);          // "f32", "bf16", "q8", "q4"
Precision parse_precision(const std::string& s);  // the same names; throws wp::Error

}  // namespace wp
