#include "kernels/attention_mix_q8.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>

#if defined(__x86_64__) || defined(_M_X64)
#define WP_X86 1
#include <immintrin.h>
#endif

namespace wp {

bool int16_mix_fits(const Q8Rows& values, int d, std::size_t vs) {
    return values.block == 32 && d > 0 && d % 32 == 0 && d <= kInt16MixMaxDim && vs % 32 == 0 &&
           vs / 32 * 16 <= static_cast<std::size_t>(std::numeric_limits<std::int32_t>::max());
}

#ifdef WP_X86
namespace {

#define WP_AVX512_VNNI_MIX __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma")))

constexpr int kMaxHeads = 8;

// One chunk's weights for block b of every head: w[h][j] = round(ph[h][j] * st[j]) where ph is
// p / pm and st the block's scales times 32767 / sm; zero past the chunk's m keys.
template <int NQ>
WP_AVX512_VNNI_MIX void block_weights(const float (&ph)[NQ][kInt16MixKeys], const float* st, int m,
                                      std::int16_t (&w)[NQ][kInt16MixKeys]) {
    for (int h = 0; h < NQ; ++h)
        for (int i = 0; i < m; i += 16) {
            const __m512i r = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_load_ps(ph[h] + i), _mm512_load_ps(st + i)));
            _mm256_store_si256(reinterpret_cast<__m256i*>(w[h] + i), _mm512_cvtepi32_epi16(r));
        }
}

// acc + the pairwise products of a and b's int16 lanes (vpdpwssd). Written out because GCC 12
// copies every loop-carried accumulator of the intrinsic each iteration (twelve moves per pair).
WP_AVX512_VNNI_MIX inline __m512i dpwssd(__m512i acc, __m512i a, __m512i b) {
    asm("vpdpwssd %2, %1, %0" : "+v"(acc) : "v"(a), "v"(b));
    return acc;
}

// Keys t and t + 1 (rows r0, r1) into every head's sums: their int8 interleaved and widened to
// int16 (lanes 0-7 of lo hold elements 0-7, lanes 8-15 elements 16-23; hi elements 8-15 and
// 24-31), each lane taking both keys' weights in one vpdpwssd.
template <int NQ>
WP_AVX512_VNNI_MIX inline void add_pair(const std::int8_t* r0, const std::int8_t* r1,
                                        const std::int16_t (&w)[NQ][kInt16MixKeys], int t, __m512i (&lo)[NQ],
                                        __m512i (&hi)[NQ]) {
    const __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(r0));
    const __m256i c = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(r1));
    const __m512i vl = _mm512_cvtepi8_epi16(_mm256_unpacklo_epi8(a, c));
    const __m512i vh = _mm512_cvtepi8_epi16(_mm256_unpackhi_epi8(a, c));
    for (int h = 0; h < NQ; ++h) {
        std::int32_t two;
        std::memcpy(&two, w[h] + t, sizeof two);
        const __m512i wv = _mm512_set1_epi32(two);
        lo[h] = dpwssd(lo[h], vl, wv);
        hi[h] = dpwssd(hi[h], vh, wv);
    }
}

template <int NQ>
WP_AVX512_VNNI_MIX bool mix_int16(const float* p, std::size_t ps, const Q8Rows& values, std::size_t vs, int n, int d,
                                  float* out) {
    const int nb = d / 32;
    std::fill(out, out + static_cast<std::size_t>(NQ) * d, 0.0f);
    alignas(64) float ph[NQ][kInt16MixKeys];
    alignas(64) float st[kInt16MixKeys];
    alignas(64) std::int16_t w[NQ][kInt16MixKeys];
    float pm[NQ];
    const __m512 zero = _mm512_setzero_ps();
    const __m512i rows = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                            _mm512_set1_epi32(static_cast<int>(vs / 32)));
    for (int c0 = 0; c0 < n; c0 += kInt16MixKeys) {
        const int m = std::min(kInt16MixKeys, n - c0);
        // Each head's probabilities over the chunk's largest (magnitude), zero past m.
        for (int h = 0; h < NQ; ++h) {
            const float* src = p + h * ps + c0;
            __m512 mx = zero;
            __mmask16 bad = 0;
            for (int i = 0; i < m; i += 16) {
                const __mmask16 k = lanes16(m - i);
                const __m512 x = _mm512_maskz_loadu_ps(k, src + i);
                bad |= _mm512_mask_cmp_ps_mask(k, _mm512_sub_ps(x, x), zero, _CMP_NEQ_UQ);  // NaN, inf
                mx = _mm512_max_ps(mx, _mm512_abs_ps(x));
            }
            if (bad) return false;
            pm[h] = _mm512_reduce_max_ps(mx);
            const __m512 inv = _mm512_set1_ps(pm[h] > 0.0f ? 1.0f / pm[h] : 0.0f);
            for (int i = 0; i < m; i += 16)
                _mm512_store_ps(ph[h] + i, _mm512_mul_ps(_mm512_maskz_loadu_ps(lanes16(m - i), src + i), inv));
        }
        for (int b = 0; b < nb; ++b) {
            // The block's scales (row j's at j * vs / 32, gathered 16 at a time) over the chunk's
            // largest, times 32767.
            const float* base = values.scales + ((static_cast<std::size_t>(c0) * vs + 32 * b) >> 5);
            __m512 mx = zero;
            for (int i = 0; i < m; i += 16) {
                const __m512 g = _mm512_mask_i32gather_ps(zero, lanes16(m - i), rows, base + i * (vs / 32), 4);
                _mm512_store_ps(st + i, g);
                mx = _mm512_max_ps(mx, _mm512_abs_ps(g));
            }
            const float sm = _mm512_reduce_max_ps(mx);
            const __m512 ks = _mm512_set1_ps(sm > 0.0f ? 32767.0f / sm : 0.0f);
            for (int i = 0; i < m; i += 16) _mm512_store_ps(st + i, _mm512_mul_ps(_mm512_load_ps(st + i), ks));
            block_weights<NQ>(ph, st, m, w);
            // The keys in pairs; an odd last key pairs with itself at weight 0.
            __m512i lo[NQ], hi[NQ];
            for (int h = 0; h < NQ; ++h) lo[h] = hi[h] = _mm512_setzero_si512();
            const std::int8_t* col = values.q + static_cast<std::size_t>(c0) * vs + 32 * b;
            // The first block's pass fetches whole rows 32 keys ahead (the later passes find the
            // chunk in cache).
            int t = 0;
            if (b == 0)
                for (; t + 1 < m; t += 2) {
                    const std::int8_t* r0 = col + static_cast<std::size_t>(t) * vs;
                    if (c0 + t + 33 < n)
                        for (int l = 0; l < d; l += 64) {
                            _mm_prefetch(reinterpret_cast<const char*>(r0 + 32 * vs + l), _MM_HINT_T0);
                            _mm_prefetch(reinterpret_cast<const char*>(r0 + 33 * vs + l), _MM_HINT_T0);
                        }
                    add_pair<NQ>(r0, r0 + vs, w, t, lo, hi);
                }
            for (; t + 1 < m; t += 2) {
                const std::int8_t* r0 = col + static_cast<std::size_t>(t) * vs;
                add_pair<NQ>(r0, r0 + vs, w, t, lo, hi);
            }
            if (t < m) add_pair<NQ>(col + static_cast<std::size_t>(t) * vs, col + static_cast<std::size_t>(t) * vs, w, t, lo, hi);
            for (int h = 0; h < NQ; ++h) {
                const __m512 scale = _mm512_set1_ps(pm[h] * sm / 32767.0f);
                const __m512 fl = _mm512_cvtepi32_ps(lo[h]), fh = _mm512_cvtepi32_ps(hi[h]);
                float* o = out + static_cast<std::size_t>(h) * d + 32 * b;
                _mm512_storeu_ps(o, _mm512_fmadd_ps(_mm512_shuffle_f32x4(fl, fh, 0x44), scale, _mm512_loadu_ps(o)));
                _mm512_storeu_ps(o + 16, _mm512_fmadd_ps(_mm512_shuffle_f32x4(fl, fh, 0xee), scale, _mm512_loadu_ps(o + 16)));
            }
        }
    }
    return true;
}

}  // namespace

bool mix_q8_int16(const float* p, std::size_t ps, int nq, const Q8Rows& values, std::size_t vs, int n, int d,
                  float* out) {
    // More than eight heads go in even groups (nine: five and four, not eight and one), so no
    // group falls below the heads the kernel pays off from (kInt16MixMinHeads).
    const int groups = (nq + kMaxHeads - 1) / kMaxHeads, per = (nq + groups - 1) / std::max(groups, 1);
    while (nq > 0) {
        const int take = std::min(nq, per);
        bool ok = false;
        switch (take) {
            case 1: ok = mix_int16<1>(p, ps, values, vs, n, d, out); break;
            case 2: ok = mix_int16<2>(p, ps, values, vs, n, d, out); break;
            case 3: ok = mix_int16<3>(p, ps, values, vs, n, d, out); break;
            case 4: ok = mix_int16<4>(p, ps, values, vs, n, d, out); break;
            case 5: ok = mix_int16<5>(p, ps, values, vs, n, d, out); break;
            case 6: ok = mix_int16<6>(p, ps, values, vs, n, d, out); break;
            case 7: ok = mix_int16<7>(p, ps, values, vs, n, d, out); break;
            default: ok = mix_int16<8>(p, ps, values, vs, n, d, out); break;
        }
        if (!ok) return false;
        p += take * ps;
        out += static_cast<std::size_t>(take) * d;
        nq -= take;
    }
    return true;
}
#else
bool mix_q8_int16(const float*, std::size_t, int, const Q8Rows&, std::size_t, int, int, float*) { return false; }
#endif

}  // namespace wp
