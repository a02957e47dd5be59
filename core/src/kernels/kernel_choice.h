// Which kernels run: what the CPU has (checked once) and what the caller's KernelOptions allow.
// Every choice is a function of its arguments; nothing here can be switched process-wide.
#pragma once

#include "wp/model/kernel_options.h"

namespace wp {

bool cpu_has_avx2_fma();     // AVX2, FMA and F16C
bool cpu_has_avx512_vnni();  // AVX-512 F, BW, VL and VNNI (and AVX2/FMA/F16C)
bool cpu_has_avx512_vbmi();  // the above and VBMI (byte permutes: Ice Lake, Zen 4 and later)

// The AVX2 kernels: the CPU has them and the scalar loops are not forced.
bool use_avx2_kernels(const KernelOptions& options);
// The AVX-512 kernels of decode, short prompts and prompt attention: the CPU has VNNI,
// options.avx512 and not options.force_scalar.
bool avx512_decode_kernels(const KernelOptions& options);
// The int8 product for q8/q4 prompts: the CPU has VNNI, options.int8_gemm and not
// options.force_scalar.
bool int8_gemm_available(const KernelOptions& options);
bool cpu_has_avx512_bf16();  // AVX-512 F, BW, VL and BF16 (and AVX2/FMA)
// The bf16 product for bf16 prompts: the CPU has AVX-512 BF16, options.bf16_gemm and not
// options.force_scalar.
bool bf16_gemm_available(const KernelOptions& options);
// AMX-TILE and AMX-BF16, and the OS lets this process use the tiles (asked once).
bool cpu_has_amx_bf16();
// The bf16 product on AMX tiles: bf16_gemm_available(options), options.amx and the CPU has AMX-BF16.
bool amx_bf16_available(const KernelOptions& options);
// AMX-TILE and AMX-INT8, AVX-512 VNNI, and the OS lets this process use the tiles (asked once).
bool cpu_has_amx_int8();
// q8 decode kernels for several input rows, and decode's scores over a q8 cache, on AMX tiles:
// avx512_decode_kernels(options), options.amx and the CPU has AMX-INT8.
bool amx_int8_available(const KernelOptions& options);

}  // namespace wp
