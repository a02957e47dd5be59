#include "wp/model/precision.h"

#include "wp/error.h"

namespace wp {

const char* precision_name(Precision p) {
    switch (p) {
        case Precision::F32: return "f32";
        case Precision::BF16: return "bf16";
        case Precision::Q8: return "q8";
        case Precision::Q4: return "q4";
    }
    return "?";
}

Precision parse_precision(const std::string& s) {
    if (s == "f32") return Precision::F32;
    if (s == "bf16") return Precision::BF16;
    if (s == "q8") return Precision::Q8;
    if (s == "q4") return Precision::Q4;
    throw Error("unknown precision \"" + s + "\" (f32, bf16, q8 or q4)");
}

}  // namespace wp
