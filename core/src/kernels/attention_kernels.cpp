#include "kernels/attention_kernels.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

#include "kernels/attention_mix_q8.h"
#include "kernels/attention_scores_q8.h"
#include "kernels/avx2_common.h"
#include "kernels/avx512_common.h"
#include "kernels/kernel_choice.h"
#include "kernels/prepared_input.h"
#include "wp/io/float16.h"

#if defined(__x86_64__) || defined(_M_X64)
#define WP_X86 1
#include <immintrin.h>
#endif

namespace wp {

namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// Cached rows are read through these: element `i` of a flat array (row j's element c at
// j * stride + c) and its address, for f32, f16 and q8 (int8 times its block's scale).
float load1(const float* p, std::size_t i) { return p[i]; }
float load1(const std::uint16_t* p, std::size_t i) { return f16_to_f32(p[i]); }
float load1(const Q8Rows& r, std::size_t i) { return static_cast<float>(r.q[i]) * r.scales[i / r.block]; }
const char* address(const float* p, std::size_t i) { return reinterpret_cast<const char*>(p + i); }
const char* address(const std::uint16_t* p, std::size_t i) { return reinterpret_cast<const char*>(p + i); }
const char* address(const Q8Rows& r, std::size_t i) { return reinterpret_cast<const char*>(r.q + i); }
template <typename T> constexpr int elem_bytes = 0;  // T: the row source's type
template <> constexpr int elem_bytes<const float*> = 4;
template <> constexpr int elem_bytes<const std::uint16_t*> = 2;
template <> constexpr int elem_bytes<Q8Rows> = 1;

template <typename T>
void scores_scalar(const float* q, int nq, int d, const T& keys, std::size_t ks, int n, float* out, std::size_t os) {
    for (int h = 0; h < nq; ++h)
        for (int j = 0; j < n; ++j) {
            float s = 0;
            for (int i = 0; i < d; ++i) s += q[static_cast<std::size_t>(h) * d + i] * load1(keys, j * ks + i);
            out[h * os + j] = s;
        }
}

template <typename T>
void mix_scalar(const float* p, std::size_t ps, int nq, const T& values, std::size_t vs, int n, int d, float* out) {
    std::fill(out, out + static_cast<std::size_t>(nq) * d, 0.0f);
    for (int j = 0; j < n; ++j)
        for (int h = 0; h < nq; ++h) {
            const float w = p[h * ps + j];
            if (w == 0.0f) continue;
            for (int i = 0; i < d; ++i) out[static_cast<std::size_t>(h) * d + i] += w * load1(values, j * vs + i);
        }
}

#ifdef WP_X86
#define WP_AVX2 __attribute__((target("avx2,fma,f16c")))

WP_AVX2 inline __m256 load8(const float* p, std::size_t i) { return _mm256_loadu_ps(p + i); }
WP_AVX2 inline __m256 load8(const std::uint16_t* p, std::size_t i) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i)));
}
// Eight int8 within one block (blocks are multiples of 8 long) times the block's scale.
WP_AVX2 inline __m256 load8(const Q8Rows& r, std::size_t i) {
    const __m256 v = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(r.q + i))));
    return _mm256_mul_ps(v, _mm256_broadcast_ss(r.scales + (i >> r.shift)));
}

WP_AVX2 inline float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

WP_AVX2 inline float hmax(__m256 v) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

using avx2::exp8;

// tanh (Cephes' tanhf): an odd polynomial below 0.625, else 1 - 2 / (e^2|x| + 1) with the sign.
WP_AVX2 inline __m256 tanh8(__m256 x) {
    const __m256 sign = _mm256_and_ps(x, _mm256_set1_ps(-0.0f));
    const __m256 a = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), x);
    const __m256 s = _mm256_mul_ps(x, x);
    __m256 p = _mm256_set1_ps(-5.70498872745e-3f);
    p = _mm256_fmadd_ps(p, s, _mm256_set1_ps(2.06390887954e-2f));
    p = _mm256_fmadd_ps(p, s, _mm256_set1_ps(-5.37397155531e-2f));
    p = _mm256_fmadd_ps(p, s, _mm256_set1_ps(1.33314422036e-1f));
    p = _mm256_fmadd_ps(p, s, _mm256_set1_ps(-3.33332819422e-1f));
    const __m256 small = _mm256_fmadd_ps(_mm256_mul_ps(p, s), x, x);
    const __m256 e = exp8(_mm256_add_ps(a, a));
    const __m256 big = _mm256_or_ps(
        _mm256_sub_ps(_mm256_set1_ps(1.0f), _mm256_div_ps(_mm256_set1_ps(2.0f), _mm256_add_ps(e, _mm256_set1_ps(1.0f)))),
        sign);
    return _mm256_blendv_ps(big, small, _mm256_cmp_ps(a, _mm256_set1_ps(0.625f), _CMP_LT_OQ));
}

// NQ query heads against one key at a time (NK keys per step for more independent sums).
// The keys PF ahead are prefetched into L2 (into L1 they would evict the rows in use; see
// mix_avx2).
template <int NQ, int NK, typename T>
WP_AVX2 void scores_avx2(const float* q, int d, const T& keys, std::size_t ks, int n, float* out, std::size_t os) {
    constexpr int PF = 16;
    const int row_bytes = d * elem_bytes<T>;
    int j = 0;
    for (; j + NK <= n; j += NK) {
        for (int k = j + PF; k < std::min(n, j + PF + NK); ++k)
            for (int b = 0; b < row_bytes; b += 64) _mm_prefetch(address(keys, k * ks) + b, _MM_HINT_T1);
        __m256 acc[NQ][NK];
        for (int h = 0; h < NQ; ++h)
            for (int k = 0; k < NK; ++k) acc[h][k] = _mm256_setzero_ps();
        for (int i = 0; i < d; i += 8) {
            __m256 kv[NK];
            for (int k = 0; k < NK; ++k) kv[k] = load8(keys, (j + k) * ks + i);
            for (int h = 0; h < NQ; ++h) {
                const __m256 qv = _mm256_loadu_ps(q + static_cast<std::size_t>(h) * d + i);
                for (int k = 0; k < NK; ++k) acc[h][k] = _mm256_fmadd_ps(qv, kv[k], acc[h][k]);
            }
        }
        for (int h = 0; h < NQ; ++h)
            for (int k = 0; k < NK; ++k) out[h * os + j + k] = hsum(acc[h][k]);
    }
    for (; j < n; ++j) {
        __m256 acc[NQ];
        for (int h = 0; h < NQ; ++h) acc[h] = _mm256_setzero_ps();
        for (int i = 0; i < d; i += 8) {
            const __m256 kv = load8(keys, j * ks + i);
            for (int h = 0; h < NQ; ++h)
                acc[h] = _mm256_fmadd_ps(_mm256_loadu_ps(q + static_cast<std::size_t>(h) * d + i), kv, acc[h]);
        }
        for (int h = 0; h < NQ; ++h) out[h * os + j] = hsum(acc[h]);
    }
}

template <typename T>
WP_AVX2 void scores_dispatch(const float* q, int nq, int d, const T& keys, std::size_t ks, int n, float* out,
                             std::size_t os) {
    while (nq > 0) {
        const int take = std::min(nq, 8);
        switch (take) {
            // At least 7 independent sums: an FMA's result is ready 4 cycles after it starts
            // and two start per cycle, so fewer chains leave the FMA units waiting (gemma2's
            // pairs of heads had 4, and the profile showed the loop stalled on them).
            case 1: scores_avx2<1, 8>(q, d, keys, ks, n, out, os); break;
            case 2: scores_avx2<2, 4>(q, d, keys, ks, n, out, os); break;
            case 3: scores_avx2<3, 3>(q, d, keys, ks, n, out, os); break;
            case 4: scores_avx2<4, 2>(q, d, keys, ks, n, out, os); break;
            case 5: scores_avx2<5, 2>(q, d, keys, ks, n, out, os); break;
            case 6: scores_avx2<6, 2>(q, d, keys, ks, n, out, os); break;
            case 7: scores_avx2<7, 1>(q, d, keys, ks, n, out, os); break;
            default: scores_avx2<8, 1>(q, d, keys, ks, n, out, os); break;
        }
        q += static_cast<std::size_t>(take) * d;
        out += take * os;
        nq -= take;
    }
}

// W output lanes (W/8 vectors) of NQ heads stay in registers while a block of 16 values passes,
// once per W-lane slice of head_dim. The block is small because value rows are a power of two
// apart (head_dim x 2 or 4 bytes), so the same slice of many rows falls into few sets of the
// 8-way L1: with the cache's earlier layout (2 KB apart) a block of 64 thrashed it and every load
// went to L2. The next block is prefetched into L2 slice by slice meanwhile (docs/KERNELS.md,
// "Decode attention").
template <int NQ, int W, typename T>
WP_AVX2 void mix_avx2(const float* p, std::size_t ps, const T& values, std::size_t vs, int n, int d, float* out) {
    constexpr int V = W / 8, KB = 16;
    constexpr int lines = W * elem_bytes<T> / 64;  // cache lines per row slice (>= 1)
    std::fill(out, out + static_cast<std::size_t>(NQ) * d, 0.0f);
    for (int kb = 0; kb < n; kb += KB) {
        const int ke = std::min(n, kb + KB), pe = std::min(n, ke + KB);
        for (int c = 0; c < d; c += W) {
            for (int j = ke; j < pe; ++j)
                for (int l = 0; l < std::max(1, lines); ++l)
                    _mm_prefetch(address(values, j * vs + c) + 64 * l, _MM_HINT_T1);
            __m256 acc[NQ][V];
            for (int h = 0; h < NQ; ++h)
                for (int v = 0; v < V; ++v) acc[h][v] = _mm256_loadu_ps(out + static_cast<std::size_t>(h) * d + c + 8 * v);
            for (int j = kb; j < ke; ++j) {
                __m256 vv[V];
                for (int v = 0; v < V; ++v) vv[v] = load8(values, j * vs + c + 8 * v);
                for (int h = 0; h < NQ; ++h) {
                    const __m256 w = _mm256_broadcast_ss(p + h * ps + j);
                    for (int v = 0; v < V; ++v) acc[h][v] = _mm256_fmadd_ps(w, vv[v], acc[h][v]);
                }
            }
            for (int h = 0; h < NQ; ++h)
                for (int v = 0; v < V; ++v) _mm256_storeu_ps(out + static_cast<std::size_t>(h) * d + c + 8 * v, acc[h][v]);
        }
    }
}

template <typename T>
WP_AVX2 void mix_dispatch(const float* p, std::size_t ps, int nq, const T& values, std::size_t vs, int n, int d,
                          float* out) {
    while (nq > 0) {
        const int take = std::min(nq, 8);
        const bool w64 = d % 64 == 0, w32 = d % 32 == 0, w16 = d % 16 == 0;
        switch (take) {
            case 1:
                if (w64) mix_avx2<1, 64>(p, ps, values, vs, n, d, out);
                else if (w32) mix_avx2<1, 32>(p, ps, values, vs, n, d, out);
                else mix_avx2<1, 8>(p, ps, values, vs, n, d, out);
                break;
            case 2:
                if (w32) mix_avx2<2, 32>(p, ps, values, vs, n, d, out);
                else mix_avx2<2, 8>(p, ps, values, vs, n, d, out);
                break;
            case 3:
                if (w16) mix_avx2<3, 16>(p, ps, values, vs, n, d, out);
                else mix_avx2<3, 8>(p, ps, values, vs, n, d, out);
                break;
            case 4:
                if (w16) mix_avx2<4, 16>(p, ps, values, vs, n, d, out);
                else mix_avx2<4, 8>(p, ps, values, vs, n, d, out);
                break;
            case 5: mix_avx2<5, 8>(p, ps, values, vs, n, d, out); break;
            case 6: mix_avx2<6, 8>(p, ps, values, vs, n, d, out); break;
            case 7: mix_avx2<7, 8>(p, ps, values, vs, n, d, out); break;
            default: mix_avx2<8, 8>(p, ps, values, vs, n, d, out); break;
        }
        p += take * ps;
        out += static_cast<std::size_t>(take) * d;
        nq -= take;
    }
}

WP_AVX2 float softmax_row_avx2(float* x, int n, float scale, float cap, const float* bias) {
    const __m256 sc = _mm256_set1_ps(scale), capv = _mm256_set1_ps(cap), inv_cap = _mm256_set1_ps(cap > 0 ? 1.0f / cap : 0.0f);
    __m256 mx = _mm256_set1_ps(kNegInf);
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_mul_ps(_mm256_loadu_ps(x + i), sc);
        if (cap > 0) v = _mm256_mul_ps(capv, tanh8(_mm256_mul_ps(v, inv_cap)));
        if (bias) v = _mm256_add_ps(v, _mm256_loadu_ps(bias + i));
        _mm256_storeu_ps(x + i, v);
        mx = _mm256_max_ps(mx, v);
    }
    float m = hmax(mx);
    for (; i < n; ++i) {
        float v = x[i] * scale;
        if (cap > 0) v = cap * std::tanh(v / cap);
        if (bias) v += bias[i];
        x[i] = v;
        m = std::max(m, v);
    }
    const __m256 mv = _mm256_set1_ps(m), ninf = _mm256_set1_ps(kNegInf);
    __m256 sum = _mm256_setzero_ps();
    for (i = 0; i + 8 <= n; i += 8) {
        const __m256 v = _mm256_loadu_ps(x + i);
        const __m256 e = _mm256_and_ps(exp8(_mm256_sub_ps(v, mv)), _mm256_cmp_ps(v, ninf, _CMP_NEQ_OQ));
        _mm256_storeu_ps(x + i, e);
        sum = _mm256_add_ps(sum, e);
    }
    float s = hsum(sum);
    for (; i < n; ++i) {
        const float e = std::isinf(x[i]) ? 0.0f : std::exp(x[i] - m);
        x[i] = e;
        s += e;
    }
    if (!(s > 0)) {  // every key masked
        std::fill(x, x + n, 0.0f);
        return kNegInf;
    }
    const __m256 inv = _mm256_set1_ps(1.0f / s);
    for (i = 0; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), inv));
    for (; i < n; ++i) x[i] /= s;
    return m + std::log(s);
}

WP_AVX2 std::size_t tanh_avx2(const float* x, float* y, std::size_t n) {
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, tanh8(_mm256_loadu_ps(x + i)));
    return i;
}

WP_AVX2 std::size_t gelu_avx2(const float* gate, const float* up, float* out, std::size_t n) {
    const __m256 k = _mm256_set1_ps(0.7978845608028654f), c = _mm256_set1_ps(0.044715f), half = _mm256_set1_ps(0.5f),
                 one = _mm256_set1_ps(1.0f);
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 g = _mm256_loadu_ps(gate + i);
        const __m256 inner = _mm256_mul_ps(k, _mm256_fmadd_ps(_mm256_mul_ps(c, g), _mm256_mul_ps(g, g), g));
        const __m256 t = _mm256_add_ps(one, tanh8(inner));
        _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_mul_ps(_mm256_mul_ps(half, g), t), _mm256_loadu_ps(up + i)));
    }
    return i;
}

WP_AVX2 std::size_t silu_avx2(const float* gate, const float* up, float* out, std::size_t n) {
    const __m256 one = _mm256_set1_ps(1.0f);
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 g = _mm256_loadu_ps(gate + i);
        const __m256 e = exp8(_mm256_sub_ps(_mm256_setzero_ps(), g));
        _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_div_ps(g, _mm256_add_ps(one, e)), _mm256_loadu_ps(up + i)));
    }
    return i;
}

WP_AVX2 std::size_t softcap_avx2(float* x, std::size_t n, float cap) {
    const __m256 c = _mm256_set1_ps(cap), inv = _mm256_set1_ps(1.0f / cap);
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, _mm256_mul_ps(c, tanh8(_mm256_mul_ps(_mm256_loadu_ps(x + i), inv))));
    return i;
}

// The AVX-512 forms of scores_avx2 and mix_avx2, the same loops on 16 lanes, for the q8 cache
// (its widening, int8 to f32 times the block's scale, makes the AVX2 loops compute-bound) and
// for f16 where three or more query heads share each key (scores_any); f32 and f16 with fewer
// heads are memory-bound and measured the same either way (docs/KERNELS.md).
#define WP_AVX512_DECODE __attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma,f16c")))

WP_AVX512_DECODE inline __m512 load16(const std::uint16_t* p, std::size_t i) {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i)));
}

// Sixteen int8 within one block (blocks are multiples of 16 long here) times its scale.
WP_AVX512_DECODE inline __m512 load16(const Q8Rows& r, std::size_t i) {
    const __m512 v = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(r.q + i))));
    return _mm512_mul_ps(v, _mm512_set1_ps(r.scales[i >> r.shift]));
}

template <int NQ, int NK, typename T>
WP_AVX512_DECODE void scores_avx512(const float* q, int d, const T& keys, std::size_t ks, int n, float* out,
                                    std::size_t os) {
    constexpr int PF = 16;
    const int row_bytes = d * elem_bytes<T>;
    int j = 0;
    for (; j + NK <= n; j += NK) {
        for (int k = j + PF; k < std::min(n, j + PF + NK); ++k)
            for (int b = 0; b < row_bytes; b += 64) _mm_prefetch(address(keys, k * ks) + b, _MM_HINT_T1);
        static_assert(NQ * NK <= 16);
        __m512 acc[16];  // head h, key k at h * NK + k; the rest stay zero for sum16
        for (int a = 0; a < 16; ++a) acc[a] = _mm512_setzero_ps();
        for (int i = 0; i < d; i += 16) {
            __m512 kv[NK];
            for (int k = 0; k < NK; ++k) kv[k] = load16(keys, (j + k) * ks + i);
            for (int h = 0; h < NQ; ++h) {
                const __m512 qv = _mm512_loadu_ps(q + static_cast<std::size_t>(h) * d + i);
                for (int k = 0; k < NK; ++k) acc[h * NK + k] = _mm512_fmadd_ps(qv, kv[k], acc[h * NK + k]);
            }
        }
        alignas(64) float sums[16];
        _mm512_store_ps(sums, avx512::sum16(acc));
        for (int h = 0; h < NQ; ++h) std::memcpy(out + h * os + j, sums + h * NK, sizeof(float) * NK);
    }
    for (; j < n; ++j) {
        __m512 acc[NQ];
        for (int h = 0; h < NQ; ++h) acc[h] = _mm512_setzero_ps();
        for (int i = 0; i < d; i += 16) {
            const __m512 kv = load16(keys, j * ks + i);
            for (int h = 0; h < NQ; ++h)
                acc[h] = _mm512_fmadd_ps(_mm512_loadu_ps(q + static_cast<std::size_t>(h) * d + i), kv, acc[h]);
        }
        for (int h = 0; h < NQ; ++h) out[h * os + j] = _mm512_reduce_add_ps(acc[h]);
    }
}

template <typename T>
WP_AVX512_DECODE void scores_dispatch512(const float* q, int nq, int d, const T& keys, std::size_t ks, int n,
                                         float* out, std::size_t os) {
    while (nq > 0) {
        const int take = std::min(nq, 8);
        switch (take) {  // up to 16 sums, reduced together by sum16
            case 1: scores_avx512<1, 16>(q, d, keys, ks, n, out, os); break;
            case 2: scores_avx512<2, 8>(q, d, keys, ks, n, out, os); break;
            case 3: scores_avx512<3, 5>(q, d, keys, ks, n, out, os); break;
            case 4: scores_avx512<4, 4>(q, d, keys, ks, n, out, os); break;
            case 5: scores_avx512<5, 3>(q, d, keys, ks, n, out, os); break;
            case 6: scores_avx512<6, 2>(q, d, keys, ks, n, out, os); break;
            case 7: scores_avx512<7, 2>(q, d, keys, ks, n, out, os); break;
            default: scores_avx512<8, 2>(q, d, keys, ks, n, out, os); break;
        }
        q += static_cast<std::size_t>(take) * d;
        out += take * os;
        nq -= take;
    }
}

template <int NQ, int W, typename T>
WP_AVX512_DECODE void mix_avx512(const float* p, std::size_t ps, const T& values, std::size_t vs, int n, int d,
                                 float* out) {
    constexpr int V = W / 16, KB = 16;
    constexpr int lines = W * elem_bytes<T> / 64;  // cache lines per row slice (>= 1)
    std::fill(out, out + static_cast<std::size_t>(NQ) * d, 0.0f);
    for (int kb = 0; kb < n; kb += KB) {
        const int ke = std::min(n, kb + KB), pe = std::min(n, ke + KB);
        for (int c = 0; c < d; c += W) {
            for (int j = ke; j < pe; ++j)
                for (int l = 0; l < std::max(1, lines); ++l) _mm_prefetch(address(values, j * vs + c) + 64 * l, _MM_HINT_T1);
            __m512 acc[NQ][V];
            for (int h = 0; h < NQ; ++h)
                for (int v = 0; v < V; ++v) acc[h][v] = _mm512_loadu_ps(out + static_cast<std::size_t>(h) * d + c + 16 * v);
            for (int j = kb; j < ke; ++j) {
                __m512 vv[V];
                for (int v = 0; v < V; ++v) vv[v] = load16(values, j * vs + c + 16 * v);
                for (int h = 0; h < NQ; ++h) {
                    const __m512 w = _mm512_set1_ps(p[h * ps + j]);
                    for (int v = 0; v < V; ++v) acc[h][v] = _mm512_fmadd_ps(w, vv[v], acc[h][v]);
                }
            }
            for (int h = 0; h < NQ; ++h)
                for (int v = 0; v < V; ++v) _mm512_storeu_ps(out + static_cast<std::size_t>(h) * d + c + 16 * v, acc[h][v]);
        }
    }
}

// The widest slice up to MaxW that divides the head dimension.
template <int NQ, int MaxW, typename T>
WP_AVX512_DECODE void mix_widest(const float* p, std::size_t ps, const T& values, std::size_t vs, int n, int d,
                                 float* out) {
    if constexpr (MaxW > 16)
        if (d % MaxW != 0) return mix_widest<NQ, MaxW / 2>(p, ps, values, vs, n, d, out);
    mix_avx512<NQ, MaxW>(p, ps, values, vs, n, d, out);
}

template <typename T>
WP_AVX512_DECODE void mix_dispatch512(const float* p, std::size_t ps, int nq, const T& values, std::size_t vs, int n,
                                      int d, float* out) {
    // Slices wide enough for 8 independent sums where the head dimension allows, and at least two
    // per head from five heads on (one waited on each sum's previous FMA).
    while (nq > 0) {
        const int take = std::min(nq, 8);
        switch (take) {
            case 1: mix_widest<1, 128>(p, ps, values, vs, n, d, out); break;
            case 2: mix_widest<2, 64>(p, ps, values, vs, n, d, out); break;
            case 3: mix_widest<3, 32>(p, ps, values, vs, n, d, out); break;
            case 4: mix_widest<4, 32>(p, ps, values, vs, n, d, out); break;
            case 5: mix_widest<5, 32>(p, ps, values, vs, n, d, out); break;
            case 6: mix_widest<6, 32>(p, ps, values, vs, n, d, out); break;
            case 7: mix_widest<7, 32>(p, ps, values, vs, n, d, out); break;
            default: mix_widest<8, 32>(p, ps, values, vs, n, d, out); break;
        }
        p += take * ps;
        out += static_cast<std::size_t>(take) * d;
        nq -= take;
    }
}

// exp8 on 16 lanes (the same operations, so each element's e^x is exp8's).
WP_AVX512_DECODE inline __m512 exp16(__m512 x) {
    x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-87.3365447f)), _mm512_set1_ps(88.3762626f));
    const __m512 fx = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                           _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    x = _mm512_fnmadd_ps(fx, _mm512_set1_ps(0.693359375f), x);
    x = _mm512_fnmadd_ps(fx, _mm512_set1_ps(-2.12194440e-4f), x);
    __m512 y = _mm512_set1_ps(1.9875691500e-4f);
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(1.3981999507e-3f));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(8.3334519073e-3f));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(4.1665795894e-2f));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(1.6666665459e-1f));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(5.0000001201e-1f));
    y = _mm512_fmadd_ps(y, _mm512_mul_ps(x, x), _mm512_add_ps(x, _mm512_set1_ps(1.0f)));
    const __m512i e = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(fx), _mm512_set1_epi32(127)), 23);
    return _mm512_mul_ps(y, _mm512_castsi512_ps(e));
}

// softmax_row_avx2 on 16 lanes, for rows without a soft-cap (over a long context the exps are a
// large share of decode attention); the tail of fewer than 16 in masked lanes.
WP_AVX512_DECODE float softmax_row_avx512(float* x, int n, float scale, const float* bias) {
    const __m512 sc = _mm512_set1_ps(scale);
    __m512 mx = _mm512_set1_ps(kNegInf);
    for (int i = 0; i < n; i += 16) {
        const __mmask16 m = lanes16(n - i);
        __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), sc);
        if (bias) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, bias + i));
        _mm512_mask_storeu_ps(x + i, m, v);
        mx = _mm512_mask_max_ps(mx, m, mx, v);
    }
    const float mxs = _mm512_reduce_max_ps(mx);
    if (mxs == kNegInf) {  // every key masked
        std::fill(x, x + n, 0.0f);
        return kNegInf;
    }
    const __m512 mv = _mm512_set1_ps(mxs);
    __m512 sum = _mm512_setzero_ps();
    for (int i = 0; i < n; i += 16) {
        const __mmask16 m = lanes16(n - i);
        const __m512 v = _mm512_maskz_loadu_ps(m, x + i);
        // Masked keys (-inf) give exactly 0.
        const __m512 e = _mm512_maskz_mov_ps(_mm512_mask_cmp_ps_mask(m, v, _mm512_set1_ps(kNegInf), _CMP_NEQ_OQ), exp16(_mm512_sub_ps(v, mv)));
        _mm512_mask_storeu_ps(x + i, m, e);
        sum = _mm512_add_ps(sum, e);
    }
    const float s = _mm512_reduce_add_ps(sum);
    const __m512 inv = _mm512_set1_ps(1.0f / s);
    for (int i = 0; i < n; i += 16) {
        const __mmask16 m = lanes16(n - i);
        _mm512_mask_storeu_ps(x + i, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), inv));
    }
    return mxs + std::log(s);
}

// tanh8 on 16 lanes, the same operations (so each element's tanh is tanh8's).
WP_AVX512_DECODE inline __m512 tanh16(__m512 x) {
    const __m512i signbit = _mm512_set1_epi32(static_cast<int>(0x80000000u));
    const __m512i sign = _mm512_and_si512(_mm512_castps_si512(x), signbit);
    const __m512 a = _mm512_castsi512_ps(_mm512_andnot_si512(signbit, _mm512_castps_si512(x)));
    const __m512 s = _mm512_mul_ps(x, x);
    __m512 p = _mm512_set1_ps(-5.70498872745e-3f);
    p = _mm512_fmadd_ps(p, s, _mm512_set1_ps(2.06390887954e-2f));
    p = _mm512_fmadd_ps(p, s, _mm512_set1_ps(-5.37397155531e-2f));
    p = _mm512_fmadd_ps(p, s, _mm512_set1_ps(1.33314422036e-1f));
    p = _mm512_fmadd_ps(p, s, _mm512_set1_ps(-3.33332819422e-1f));
    const __m512 small = _mm512_fmadd_ps(_mm512_mul_ps(p, s), x, x);
    const __m512 e = exp16(_mm512_add_ps(a, a));
    const __m512 big = _mm512_castsi512_ps(_mm512_or_si512(
        _mm512_castps_si512(_mm512_sub_ps(_mm512_set1_ps(1.0f), _mm512_div_ps(_mm512_set1_ps(2.0f), _mm512_add_ps(e, _mm512_set1_ps(1.0f))))),
        sign));
    return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(a, _mm512_set1_ps(0.625f), _CMP_LT_OQ), big, small);
}

// softmax_row_avx2 with a soft-cap on 16 lanes, bit for bit: every element takes tanh8's and
// exp8's operations, the sum is added eight lanes at a time in the AVX2 loop's order, and the
// last n % 8 go through the same scalar code. (Gemma2's capped rows are about a tenth of its
// decode attention at long context.)
WP_AVX512_DECODE float softmax_row_capped_avx512(float* x, int n, float scale, float cap, const float* bias) {
    const __m512 sc = _mm512_set1_ps(scale), capv = _mm512_set1_ps(cap), inv_cap = _mm512_set1_ps(1.0f / cap);
    const int n8 = n / 8 * 8;
    __m512 mx = _mm512_set1_ps(kNegInf);
    for (int i = 0; i < n8; i += 16) {
        const __mmask16 m = i + 16 <= n8 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>(0xff);
        __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), sc);
        v = _mm512_mul_ps(capv, tanh16(_mm512_mul_ps(v, inv_cap)));
        if (bias) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, bias + i));
        _mm512_mask_storeu_ps(x + i, m, v);
        mx = _mm512_mask_max_ps(mx, m, mx, v);
    }
    float m = _mm512_reduce_max_ps(mx);
    for (int i = n8; i < n; ++i) {
        float v = x[i] * scale;
        v = cap * std::tanh(v / cap);
        if (bias) v += bias[i];
        x[i] = v;
        m = std::max(m, v);
    }
    const __m512 mv = _mm512_set1_ps(m), ninf = _mm512_set1_ps(kNegInf);
    __m256 sum = _mm256_setzero_ps();
    for (int i = 0; i < n8; i += 16) {
        const bool full = i + 16 <= n8;
        const __mmask16 k = full ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>(0xff);
        const __m512 v = _mm512_maskz_loadu_ps(k, x + i);
        const __m512 e = _mm512_maskz_mov_ps(_mm512_mask_cmp_ps_mask(k, v, ninf, _CMP_NEQ_OQ), exp16(_mm512_sub_ps(v, mv)));
        _mm512_mask_storeu_ps(x + i, k, e);
        sum = _mm256_add_ps(sum, _mm512_castps512_ps256(e));
        if (full) sum = _mm256_add_ps(sum, _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(e), 1)));
    }
    float s = hsum(sum);
    for (int i = n8; i < n; ++i) {
        const float e = std::isinf(x[i]) ? 0.0f : std::exp(x[i] - m);
        x[i] = e;
        s += e;
    }
    if (!(s > 0)) {  // every key masked
        std::fill(x, x + n, 0.0f);
        return kNegInf;
    }
    const __m512 inv = _mm512_set1_ps(1.0f / s);
    for (int i = 0; i < n8; i += 16) {
        const __mmask16 k = i + 16 <= n8 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>(0xff);
        _mm512_mask_storeu_ps(x + i, k, _mm512_mul_ps(_mm512_maskz_loadu_ps(k, x + i), inv));
    }
    for (int i = n8; i < n; ++i) x[i] /= s;
    return m + std::log(s);
}

#endif  // WP_X86

// The AVX-512 loops for a unit of nq query heads over rows of T: q8 always; f16 where three or
// more query heads share each key, which makes it compute-bound, not with fewer (memory-bound:
// 16 lanes gained nothing; docs/KERNELS.md); f32 never (kAvx512Rows).
template <typename T>
constexpr bool kAvx512Rows = std::is_same_v<T, Q8Rows> || std::is_same_v<T, const std::uint16_t*>;
template <typename T>
bool avx512_rows(int nq, int d, const KernelOptions& options) {
    return avx512_decode_kernels(options) && d % 16 == 0 && (std::is_same_v<T, Q8Rows> || nq >= 3);
}

template <typename T>
void scores_any(const float* q, int nq, int d, const T& keys, std::size_t ks, int n, float* out, std::size_t os,
                const KernelOptions& options) {
#ifdef WP_X86
    if constexpr (std::is_same_v<T, Q8Rows>)
        if (options.int8_queries && avx512_decode_kernels(options) && vnni_scores_fit(keys, d, ks)) {
            const bool amx = amx_int8_available(options);
            for (int h = 0; h < nq; h += kVnniMaxHeads) {  // groups whose queries do not round: f32
                const int take = std::min(nq - h, kVnniMaxHeads);
                const float* qg = q + static_cast<std::size_t>(h) * d;
                if (!scores_q8_vnni(qg, take, d, keys, ks, n, out + h * os, os, amx))
                    scores_dispatch512(qg, take, d, keys, ks, n, out + h * os, os);
            }
            return;
        }
    if constexpr (kAvx512Rows<T>)
        if (avx512_rows<T>(nq, d, options)) return scores_dispatch512(q, nq, d, keys, ks, n, out, os);
    if (use_avx2_kernels(options) && d % 8 == 0) return scores_dispatch(q, nq, d, keys, ks, n, out, os);
#endif
    scores_scalar(q, nq, d, keys, ks, n, out, os);
}

template <typename T>
void mix_any(const float* p, std::size_t ps, int nq, const T& values, std::size_t vs, int n, int d, float* out,
             const KernelOptions& options) {
#ifdef WP_X86
    if constexpr (kAvx512Rows<T>)
        if (avx512_rows<T>(nq, d, options)) return mix_dispatch512(p, ps, nq, values, vs, n, d, out);
    if (use_avx2_kernels(options) && d % 8 == 0) return mix_dispatch(p, ps, nq, values, vs, n, d, out);
#endif
    mix_scalar(p, ps, nq, values, vs, n, d, out);
}

}  // namespace

#ifdef WP_X86
#define WP_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma")))

// The first min(16, max(0, n)) of 16 lanes.

// out[i * os + x] (+)= sum_t a[i * as + t] * b(t, x) for i < nq (rows of a up to 8 are read) and
// x < nx, with b(t, x) = b[(x / 32) * bblock + t * bs + x % 32]: eight rows x 32 lanes of x in 16
// accumulators while t runs, each step one pair of loads of b and eight broadcasts of a (from
// memory). t runs in chunks of kChunk, each chunk over every 32-lane slice before the next, so a
// chunk of b is read from memory once and from L2 for the other slices.
// Scores are q times the keys in 32-key blocks (t: the head dimension, x: keys; each block is
// contiguous, one stream for the prefetcher); the mix is p times the values (t: keys, x: the head
// dimension).
WP_AVX512 void rows8_times(const float* a, std::size_t as, int nq, const float* b, std::size_t bs, std::size_t bblock,
                           int nt, int nx, float* out, std::size_t os, bool accumulate) {
    constexpr int kChunk = 128;
    for (int t0 = 0; t0 == 0 || t0 < nt; t0 += kChunk) {
        const int t1 = std::min(nt, t0 + kChunk);
        const bool add = accumulate || t0 > 0;
        for (int x0 = 0; x0 < nx; x0 += 32) {
            const __mmask16 m0 = lanes16(nx - x0), m1 = lanes16(nx - x0 - 16);
            const float* bx = b + static_cast<std::size_t>(x0 / 32) * bblock;
            // Every loop over the eight rows is unrolled, the stores' too: an accumulator indexed
            // by a variable lives on the stack, and the FMAs then read and write memory (2.5-3x
            // slower, measured).
            __m512 acc[8][2];
#pragma GCC unroll 8
            for (int i = 0; i < 8; ++i) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
            for (int t = t0; t < t1; ++t) {
                const float* bt = bx + static_cast<std::size_t>(t) * bs;
                const __m512 b0 = _mm512_maskz_loadu_ps(m0, bt), b1 = _mm512_maskz_loadu_ps(m1, bt + 16);
#pragma GCC unroll 8
                for (int i = 0; i < 8; ++i) {
                    const __m512 w = _mm512_set1_ps(a[i * as + t]);
                    acc[i][0] = _mm512_fmadd_ps(w, b0, acc[i][0]);
                    acc[i][1] = _mm512_fmadd_ps(w, b1, acc[i][1]);
                }
            }
#pragma GCC unroll 8
            for (int i = 0; i < 8; ++i) {
                if (i >= nq) break;
                float* o = out + i * os + x0;
                if (add) {
                    acc[i][0] = _mm512_add_ps(acc[i][0], _mm512_maskz_loadu_ps(m0, o));
                    acc[i][1] = _mm512_add_ps(acc[i][1], _mm512_maskz_loadu_ps(m1, o + 16));
                }
                _mm512_mask_storeu_ps(o, m0, acc[i][0]);
                _mm512_mask_storeu_ps(o + 16, m1, acc[i][1]);
            }
        }
    }
}

void prompt_scores_avx512(const float* q, int nq, int d, const float* kb, int n, float* out, std::size_t os) {
    rows8_times(q, d, nq, kb, kPromptKeyBlock, static_cast<std::size_t>(d) * kPromptKeyBlock, d, n, out, os, false);
}

void prompt_mix_avx512(const float* p, std::size_t ps, int nq, const float* v, std::size_t vs, int n, int d, float* out,
                       bool accumulate) {
    rows8_times(p, ps, nq, v, vs, 32, n, d, out, d, accumulate);
}
#else
void prompt_scores_avx512(const float*, int, int, const float*, int, float*, std::size_t) {}
void prompt_mix_avx512(const float*, std::size_t, int, const float*, std::size_t, int, int, float*, bool) {}
#endif

void attention_scores(const float* q, int nq, int d, const std::uint16_t* keys, std::size_t ks, int n, float* out,
                      std::size_t os, const KernelOptions& options) {
    scores_any(q, nq, d, keys, ks, n, out, os, options);
}
void attention_scores(const float* q, int nq, int d, const float* keys, std::size_t ks, int n, float* out,
                      std::size_t os, const KernelOptions& options) {
    scores_any(q, nq, d, keys, ks, n, out, os, options);
}
void attention_mix(const float* p, std::size_t ps, int nq, const std::uint16_t* values, std::size_t vs, int n, int d,
                   float* out, const KernelOptions& options) {
    mix_any(p, ps, nq, values, vs, n, d, out, options);
}
void attention_mix(const float* p, std::size_t ps, int nq, const float* values, std::size_t vs, int n, int d,
                   float* out, const KernelOptions& options) {
    mix_any(p, ps, nq, values, vs, n, d, out, options);
}
// The vector loops find a block's scale by a shift: other block lengths take the scalar loops.
void attention_scores(const float* q, int nq, int d, const Q8Rows& keys, std::size_t ks, int n, float* out,
                      std::size_t os, const KernelOptions& options) {
    if (!std::has_single_bit(static_cast<unsigned>(keys.block))) return scores_scalar(q, nq, d, keys, ks, n, out, os);
    scores_any(q, nq, d, keys, ks, n, out, os, options);
}
void attention_mix(const float* p, std::size_t ps, int nq, const Q8Rows& values, std::size_t vs, int n, int d,
                   float* out, const KernelOptions& options) {
    if (!std::has_single_bit(static_cast<unsigned>(values.block))) return mix_scalar(p, ps, nq, values, vs, n, d, out);
    if (options.int16_probabilities && avx512_decode_kernels(options)) {
        if (nq >= kInt16MixMinHeads ? int16_mix_fits(values, d, vs) && mix_q8_int16(p, ps, nq, values, vs, n, d, out)
                                    : cpu_has_avx512_vbmi() && bytes_mix_fits(values, d, vs) &&
                                          mix_q8_bytes(p, ps, nq, values, vs, n, d, out))
            return;
    }
    mix_any(p, ps, nq, values, vs, n, d, out, options);
}

float softmax_row(float* x, int n, float scale, float cap, const float* bias, const KernelOptions& options) {
#ifdef WP_X86
    if (cap <= 0 && avx512_decode_kernels(options)) return softmax_row_avx512(x, n, scale, bias);
    if (cap > 0 && avx512_decode_kernels(options)) return softmax_row_capped_avx512(x, n, scale, cap, bias);
    if (use_avx2_kernels(options)) return softmax_row_avx2(x, n, scale, cap, bias);
#endif
    float m = kNegInf;
    for (int i = 0; i < n; ++i) {
        float v = x[i] * scale;
        if (cap > 0) v = cap * std::tanh(v / cap);
        if (bias) v += bias[i];
        x[i] = v;
        m = std::max(m, v);
    }
    double s = 0;
    for (int i = 0; i < n; ++i) {
        x[i] = std::isinf(x[i]) ? 0.0f : std::exp(x[i] - m);
        s += x[i];
    }
    if (!(s > 0)) {  // every key masked
        std::fill(x, x + n, 0.0f);
        return kNegInf;
    }
    const float inv = static_cast<float>(1.0 / s);
    for (int i = 0; i < n; ++i) x[i] *= inv;
    return m + static_cast<float>(std::log(s));
}

void vec_tanh(const float* x, float* y, std::size_t n, const KernelOptions& options) {
    std::size_t i = 0;
#ifdef WP_X86
    if (use_avx2_kernels(options)) i = tanh_avx2(x, y, n);
#endif
    for (; i < n; ++i) y[i] = std::tanh(x[i]);
}

void vec_gelu_tanh_mul(const float* gate, const float* up, float* out, std::size_t n, const KernelOptions& options) {
    std::size_t i = 0;
#ifdef WP_X86
    if (use_avx2_kernels(options)) i = gelu_avx2(gate, up, out, n);
#endif
    constexpr float k = 0.7978845608028654f;  // sqrt(2/pi)
    for (; i < n; ++i) {
        const float g = gate[i];
        out[i] = 0.5f * g * (1.0f + std::tanh(k * (g + 0.044715f * g * g * g))) * up[i];
    }
}

#ifdef WP_X86
// Where the largest of x[0..n) first lies, to a chunk: each chunk of 256 floats' largest value by
// vmaxps (which returns its second operand when either is NaN, so NaNs are passed over), and the
// first chunk that holds the largest so far. One pass over the logits, the caller scans a chunk.
static WP_AVX2 float max_chunk_avx2(const float* x, std::size_t n, std::size_t& chunk, std::size_t& done) {
    constexpr std::size_t kChunk = 256;
    float best = -std::numeric_limits<float>::infinity();
    std::size_t i = 0;
    for (; i + kChunk <= n; i += kChunk) {
        __m256 m0 = _mm256_loadu_ps(x + i), m1 = _mm256_loadu_ps(x + i + 8), m2 = _mm256_loadu_ps(x + i + 16),
               m3 = _mm256_loadu_ps(x + i + 24);
        for (std::size_t j = i + 32; j < i + kChunk; j += 32) {
            m0 = _mm256_max_ps(_mm256_loadu_ps(x + j), m0);
            m1 = _mm256_max_ps(_mm256_loadu_ps(x + j + 8), m1);
            m2 = _mm256_max_ps(_mm256_loadu_ps(x + j + 16), m2);
            m3 = _mm256_max_ps(_mm256_loadu_ps(x + j + 24), m3);
        }
        __m256 m = _mm256_max_ps(_mm256_max_ps(m0, m1), _mm256_max_ps(m2, m3));
        m = _mm256_max_ps(m, _mm256_permute2f128_ps(m, m, 1));
        m = _mm256_max_ps(m, _mm256_shuffle_ps(m, m, 0x4e));
        m = _mm256_max_ps(m, _mm256_shuffle_ps(m, m, 0xb1));
        const float c = _mm256_cvtss_f32(m);
        if (c > best) {
            best = c;
            chunk = i;
        }
    }
    done = i;
    return best;
}
#endif

std::size_t vec_argmax(const float* x, std::size_t n, const KernelOptions& options) {
    if (std::isnan(x[0])) return 0;
    std::size_t i = 0, at = 0;
    float best = x[0];
#ifdef WP_X86
    if (use_avx2_kernels(options)) {
        std::size_t chunk = 0;
        const float m = max_chunk_avx2(x, n, chunk, i);
        if (m > best) {
            best = m;
            for (at = chunk; x[at] != best; ++at) {}
        }
    }
#endif
    for (; i < n; ++i)
        if (x[i] > best) best = x[i], at = i;
    return at;
}

void vec_silu_mul(const float* gate, const float* up, float* out, std::size_t n, const KernelOptions& options) {
    std::size_t i = 0;
#ifdef WP_X86
    if (use_avx2_kernels(options)) i = silu_avx2(gate, up, out, n);
#endif
    for (; i < n; ++i) {
        const float g = gate[i];
        out[i] = g / (1.0f + std::exp(-g)) * up[i];
    }
}

void vec_softcap(float* x, std::size_t n, float cap, const KernelOptions& options) {
    std::size_t i = 0;
#ifdef WP_X86
    if (use_avx2_kernels(options)) i = softcap_avx2(x, n, cap);
#endif
    const float inv = 1.0f / cap;
    for (; i < n; ++i) x[i] = cap * std::tanh(x[i] * inv);
}

}  // namespace wp
