#include "kernels/f16_vectors.h"

#include <cstring>

#include "kernels/avx2_common.h"
#include "kernels/kernel_choice.h"
#include "wp/io/float16.h"
#include "kernels/ops.h"

namespace wp {

std::uint16_t f32_to_f16(float f) {
    std::uint32_t x;
    std::memcpy(&x, &f, 4);
    const std::uint32_t sign = (x >> 16) & 0x8000u;
    const int exp = static_cast<int>((x >> 23) & 0xff) - 127 + 15;
    std::uint32_t mant = x & 0x7fffffu;
    if (exp <= 0) {
        if (exp < -10) return static_cast<std::uint16_t>(sign);
        mant |= 0x800000u;
        const int shift = 14 - exp;
        std::uint32_t h = mant >> shift;
        const std::uint32_t rem = mant & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (h & 1))) ++h;
        return static_cast<std::uint16_t>(sign | h);
    }
    if (exp >= 31) return static_cast<std::uint16_t>(sign | 0x7c00u);
    std::uint32_t h = (static_cast<std::uint32_t>(exp) << 10) | (mant >> 13);
    const std::uint32_t rem = mant & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1))) ++h;
    return static_cast<std::uint16_t>(sign | h);
}

#if defined(__x86_64__)
namespace {

using avx2::hsum;

WP_AVX2 float dot_f32_avx2(const float* a, const float* b, int n) {
    __m256 s0 = _mm256_setzero_ps(), s1 = s0;
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
    }
    float s = hsum(_mm256_add_ps(s0, s1));
    for (; i < n; ++i) s += a[i] * b[i];
    return s;
}
WP_AVX2 float dot_f32_f16_avx2(const float* a, const std::uint16_t* b, int n) {
    __m256 s0 = _mm256_setzero_ps(), s1 = s0;
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b + i))), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8),
                             _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b + i + 8))), s1);
    }
    float s = hsum(_mm256_add_ps(s0, s1));
    for (; i < n; ++i) s += a[i] * _cvtsh_ss(b[i]);
    return s;
}

WP_AVX2 void axpy_f16_avx2(float a, const std::uint16_t* x, float* y, int n) {
    const __m256 av = _mm256_set1_ps(a);
    int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(av, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x + i))),
                                                _mm256_loadu_ps(y + i)));
    for (; i < n; ++i) y[i] += a * _cvtsh_ss(x[i]);
}

WP_AVX2 void f32_to_f16_avx2(const float* src, std::uint16_t* dst, std::size_t n) {
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i), _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; ++i) dst[i] = _cvtss_sh(src[i], _MM_FROUND_TO_NEAREST_INT);
}

}  // namespace
#endif

float dot_f32(const float* a, const float* b, int n, const KernelOptions& options) {
#if defined(__x86_64__)
    if (use_avx2_kernels(options)) return dot_f32_avx2(a, b, n);
#endif
    float s = 0;
    for (int i = 0; i < n; ++i) s += a[i] * b[i];
    return s;
}

float dot_f32_f16(const float* a, const std::uint16_t* b, int n, const KernelOptions& options) {
#if defined(__x86_64__)
    if (use_avx2_kernels(options)) return dot_f32_f16_avx2(a, b, n);
#endif
    float s = 0;
    for (int i = 0; i < n; ++i) s += a[i] * f16_to_f32(b[i]);
    return s;
}

void axpy_f16(float a, const std::uint16_t* x, float* y, int n, const KernelOptions& options) {
#if defined(__x86_64__)
    if (use_avx2_kernels(options)) return axpy_f16_avx2(a, x, y, n);
#endif
    for (int i = 0; i < n; ++i) y[i] += a * f16_to_f32(x[i]);
}

void f32_to_f16_array(const float* src, std::uint16_t* dst, std::size_t n, const KernelOptions& options) {
#if defined(__x86_64__)
    if (use_avx2_kernels(options)) return f32_to_f16_avx2(src, dst, n);
#endif
    for (std::size_t i = 0; i < n; ++i) dst[i] = f32_to_f16(src[i]);
}

void f16_to_f32_array(const std::uint16_t* src, float* dst, std::size_t n) { ops::f16_to_f32(src, dst, n); }

}  // namespace wp
