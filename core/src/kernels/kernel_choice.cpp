#include "kernels/kernel_choice.h"

namespace wp {

bool cpu_has_avx2_fma() {
#if defined(__x86_64__)
    static const bool has =
        __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
    return has;
#else
    return false;
#endif
}

bool cpu_has_avx512_vnni() {
#if defined(__x86_64__)
    static const bool has = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                            __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni") &&
                            cpu_has_avx2_fma();
    return has;
#else
    return false;
#endif
}

bool use_avx2_kernels(const KernelOptions& options) { return cpu_has_avx2_fma() && !options.force_scalar; }

bool avx512_decode_kernels(const KernelOptions& options) {
    return cpu_has_avx512_vnni() && options.avx512 && !options.force_scalar;
}

bool int8_gemm_available(const KernelOptions& options) {
    return cpu_has_avx512_vnni() && options.int8_gemm && !options.force_scalar;
}

}  // namespace wp
