// Small AVX-512 pieces shared by the attention kernels (sum16, key_scales16, transpose16_epi32).
// Only for functions compiled for AVX-512F and called where avx512_decode_kernels() holds.
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

// Block b's scale of sixteen keys (sc: the first key's scales, `stride` apart) in lanes 0..15:
// permutes of the keys' scales loaded whole where the stride is 2, 4 or 8 (head_dim 64, 128 or
// 256), a gather (several times slower on Zen 5) otherwise.
[[gnu::always_inline]] __attribute__((target("avx512f"))) inline __m512 key_scales16(const float* sc, int stride, int b, __m512i key_index) {
    const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    if (stride == 2)  // key k's at 2k + b of 32
        return _mm512_permutex2var_ps(_mm512_loadu_ps(sc), _mm512_add_epi32(_mm512_slli_epi32(lane, 1), _mm512_set1_epi32(b)),
                                      _mm512_loadu_ps(sc + 16));
    if (stride == 4) {  // key k's at 4k + b: keys 0-7 from the first 32, 8-15 from the next
        const __m512i idx = _mm512_add_epi32(_mm512_slli_epi32(_mm512_and_si512(lane, _mm512_set1_epi32(7)), 2), _mm512_set1_epi32(b));
        const __m512 lo = _mm512_permutex2var_ps(_mm512_loadu_ps(sc), idx, _mm512_loadu_ps(sc + 16));
        const __m512 hi = _mm512_permutex2var_ps(_mm512_loadu_ps(sc + 32), idx, _mm512_loadu_ps(sc + 48));
        return _mm512_shuffle_f32x4(lo, hi, 0x44);
    }
    if (stride == 8) {  // key k's at 8k + b: four keys from each 32, then one quarter from each
        const __m512i idx = _mm512_add_epi32(_mm512_slli_epi32(_mm512_and_si512(lane, _mm512_set1_epi32(3)), 3), _mm512_set1_epi32(b));
        __m512 r = _mm512_permutex2var_ps(_mm512_loadu_ps(sc), idx, _mm512_loadu_ps(sc + 16));
        r = _mm512_mask_mov_ps(r, 0x00f0, _mm512_permutex2var_ps(_mm512_loadu_ps(sc + 32), idx, _mm512_loadu_ps(sc + 48)));
        r = _mm512_mask_mov_ps(r, 0x0f00, _mm512_permutex2var_ps(_mm512_loadu_ps(sc + 64), idx, _mm512_loadu_ps(sc + 80)));
        return _mm512_mask_mov_ps(r, 0xf000, _mm512_permutex2var_ps(_mm512_loadu_ps(sc + 96), idx, _mm512_loadu_ps(sc + 112)));
    }
    return _mm512_i32gather_ps(key_index, sc + b, 4);
}

// The sixteen rows of r transposed: r[k]'s dword c becomes lane k of r[c]. Unpacking dwords, then
// qwords, within 128-bit lanes, then a 4 x 4 transpose of the lanes: 64 shuffles.
[[gnu::always_inline]] __attribute__((target("avx512f"))) inline void transpose16_epi32(__m512i* r) {
    __m512i t[16], u[16];
    for (int i = 0; i < 8; ++i) {
        t[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
    }
    for (int i = 0; i < 4; ++i) {  // u[4i + m], lane L: dword 4L + m of rows 4i .. 4i + 3
        u[4 * i] = _mm512_unpacklo_epi64(t[4 * i], t[4 * i + 2]);
        u[4 * i + 1] = _mm512_unpackhi_epi64(t[4 * i], t[4 * i + 2]);
        u[4 * i + 2] = _mm512_unpacklo_epi64(t[4 * i + 1], t[4 * i + 3]);
        u[4 * i + 3] = _mm512_unpackhi_epi64(t[4 * i + 1], t[4 * i + 3]);
    }
    for (int m = 0; m < 4; ++m) {
        const __m512i s0 = _mm512_shuffle_i32x4(u[m], u[4 + m], 0x44), s1 = _mm512_shuffle_i32x4(u[8 + m], u[12 + m], 0x44);
        const __m512i s2 = _mm512_shuffle_i32x4(u[m], u[4 + m], 0xee), s3 = _mm512_shuffle_i32x4(u[8 + m], u[12 + m], 0xee);
        r[m] = _mm512_shuffle_i32x4(s0, s1, 0x88);
        r[4 + m] = _mm512_shuffle_i32x4(s0, s1, 0xdd);
        r[8 + m] = _mm512_shuffle_i32x4(s2, s3, 0x88);
        r[12 + m] = _mm512_shuffle_i32x4(s2, s3, 0xdd);
    }
}

}  // namespace wp::avx512

#endif
