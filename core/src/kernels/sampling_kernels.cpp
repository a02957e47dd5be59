#include "kernels/sampling_kernels.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <cstdint>
#include <cstring>
#include <limits>

#include "kernels/avx2_common.h"

namespace wp {

namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

#if defined(__x86_64__)
using avx2::exp8;
using avx2::hsum;

WP_AVX2 float max_avx2(const float* x, std::size_t n, std::size_t& done) {
    // vmaxps returns its second operand when either is NaN: the running maxima stay numbers.
    __m256 m0 = _mm256_set1_ps(kNegInf), m1 = m0, m2 = m0, m3 = m0;
    std::size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        m0 = _mm256_max_ps(_mm256_loadu_ps(x + i), m0);
        m1 = _mm256_max_ps(_mm256_loadu_ps(x + i + 8), m1);
        m2 = _mm256_max_ps(_mm256_loadu_ps(x + i + 16), m2);
        m3 = _mm256_max_ps(_mm256_loadu_ps(x + i + 24), m3);
    }
    done = i;
    const __m256 m = _mm256_max_ps(_mm256_max_ps(m0, m1), _mm256_max_ps(m2, m3));
    alignas(32) float lanes[8];
    _mm256_store_ps(lanes, m);
    return *std::max_element(lanes, lanes + 8);
}

WP_AVX2 std::size_t divide_avx2(const float* x, float* y, std::size_t n, float d) {
    const __m256 dv = _mm256_set1_ps(d);
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_div_ps(_mm256_loadu_ps(x + i), dv));
    return i;
}

WP_AVX2 std::size_t drop_below_avx2(float* x, std::size_t n, float threshold) {
    const __m256 t = _mm256_set1_ps(threshold), ninf = _mm256_set1_ps(kNegInf);
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 v = _mm256_loadu_ps(x + i);
        _mm256_storeu_ps(x + i, _mm256_blendv_ps(v, ninf, _mm256_cmp_ps(v, t, _CMP_LT_OQ)));
    }
    return i;
}

// Whole chunks only; the caller takes the rest.
WP_AVX2 std::size_t exp_sums_avx2(const float* x, std::size_t n, float shift, float* p, double* chunk_sums) {
    // Arguments below -87 are raised to it: exp8's lowest ones (its clamp at -87.34) give subnormal
    // results, which cost a microcode assist each on Intel cores (16 times the whole pass where
    // most logits are masked). e^-87 is 1.6e-38 of the largest: still nothing to a draw.
    const __m256 s = _mm256_set1_ps(shift), ninf = _mm256_set1_ps(kNegInf), lowest = _mm256_set1_ps(-87.0f);
    std::size_t i = 0;
    for (; i + kSampleChunk <= n; i += kSampleChunk) {
        __m256 a[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
        for (std::size_t j = i; j < i + kSampleChunk; j += 32)
            for (int k = 0; k < 4; ++k) {
                const __m256 v = _mm256_loadu_ps(x + j + 8 * k);
                // A masked (-inf) logit is zeroed here.
                const __m256 e = _mm256_and_ps(exp8(_mm256_max_ps(_mm256_sub_ps(v, s), lowest)),
                                               _mm256_cmp_ps(v, ninf, _CMP_NEQ_OQ));
                _mm256_storeu_ps(p + j + 8 * k, e);
                a[k] = _mm256_add_ps(a[k], e);
            }
        chunk_sums[i / kSampleChunk] = hsum(_mm256_add_ps(_mm256_add_ps(a[0], a[1]), _mm256_add_ps(a[2], a[3])));
    }
    return i;
}

WP_AVX2 std::size_t indices_in_avx2(const float* p, std::size_t n, float lo, float hi, int* out, std::size_t limit,
                                    std::size_t& count) {
    const __m256 l = _mm256_set1_ps(lo), h = _mm256_set1_ps(hi);
    std::size_t i = 0;
    for (; i + 8 <= n && count <= limit; i += 8) {
        const __m256 v = _mm256_loadu_ps(p + i);
        unsigned m = static_cast<unsigned>(
            _mm256_movemask_ps(_mm256_and_ps(_mm256_cmp_ps(v, l, _CMP_GE_OQ), _mm256_cmp_ps(v, h, _CMP_LT_OQ))));
        for (; m != 0; m &= m - 1) out[count++] = static_cast<int>(i) + __builtin_ctz(m);
    }
    return i;
}

WP_AVX2 std::size_t drop_where_below_avx2(float* x, const float* p, std::size_t n, float threshold) {
    const __m256 t = _mm256_set1_ps(threshold), ninf = _mm256_set1_ps(kNegInf);
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(x + i, _mm256_blendv_ps(_mm256_loadu_ps(x + i), ninf,
                                                 _mm256_cmp_ps(_mm256_loadu_ps(p + i), t, _CMP_LT_OQ)));
    return i;
}

// Eight values at a time against the heap's smallest: most of a vocabulary is passed over with
// one compare.
WP_AVX2 std::size_t kth_scan_avx2(const float* x, std::size_t i, std::size_t n, float* heap, std::size_t k) {
    for (; i + 8 <= n; i += 8) {
        unsigned m = static_cast<unsigned>(
            _mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(x + i), _mm256_set1_ps(heap[0]), _CMP_GT_OQ)));
        for (; m != 0; m &= m - 1) {
            const float v = x[i + __builtin_ctz(m)];
            if (!(v > heap[0])) continue;
            std::pop_heap(heap, heap + k, std::greater<float>());
            heap[k - 1] = v;
            std::push_heap(heap, heap + k, std::greater<float>());
        }
    }
    return i;
}
#endif

}  // namespace

float vec_max(const float* x, std::size_t n, const KernelOptions& options) {
    float best = kNegInf;
    std::size_t i = 0;
#if defined(__x86_64__)
    if (use_avx2_kernels(options)) best = max_avx2(x, n, i);
#endif
    for (; i < n; ++i)
        if (x[i] > best) best = x[i];
    return best;
}

void vec_divide(const float* x, float* y, std::size_t n, float d, const KernelOptions& options) {
    std::size_t i = 0;
#if defined(__x86_64__)
    if (use_avx2_kernels(options)) i = divide_avx2(x, y, n, d);
#endif
    for (; i < n; ++i) y[i] = x[i] / d;
}

void vec_drop_below(float* x, std::size_t n, float threshold, const KernelOptions& options) {
    std::size_t i = 0;
#if defined(__x86_64__)
    if (use_avx2_kernels(options)) i = drop_below_avx2(x, n, threshold);
#endif
    for (; i < n; ++i)
        if (x[i] < threshold) x[i] = kNegInf;
}

double vec_exp_sums(const float* x, std::size_t n, float shift, float* p, double* chunk_sums,
                    const KernelOptions& options) {
    std::size_t i = 0;
#if defined(__x86_64__)
    if (use_avx2_kernels(options)) i = exp_sums_avx2(x, n, shift, p, chunk_sums);
#endif
    for (; i < n; i += kSampleChunk) {
        const std::size_t e = std::min(n, i + kSampleChunk);
        float s = 0;
        for (std::size_t j = i; j < e; ++j) {
            p[j] = x[j] > kNegInf ? std::exp(x[j] - shift) : 0.0f;  // NaN too, as the vector loop
            s += p[j];
        }
        chunk_sums[i / kSampleChunk] = s;
    }
    double total = 0;
    for (std::size_t c = 0; c < (n + kSampleChunk - 1) / kSampleChunk; ++c) total += chunk_sums[c];
    return total;
}

std::size_t vec_indices_in(const float* p, std::size_t n, float lo, float hi, int* out, std::size_t limit,
                           const KernelOptions& options) {
    std::size_t i = 0, count = 0;
#if defined(__x86_64__)
    if (use_avx2_kernels(options)) i = indices_in_avx2(p, n, lo, hi, out, limit, count);
#endif
    for (; i < n && count <= limit; ++i)
        if (p[i] >= lo && p[i] < hi) out[count++] = static_cast<int>(i);
    return count;
}

void vec_range_masses(const float* p, std::size_t n, double* masses) {
    // Four tables taken in turn: neighbours in one range would otherwise wait on each other's add.
    constexpr std::size_t kRanges = 1024;
    double* part = masses;
    std::fill(part, part + 4 * kRanges, 0.0);
    auto range = [](float v) {
        std::uint32_t u;
        std::memcpy(&u, &v, sizeof u);
        return (u >> 20) & (kRanges - 1);
    };
    std::size_t i = 0;
    for (; i + 4 <= n; i += 4)
        for (std::size_t k = 0; k < 4; ++k) part[k * kRanges + range(p[i + k])] += p[i + k];
    for (; i < n; ++i) part[range(p[i])] += p[i];
    for (std::size_t b = 0; b < kRanges; ++b)
        masses[b] = (part[b] + part[kRanges + b]) + (part[2 * kRanges + b] + part[3 * kRanges + b]);
}

void vec_drop_where_below(float* x, const float* p, std::size_t n, float threshold, const KernelOptions& options) {
    std::size_t i = 0;
#if defined(__x86_64__)
    if (use_avx2_kernels(options)) i = drop_where_below_avx2(x, p, n, threshold);
#endif
    for (; i < n; ++i)
        if (p[i] < threshold) x[i] = kNegInf;
}

float vec_kth_largest(const float* x, std::size_t n, std::size_t k, float* heap, const KernelOptions& options) {
    // The k largest so far in a min-heap: a value enters only past the smallest of them.
    for (std::size_t i = 0; i < k; ++i) heap[i] = std::isnan(x[i]) ? kNegInf : x[i];
    std::make_heap(heap, heap + k, std::greater<float>());
    std::size_t i = k;
#if defined(__x86_64__)
    if (use_avx2_kernels(options)) i = kth_scan_avx2(x, i, n, heap, k);
#endif
    for (; i < n; ++i)
        if (x[i] > heap[0]) {
            std::pop_heap(heap, heap + k, std::greater<float>());
            heap[k - 1] = x[i];
            std::push_heap(heap, heap + k, std::greater<float>());
        }
    return heap[0];
}

}  // namespace wp
