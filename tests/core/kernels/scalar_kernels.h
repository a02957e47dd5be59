// Kernel options for the kernel tests, which run each check on the scalar and the vector loops.
#pragma once

#include "wp/model/kernel_options.h"

namespace wp::test {

// Kernel options that force the scalar loops (or not).
inline KernelOptions scalar_kernels(bool on = true) {
    KernelOptions o;
    o.force_scalar = on;
    return o;
}

}  // namespace wp::test
