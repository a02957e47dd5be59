#include "kernels/kernel_choice.h"

#if defined(__x86_64__)
#include <cpuid.h>
#endif
#if defined(__x86_64__) && defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace wp {

#if defined(__x86_64__)
// clang before 16 rejects "f16c" in __builtin_cpu_supports (the fuzz build uses clang), so ask CPUID.
static bool cpu_has_f16c() {
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    return __get_cpuid(1, &eax, &ebx, &ecx, &edx) && (ecx & bit_F16C) != 0;
}
#endif

bool cpu_has_avx2_fma() {
#if defined(__x86_64__)
    static const bool has =
        __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && cpu_has_f16c();
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

bool cpu_has_avx512_vbmi() {
#if defined(__x86_64__)
    static const bool has = cpu_has_avx512_vnni() && __builtin_cpu_supports("avx512vbmi");
    return has;
#else
    return false;
#endif
}

bool cpu_has_avx512_bf16() {
#if defined(__x86_64__)
    // CPUID leaf 7, sub-leaf 1, EAX bit 5 (not every compiler's __builtin_cpu_supports knows it).
    static const bool has = [] {
        unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
        const bool bf16 = __get_cpuid_count(7, 1, &eax, &ebx, &ecx, &edx) && (eax & (1u << 5)) != 0;
        return bf16 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512vl") && cpu_has_avx2_fma();
    }();
    return has;
#else
    return false;
#endif
}

namespace {

// AMX-TILE and the unit `unit_bit` (CPUID leaf 7, sub-leaf 0, EDX: 22 AMX-BF16, 25 AMX-INT8),
// and the tiles granted: Linux hands out their 8 KB of state only to a process that asks
// (arch_prctl ARCH_REQ_XCOMP_PERM for XTILEDATA, feature 18, once); a kernel or hypervisor that
// refuses leaves the AVX-512 kernels.
[[maybe_unused]] bool amx_unit(unsigned unit_bit) {
#if defined(__x86_64__) && defined(__linux__)
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx) || (edx & (1u << 24)) == 0 || (edx & (1u << unit_bit)) == 0)
        return false;
    static const bool granted = [] {
        constexpr long kReqXcompPerm = 0x1023, kXtiledata = 18;
        return syscall(SYS_arch_prctl, kReqXcompPerm, kXtiledata) == 0;
    }();
    return granted;
#else
    (void)unit_bit;
    return false;
#endif
}

}  // namespace

// The bf16 product repacks with AVX-512 BF16; the q8 rows' scaling is AVX-512.
bool cpu_has_amx_bf16() {
    static const bool has = amx_unit(22) && cpu_has_avx512_bf16();
    return has;
}

bool cpu_has_amx_int8() {
    static const bool has = amx_unit(25) && cpu_has_avx512_vnni();
    return has;
}

bool amx_int8_available(const KernelOptions& options) {
    return avx512_decode_kernels(options) && options.amx && cpu_has_amx_int8();
}

bool use_avx2_kernels(const KernelOptions& options) { return cpu_has_avx2_fma() && !options.force_scalar; }

bool avx512_decode_kernels(const KernelOptions& options) {
    return cpu_has_avx512_vnni() && options.avx512 && !options.force_scalar;
}

bool int8_gemm_available(const KernelOptions& options) {
    return cpu_has_avx512_vnni() && options.int8_gemm && !options.force_scalar;
}

bool bf16_gemm_available(const KernelOptions& options) {
    return cpu_has_avx512_bf16() && options.bf16_gemm && !options.force_scalar;
}

bool amx_bf16_available(const KernelOptions& options) { return bf16_gemm_available(options) && options.amx && cpu_has_amx_bf16(); }

}  // namespace wp
