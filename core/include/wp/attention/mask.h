// The one function that decides whether query position q may attend to key position k in a
// layer. The forward pass, the caches and the visualizer all call it.
#pragma once

#include <cstdint>

namespace wp {

enum class MaskReason : std::uint8_t { Allowed, Future, OutsideWindow };

struct MaskSpec {
    bool causal = true;
    int window = 0;  // 0: no window. Otherwise q sees k only when q - k < window.

    MaskReason reason(std::int64_t q, std::int64_t k) const {
        if (causal && k > q) return MaskReason::Future;
        if (window > 0 && q - k >= window) return MaskReason::OutsideWindow;
        return MaskReason::Allowed;
    }
    bool allows(std::int64_t q, std::int64_t k) const { return reason(q, k) == MaskReason::Allowed; }
    bool sliding() const { return window > 0; }
};

}  // namespace wp
