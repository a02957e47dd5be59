#include "kernels/attention_kernels.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

#include "kernels/attention_mix_q8.h"
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

// e^x (Cephes' expf: range reduction by ln 2 in two parts, a degree-6 polynomial; about 1 ulp).
WP_AVX2 inline __m256 exp8(__m256 x) {
    x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.3365447f)), _mm256_set1_ps(88.3762626f));
    const __m256 fx = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                      _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(0.693359375f), x);
    x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(-2.12194440e-4f), x);
    __m256 y = _mm256_set1_ps(1.9875691500e-4f);
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.3981999507e-3f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(8.3334519073e-3f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(4.1665795894e-2f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.6666665459e-1f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(5.0000001201e-1f));
    y = _mm256_fmadd_ps(y, _mm256_mul_ps(x, x), _mm256_add_ps(x, _mm256_set1_ps(1.0f)));
    const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(fx), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(y, _mm256_castsi256_ps(e));
}

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

// v[0..15]'s lane sums in one vector, lane i holding v[i]'s: four rounds of pairwise shuffles
// and adds, 45 instructions where sixteen horizontal reductions take about 130. The rounds leave
// input k + 4m's sum in lane 4k + m, so the inputs are taken in that (self-inverse) order.
WP_AVX512_DECODE inline __m512 sum16(const __m512* v) {
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
        _mm512_store_ps(sums, sum16(acc));
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

// Scores against a q8 cache on integer dot products (int8_queries; blocks of 32, head_dim a
// multiple of 64): each query head rounded to int8 blocks (d = amax / 127, as queries_as_scored
// rounds them, so a query already rounded keeps its integers), the keys made unsigned (k + 128,
// which vpdpbusd takes) and every lane's sum started at -128 x its four query bytes, which leaves
// exactly the signed sum. A 64-byte chunk's lanes 0-7 hold one block, 8-15 the next; each lane is
// scaled by its block's key scale x query scale into the float sums reduced by sum16.
#define WP_AVX512_VNNI __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")))

constexpr int kVnniMaxHeads = 8, kVnniMaxDim = 512;

// Up to eight query heads as the kernel reads them: per head, d int8; per 64-byte chunk, 16
// lanes' starting sums and 16 lanes' query scales.
struct Q8Queries {
    alignas(64) std::int8_t q[kVnniMaxHeads * kVnniMaxDim];
    alignas(64) std::int32_t start[kVnniMaxHeads * kVnniMaxDim / 4];
    alignas(64) float scale[kVnniMaxHeads * kVnniMaxDim / 4];
};

// The nq heads (d each) as Q8Queries, rounded as matrix inputs are (quantize_input_blocks). False
// when a block holds a NaN or an infinity, or is too small for its scale's inverse: those heads
// are scored on the f32 loops instead.
bool round_q8_queries(const float* q, int nq, int d, Q8Queries& out) {
    const int n = nq * d, blocks = n / 32;
    for (int b = 0; b < blocks; ++b) {
        float amax = 0.0f;
        for (int i = 32 * b; i < 32 * b + 32; ++i) {
            const float a = std::fabs(q[i]);
            if (!(a <= std::numeric_limits<float>::max())) return false;  // NaN, inf
            amax = std::max(amax, a);
        }
        const float scale = amax / 127.0f;  // as quantize_input_blocks takes it
        if (amax > 0.0f && !(scale > 0.0f && std::isfinite(1.0f / scale))) return false;
    }
    float scales[kVnniMaxHeads * kVnniMaxDim / 32];
    quantize_input_blocks(q, n, out.q, scales, KernelOptions{});
    // Heads are contiguous, so block b is lanes 8b .. 8b + 7 of the chunks laid end to end.
    for (int b = 0; b < blocks; ++b)
        for (int l = 0; l < 8; ++l) {
            const std::int8_t* o = out.q + 32 * b + 4 * l;
            out.start[8 * b + l] = -128 * (o[0] + o[1] + o[2] + o[3]);
            out.scale[8 * b + l] = scales[b];
        }
    return true;
}

// Key chunk at element e: 64 bytes made unsigned, and its two blocks' scales spread over the lanes.
WP_AVX512_VNNI inline void q8_key_chunk(const Q8Rows& keys, std::size_t e, __m512i& kv, __m512& kd) {
    const __m512i pair = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
    kv = _mm512_xor_si512(_mm512_loadu_si512(keys.q + e), _mm512_set1_epi8(static_cast<char>(0x80)));
    const __m128 two = _mm_castsi128_ps(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(keys.scales + (e >> 5))));
    kd = _mm512_permutexvar_ps(pair, _mm512_castps128_ps512(two));
}

// acc + head h's chunk c against a key chunk, scaled.
WP_AVX512_VNNI inline __m512 q8_chunk_dot(const Q8Queries& qq, int d, int h, int c, __m512i kv, __m512 kd, __m512 acc) {
    const int lanes = d / 4;
    const __m512i s = _mm512_dpbusd_epi32(_mm512_load_si512(qq.start + h * lanes + 16 * c), kv,
                                          _mm512_load_si512(qq.q + h * d + 64 * c));
    return _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_mul_ps(kd, _mm512_load_ps(qq.scale + h * lanes + 16 * c)), acc);
}

template <int NQ, int NK>
WP_AVX512_VNNI void scores_vnni(const Q8Queries& qq, int d, const Q8Rows& keys, std::size_t ks, int n, float* out,
                                std::size_t os) {
    constexpr int PF = 16;
    int j = 0;
    for (; j + NK <= n; j += NK) {
        for (int k = j + PF; k < std::min(n, j + PF + NK); ++k)
            for (int b = 0; b < d; b += 64) _mm_prefetch(reinterpret_cast<const char*>(keys.q + k * ks + b), _MM_HINT_T1);
        static_assert(NQ * NK <= 16);
        __m512 acc[16];
        for (int a = 0; a < 16; ++a) acc[a] = _mm512_setzero_ps();
        for (int c = 0; c < d / 64; ++c) {
            __m512i kv[NK];
            __m512 kd[NK];
            for (int k = 0; k < NK; ++k) q8_key_chunk(keys, (j + k) * ks + 64 * c, kv[k], kd[k]);
            for (int h = 0; h < NQ; ++h)
                for (int k = 0; k < NK; ++k) acc[h * NK + k] = q8_chunk_dot(qq, d, h, c, kv[k], kd[k], acc[h * NK + k]);
        }
        alignas(64) float sums[16];
        _mm512_store_ps(sums, sum16(acc));
        for (int h = 0; h < NQ; ++h) std::memcpy(out + h * os + j, sums + h * NK, sizeof(float) * NK);
    }
    for (; j < n; ++j) {
        __m512 acc[NQ];
        for (int h = 0; h < NQ; ++h) acc[h] = _mm512_setzero_ps();
        for (int c = 0; c < d / 64; ++c) {
            __m512i kv;
            __m512 kd;
            q8_key_chunk(keys, j * ks + 64 * c, kv, kd);
            for (int h = 0; h < NQ; ++h) acc[h] = q8_chunk_dot(qq, d, h, c, kv, kd, acc[h]);
        }
        for (int h = 0; h < NQ; ++h) out[h * os + j] = _mm512_reduce_add_ps(acc[h]);
    }
}

// The sixteen rows of r transposed: r[k]'s dword c becomes lane k of r[c]. Unpacking dwords, then
// qwords, within 128-bit lanes, then a 4 x 4 transpose of the lanes: 64 shuffles.
[[gnu::always_inline]] WP_AVX512_VNNI inline void transpose16_epi32(__m512i* r) {
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

// Block b's scale of sixteen keys (sc: the first key's scales, `stride` apart) in lanes 0..15:
// permutes of the keys' scales loaded whole where the stride is 2, 4 or 8 (head_dim 64, 128 or
// 256), a gather (several times slower on Zen 5) otherwise.
[[gnu::always_inline]] WP_AVX512_VNNI inline __m512 key_scales16(const float* sc, int stride, int b, __m512i key_index) {
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

// Scores of sixteen keys at a time, one key per lane (n a multiple of 16): each 64-byte chunk of
// the sixteen keys transposed in registers, so one vpdpbusd takes a query dword (broadcast)
// against that dword of every key, and a block's sums are scaled once per head for all sixteen
// keys. No horizontal sums: per key, query head and chunk about 2.5 instructions where the rows'
// kernel (scores_vnni) takes about 5.5, and the transpose's 4 per key and chunk are shared by the
// heads.
template <int NQ>
WP_AVX512_VNNI void scores_vnni_lanes(const Q8Queries& qq, int d, const Q8Rows& keys, std::size_t ks, int n, float* out,
                                      std::size_t os) {
    constexpr int PF = 32;  // keys ahead
    const int lanes = d / 4, blocks = d / 32;
    std::int32_t start[NQ][kVnniMaxDim / 32];  // per head and block
    float qscale[NQ][kVnniMaxDim / 32];
    for (int h = 0; h < NQ; ++h)
        for (int b = 0; b < blocks; ++b) {
            std::int32_t sum = 0;
            for (int l = 0; l < 8; ++l) sum += qq.start[h * lanes + 8 * b + l];
            start[h][b] = sum;
            qscale[h][b] = qq.scale[h * lanes + 8 * b];
        }
    const std::int32_t* qd = reinterpret_cast<const std::int32_t*>(qq.q);
    const int scale_stride = static_cast<int>(ks >> 5);  // a key's scales apart
    const __m512i key_index = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                                 _mm512_set1_epi32(scale_stride));
    for (int j = 0; j + 16 <= n; j += 16) {
        for (int k = j + PF; k < std::min(n, j + PF + 16); ++k)
            for (int b = 0; b < d; b += 64) _mm_prefetch(reinterpret_cast<const char*>(keys.q + k * ks + b), _MM_HINT_T1);
        __m512 acc[NQ];
        for (int h = 0; h < NQ; ++h) acc[h] = _mm512_setzero_ps();
        const float* scales = keys.scales + ((j * ks) >> 5);
        for (int c = 0; c < d / 64; ++c) {
            // The chunk's two blocks' key scales first: their latency passes in the transpose.
            const __m512 kd[2] = {key_scales16(scales, scale_stride, 2 * c, key_index),
                                  key_scales16(scales, scale_stride, 2 * c + 1, key_index)};
            __m512i r[16];
            const std::int8_t* row = keys.q + j * ks + 64 * c;
            for (int k = 0; k < 16; ++k) {
                r[k] = _mm512_xor_si512(_mm512_loadu_si512(row), _mm512_set1_epi8(static_cast<char>(0x80)));
                row += ks;
            }
            transpose16_epi32(r);
#pragma GCC unroll 2
            for (int b = 0; b < 2; ++b) {
                const int blk = 2 * c + b;
#pragma GCC unroll 8
                for (int h = 0; h < NQ; ++h) {
                    // The sums start at -128 x the block's query bytes, as in scores_vnni: exact.
                    const std::int32_t* qh = qd + h * lanes + 16 * c + 8 * b;
                    __m512i s = _mm512_set1_epi32(start[h][blk]);
#pragma GCC unroll 8
                    for (int i = 0; i < 8; ++i) s = _mm512_dpbusd_epi32(s, r[8 * b + i], _mm512_set1_epi32(qh[i]));
                    acc[h] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_mul_ps(kd[b], _mm512_set1_ps(qscale[h][blk])), acc[h]);
                }
            }
        }
        for (int h = 0; h < NQ; ++h) _mm512_storeu_ps(out + h * os + j, acc[h]);
    }
}

// The keys in whole sixteens by scores_vnni_lanes from kLanesMinHeads query heads on, the rest
// (and every key with fewer heads) by scores_vnni.
constexpr int kLanesMinHeads = 2;

template <int NQ, int NK>
WP_AVX512_VNNI void scores_vnni_keys(const Q8Queries& qq, int d, const Q8Rows& keys, std::size_t ks, int n, float* out,
                                     std::size_t os) {
    int done = 0;
    if constexpr (NQ >= kLanesMinHeads) {
        done = n / 16 * 16;
        if (done > 0) scores_vnni_lanes<NQ>(qq, d, keys, ks, done, out, os);
    }
    if (done < n) {
        const std::size_t at = static_cast<std::size_t>(done) * ks;
        scores_vnni<NQ, NK>(qq, d, Q8Rows(keys.q + at, keys.scales + (at >> keys.shift), keys.block), ks, n - done,
                            out + done, os);
    }
}

bool vnni_scores_fit(const Q8Rows& keys, int d, std::size_t ks) {
    return keys.block == 32 && d % 64 == 0 && d <= kVnniMaxDim && ks % 64 == 0;
}

WP_AVX512_VNNI void scores_dispatch_vnni(const float* q, int nq, int d, const Q8Rows& keys, std::size_t ks, int n,
                                         float* out, std::size_t os) {
    Q8Queries qq;
    while (nq > 0) {
        const int take = std::min(nq, kVnniMaxHeads);
        if (!round_q8_queries(q, take, d, qq)) {
            scores_dispatch512(q, take, d, keys, ks, n, out, os);
        } else switch (take) {  // up to 16 sums, reduced together by sum16
            case 1: scores_vnni_keys<1, 16>(qq, d, keys, ks, n, out, os); break;
            case 2: scores_vnni_keys<2, 8>(qq, d, keys, ks, n, out, os); break;
            case 3: scores_vnni_keys<3, 5>(qq, d, keys, ks, n, out, os); break;
            case 4: scores_vnni_keys<4, 4>(qq, d, keys, ks, n, out, os); break;
            case 5: scores_vnni_keys<5, 3>(qq, d, keys, ks, n, out, os); break;
            case 6: scores_vnni_keys<6, 2>(qq, d, keys, ks, n, out, os); break;
            case 7: scores_vnni_keys<7, 2>(qq, d, keys, ks, n, out, os); break;
            default: scores_vnni_keys<8, 2>(qq, d, keys, ks, n, out, os); break;
        }
        q += static_cast<std::size_t>(take) * d;
        out += take * os;
        nq -= take;
    }
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
        if (options.int8_queries && avx512_decode_kernels(options) && vnni_scores_fit(keys, d, ks))
            return scores_dispatch_vnni(q, nq, d, keys, ks, n, out, os);
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
    if (options.int16_probabilities && nq >= kInt16MixMinHeads && avx512_decode_kernels(options) && int16_mix_fits(values, d, vs) &&
        mix_q8_int16(p, ps, nq, values, vs, n, d, out))
        return;
    mix_any(p, ps, nq, values, vs, n, d, out, options);
}

float softmax_row(float* x, int n, float scale, float cap, const float* bias, const KernelOptions& options) {
#ifdef WP_X86
    if (cap <= 0 && avx512_decode_kernels(options)) return softmax_row_avx512(x, n, scale, bias);
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
