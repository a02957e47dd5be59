// Small AVX-512 pieces shared by the attention kernels. Only for functions compiled for AVX-512F
// and called where avx512_decode_kernels() holds.
#pragma once

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>

namespace wp::avx512 {

// v[0..15]'s lane sums in one vector, lane i holding v[i]'s: four rounds of pairwise shuffles
// and adds, 45 instructions where sixteen horizontal reductions take about 130. The rounds leave
// input k + 4m's sum in lane 4k + m, so the inputs are taken in that (self-inverse) order.
__attribute__((target("avx512f"))) inline __m512 sum16(const __m512* v) {
    constexpr int order[16] = {0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15};
    __m512 a[8], b[4], c[2];
    for (int i = 0; i < 8; ++i) {  // 256-bit halves: [v 8 sums, w 8 sums]
        const __m512 x = v[order[2 * i]], y = v[order[2 * i + 1]];
        a[i] = _mm512_add_ps(_mm512_shuffle_f32x4(x, y, 0x44), _mm512_shuffle_f32x4(x, y, 0xee));
    }
    for (int i = 0; i < 4; ++i)  // 128-bit quarters: four inputs' 4 sums each
        b[i] = _mm512_add_ps(_mm512_shuffle_f32x4(a[2 * i], a[2 * i + 1], 0x88),
                             _mm512_shuffle_f32x4(a[2 * i], a[2 * i + 1], 0xdd));
    for (int i = 0; i < 2; ++i)  // pairs within each quarter
        c[i] = _mm512_add_ps(_mm512_shuffle_ps(b[2 * i], b[2 * i + 1], 0x44), _mm512_shuffle_ps(b[2 * i], b[2 * i + 1], 0xee));
    return _mm512_add_ps(_mm512_shuffle_ps(c[0], c[1], 0x88), _mm512_shuffle_ps(c[0], c[1], 0xdd));
}
}  // namespace wp::avx512

#endif
