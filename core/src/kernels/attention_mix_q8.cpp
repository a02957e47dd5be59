#include "kernels/attention_mix_q8.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>

#include "kernels/avx512_common.h"

#if defined(__x86_64__) || defined(_M_X64)
#define WP_X86 1
#include <immintrin.h>
#endif

namespace wp {

bool bytes_mix_fits(const Q8Rows& values, int d, std::size_t vs) {
    return values.block == 32 && (d == 128 || d == 256) && vs % 32 == 0;
}

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

// A chunk's m probabilities (src) over their largest magnitude into ph, zero from m up to `fill`
// (a multiple of 16 from m on); pm: that largest. False when one is NaN or infinite, or negative
// where the weights are unsigned.
WP_AVX512_VNNI_MIX inline bool chunk_probabilities(const float* src, int m, int fill, bool unsigned_weights, float* ph,
                                                   float& pm) {
    const __m512 zero = _mm512_setzero_ps();
    __m512 mx = zero;
    __mmask16 bad = 0;
    for (int i = 0; i < m; i += 16) {
        const __mmask16 k = lanes16(m - i);
        const __m512 x = _mm512_maskz_loadu_ps(k, src + i);
        bad |= _mm512_mask_cmp_ps_mask(k, _mm512_sub_ps(x, x), zero, _CMP_NEQ_UQ);  // NaN, inf
        if (unsigned_weights) bad |= _mm512_mask_cmp_ps_mask(k, x, zero, _CMP_LT_OQ);
        mx = _mm512_max_ps(mx, _mm512_abs_ps(x));
    }
    if (bad) return false;
    pm = _mm512_reduce_max_ps(mx);
    const __m512 inv = _mm512_set1_ps(pm > 0.0f ? 1.0f / pm : 0.0f);
    for (int i = 0; i < fill; i += 16) _mm512_store_ps(ph + i, _mm512_mul_ps(_mm512_maskz_loadu_ps(lanes16(m - i), src + i), inv));
    return true;
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
        for (int h = 0; h < NQ; ++h)
            if (!chunk_probabilities(p + h * ps + c0, m, m, false, ph[h], pm[h])) return false;
        const std::size_t srow = vs / 32;  // a row's scales apart
        const float* first_scales = values.scales + static_cast<std::size_t>(c0) * srow;
        // The next chunk's rows, as lines spread over passes 1 .. nb - 1.
        const std::int8_t* next_chunk = values.q + static_cast<std::size_t>(c0 + kInt16MixKeys) * vs;
        const std::size_t next_lines = static_cast<std::size_t>(kInt16MixKeys) * vs / 64;
        const std::size_t pair_steps = static_cast<std::size_t>(std::max(1, nb - 1)) * (kInt16MixKeys / 2);
        const std::size_t lines_per_pair = (next_lines + pair_steps - 1) / pair_steps;
        for (int b = 0; b < nb; ++b) {
            // The block's scales (row j's at j * vs / 32; 16 at a time by permutes where the rows'
            // stride allows, a gather past the last whole 16) over the chunk's largest, times 32767.
            __m512 mx = zero;
            for (int i = 0; i < m; i += 16) {
                const float* key = first_scales + static_cast<std::size_t>(i) * srow;
                const __m512 g = i + 16 <= m ? avx512::key_scales16(key, static_cast<int>(srow), b, rows)
                                             : _mm512_mask_i32gather_ps(zero, lanes16(m - i), rows, key + b, 4);
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
                    if (c0 + t + kInt16MixKeys + 1 < n)  // and the next chunk's scales
                        for (int k = 0; k < 2; ++k)
                            _mm_prefetch(reinterpret_cast<const char*>(first_scales + (t + k + kInt16MixKeys) * srow), _MM_HINT_T0);
                    add_pair<NQ>(r0, r0 + vs, w, t, lo, hi);
                }
            // The later passes read the chunk from L1 and leave memory idle: they fetch the next
            // chunk into L2 meanwhile, a line per pair where rows are head_dim apart.
            const bool ahead = c0 + 2 * kInt16MixKeys <= n;
            for (; t + 1 < m; t += 2) {
                const std::int8_t* r0 = col + static_cast<std::size_t>(t) * vs;
                if (ahead) {
                    const std::size_t step = static_cast<std::size_t>(b - 1) * (kInt16MixKeys / 2) + t / 2;
                    for (std::size_t l = step * lines_per_pair; l < (step + 1) * lines_per_pair && l < next_lines; ++l)
                        _mm_prefetch(reinterpret_cast<const char*>(next_chunk) + 64 * l, _MM_HINT_T1);
                }
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

// ---- The two-byte mix (mix_q8_bytes) ----

#define WP_AVX512_VBMI_MIX __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx512vbmi,avx2,fma")))

// acc + the products of a's unsigned and b's signed bytes, four to a lane (vpdpbusd); written
// out for the reason dpwssd is.
WP_AVX512_VBMI_MIX inline __m512i dpbusd(__m512i acc, __m512i a, __m512i b) {
    asm("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(a), "v"(b));
    return acc;
}

// Index tables for NB value blocks per row (4 or 8). The weights are made with the chunk's
// scales as they lie, 16 / NB keys x NB blocks to a vector; a group of four keys' weights then
// becomes one record: the low bytes as NB dwords (dword b: block b's weights of the four keys,
// in key order), then the high bytes. Slice s of a row (blocks 2s, 2s + 1) takes dwords 2s and
// 2s + 1 of a record across lanes 0-7 and 8-15, as the interleaved values lie.
template <int NB>
struct BytesMixTables {
    alignas(64) std::uint8_t record[64];     // bytes of one (NB 4) or two (NB 8) weight vectors
    alignas(64) std::int32_t spread[NB][16];  // vector v of 16 keys' probabilities: its keys, NB lanes each
    alignas(64) std::int32_t slice_lo[NB / 2][16], slice_hi[NB / 2][16];
    constexpr BytesMixTables() : record{}, spread{}, slice_lo{}, slice_hi{} {
        constexpr int kpv = 16 / NB;  // keys per vector
        for (int o = 0; o < 64; ++o) {
            const int part = NB == 8 ? o / 32 : (o / 16) & 1, r = NB == 8 ? o % 32 : o % 16, b = r / 4, k = r % 4;
            record[o] = static_cast<std::uint8_t>(NB == 8 ? (k >= 2 ? 64 : 0) + 4 * ((k % 2) * 8 + b) + part
                                                          : 4 * (k * 4 + b) + part);
        }
        for (int v = 0; v < 16 / kpv; ++v)
            for (int l = 0; l < 16; ++l) spread[v][l] = v * kpv + l / NB;
        for (int s = 0; s < NB / 2; ++s)
            for (int l = 0; l < 16; ++l) {
                slice_lo[s][l] = 2 * s + l / 8;
                slice_hi[s][l] = NB + 2 * s + l / 8;
            }
    }
};
template <int NB>
constexpr BytesMixTables<NB> kBytesTables{};

template <int NQ, int NB>
WP_AVX512_VBMI_MIX bool mix_bytes(const float* p, std::size_t ps, const Q8Rows& values, std::size_t vs, int n,
                                  float* out) {
    constexpr int C = kBytesMixKeys, d = NB * 32, kpv = 16 / NB, RB = NB == 8 ? 64 : 32;
    // The next chunk is fetched into L2 while this one is mixed, four lines a group in address
    // order. Fetched as the passes read (line s of every row), the core waited on the fetches
    // instead of overlapping them with its arithmetic (KERNELS.md, "Prefetches in address order").
    constexpr int kLinesPerRow = NB / 2, kLinesPerGroup = C / 16;
    static_assert(kLinesPerGroup * 16 * (NB / 2) == C * kLinesPerRow, "a chunk's lines over its passes and groups");
    const BytesMixTables<NB>& tab = kBytesTables<NB>;
    std::fill(out, out + NQ * d, 0.0f);
    const std::size_t srow = vs / 32;  // a row's scales apart
    alignas(64) std::uint8_t rec[NQ][C / 4][RB];
    alignas(64) float ph[NQ][C];
    alignas(64) float sw[C / kpv][16];  // the chunk's scales, then times 65535 / sm of their block
    float pm[NQ];
    const __m512 zero = _mm512_setzero_ps();
    const __m512i bix = _mm512_load_si512(tab.record);
    for (int c0 = 0; c0 < n; c0 += C) {
        const int m = std::min(C, n - c0), groups = (m + 3) / 4;
        for (int h = 0; h < NQ; ++h)
            if (!chunk_probabilities(p + h * ps + c0, m, C, true, ph[h], pm[h])) return false;
        const float* scales = values.scales + static_cast<std::size_t>(c0) * srow;
        __m512 smax = zero;
        __mmask16 bad = 0;
        for (int v = 0; v < C / kpv; ++v) {
            const int j = v * kpv;
            __m512 sv = zero;
            if (srow == NB && j + kpv <= m) {
                sv = _mm512_loadu_ps(scales + j * NB);
            } else {
                for (int k = 0; k < kpv && j + k < m; ++k)
                    sv = _mm512_mask_loadu_ps(sv, static_cast<__mmask16>(((1u << NB) - 1) << (k * NB)),
                                              scales + (j + k) * srow - k * NB);
            }
            bad |= _mm512_cmp_ps_mask(sv, zero, _CMP_NGE_UQ) | _mm512_cmp_ps_mask(_mm512_sub_ps(sv, sv), zero, _CMP_NEQ_UQ);
            smax = _mm512_max_ps(smax, sv);
            _mm512_store_ps(sw[v], sv);
        }
        if (bad) return false;
        // Lane b (and b + 8 for NB 8): block b's largest scale, sm.
        smax = _mm512_max_ps(smax, _mm512_shuffle_f32x4(smax, smax, 0x4e));
        if constexpr (NB == 4) smax = _mm512_max_ps(smax, _mm512_shuffle_f32x4(smax, smax, 0xb1));
        const __m512 up = _mm512_maskz_div_ps(_mm512_cmp_ps_mask(smax, zero, _CMP_GT_OQ), _mm512_set1_ps(65535.0f), smax);
        for (int v = 0; v < C / kpv; ++v) _mm512_store_ps(sw[v], _mm512_mul_ps(_mm512_load_ps(sw[v]), up));
        // pm * sm / 65535 per head and block, divided here, off the passes' critical path.
        alignas(64) float out_scale[NQ][16];
        for (int h = 0; h < NQ; ++h)
            _mm512_store_ps(out_scale[h], _mm512_div_ps(_mm512_mul_ps(_mm512_set1_ps(pm[h]), smax), _mm512_set1_ps(65535.0f)));
        // Each group's record: weights for its keys (their probabilities spread over NB lanes
        // each) times the scales, rounded, the bytes gathered by one byte permute.
        const __m512i wmax = _mm512_set1_epi32(65535);
        for (int h = 0; h < NQ; ++h)
            for (int g = 0; g < groups; ++g) {
                const __m512 p16 = _mm512_load_ps(ph[h] + g / 4 * 16);
                __m512i w[2];  // vector v of the chunk (keys v * kpv ...), its probabilities spread
                for (int i = 0; i < 4 / kpv; ++i) {
                    const int v = g * (4 / kpv) + i;
                    const __m512 pv = _mm512_permutexvar_ps(_mm512_load_si512(tab.spread[v % (16 / kpv)]), p16);
                    w[i] = _mm512_min_epi32(wmax, _mm512_cvtps_epi32(_mm512_mul_ps(pv, _mm512_load_ps(sw[v]))));
                }
                if constexpr (NB == 8)
                    _mm512_store_si512(rec[h][g], _mm512_permutex2var_epi8(w[0], bix, w[1]));
                else
                    _mm256_store_si256(reinterpret_cast<__m256i*>(rec[h][g]),
                                       _mm512_castsi512_si256(_mm512_permutexvar_epi8(bix, w[0])));
            }
        // A pass per 64-byte slice of the rows: four keys at a time, their bytes interleaved so
        // lane i of x[k] holds element 16 (i / 4) + 4k + i % 4 of the four keys, in key order.
        // Keys past m repeat the last row at weight 0.
        const std::int8_t* rows = values.q + static_cast<std::size_t>(c0) * vs;
        for (int s = 0; s < NB / 2; ++s) {
            const __m512i sel_lo = _mm512_load_si512(tab.slice_lo[s]), sel_hi = _mm512_load_si512(tab.slice_hi[s]);
            __m512i lo[NQ][4], hi[NQ][4];  // every loop over them unrolled: indexed ones live in memory
#pragma GCC unroll 4
            for (int h = 0; h < NQ; ++h)
#pragma GCC unroll 4
                for (int k = 0; k < 4; ++k) lo[h][k] = hi[h][k] = _mm512_setzero_si512();
            for (int g = 0; g < groups; ++g) {
                const int j = 4 * g;
                const std::int8_t* r0 = rows + static_cast<std::size_t>(j) * vs + 64 * s;
                if (c0 + C < n) {
                    const char* next = reinterpret_cast<const char*>(rows + static_cast<std::size_t>(C) * vs);
                    for (int l = (s * 16 + g) * kLinesPerGroup, e = l + kLinesPerGroup; l < e; ++l) {
                        const int row = l / kLinesPerRow;
                        if (c0 + C + row < n) _mm_prefetch(next + row * vs + 64 * (l % kLinesPerRow), _MM_HINT_T1);
                    }
                    // And the first pass the next chunk's scales (each key's first line).
                    if (s == 0 && c0 + C + j + 3 < n)
                        for (int k = 0; k < 4; ++k) _mm_prefetch(reinterpret_cast<const char*>(scales + (C + j + k) * srow), _MM_HINT_T0);
                }
                const std::int8_t* r1 = j + 1 < m ? r0 + vs : r0;
                const std::int8_t* r2 = j + 2 < m ? r0 + 2 * vs : r1;
                const std::int8_t* r3 = j + 3 < m ? r0 + 3 * vs : r2;
                const __m512i a = _mm512_loadu_si512(r0), b = _mm512_loadu_si512(r1);
                const __m512i c = _mm512_loadu_si512(r2), e = _mm512_loadu_si512(r3);
                const __m512i abl = _mm512_unpacklo_epi8(a, b), abh = _mm512_unpackhi_epi8(a, b);
                const __m512i cel = _mm512_unpacklo_epi8(c, e), ceh = _mm512_unpackhi_epi8(c, e);
                const __m512i x[4] = {_mm512_unpacklo_epi16(abl, cel), _mm512_unpackhi_epi16(abl, cel),
                                      _mm512_unpacklo_epi16(abh, ceh), _mm512_unpackhi_epi16(abh, ceh)};
#pragma GCC unroll 4
                for (int h = 0; h < NQ; ++h) {
                    const __m512i r = NB == 8 ? _mm512_load_si512(rec[h][g])
                                              : _mm512_castsi256_si512(_mm256_load_si256(reinterpret_cast<const __m256i*>(rec[h][g])));
                    const __m512i wl = _mm512_permutexvar_epi32(sel_lo, r), wh = _mm512_permutexvar_epi32(sel_hi, r);
#pragma GCC unroll 4
                    for (int k = 0; k < 4; ++k) {
                        lo[h][k] = dpbusd(lo[h][k], wl, x[k]);
                        hi[h][k] = dpbusd(hi[h][k], wh, x[k]);
                    }
                }
            }
            // Each head's sums back in element order (a 4 x 4 transpose of 128-bit lanes), scaled
            // per block into out.
#pragma GCC unroll 4
            for (int h = 0; h < NQ; ++h) {
                __m512 f[4];
#pragma GCC unroll 4
                for (int k = 0; k < 4; ++k) f[k] = _mm512_cvtepi32_ps(_mm512_add_epi32(_mm512_slli_epi32(hi[h][k], 8), lo[h][k]));
                const __m512 t0 = _mm512_shuffle_f32x4(f[0], f[1], 0x44), t1 = _mm512_shuffle_f32x4(f[2], f[3], 0x44);
                const __m512 t2 = _mm512_shuffle_f32x4(f[0], f[1], 0xee), t3 = _mm512_shuffle_f32x4(f[2], f[3], 0xee);
                const __m512 o[4] = {_mm512_shuffle_f32x4(t0, t1, 0x88), _mm512_shuffle_f32x4(t0, t1, 0xdd),
                                     _mm512_shuffle_f32x4(t2, t3, 0x88), _mm512_shuffle_f32x4(t2, t3, 0xdd)};
                const __m512 s0 = _mm512_set1_ps(out_scale[h][2 * s]), s1 = _mm512_set1_ps(out_scale[h][2 * s + 1]);
                float* dst = out + h * d + 64 * s;
#pragma GCC unroll 4
                for (int l = 0; l < 4; ++l)
                    _mm512_storeu_ps(dst + 16 * l, _mm512_fmadd_ps(o[l], l < 2 ? s0 : s1, _mm512_loadu_ps(dst + 16 * l)));
            }
        }
    }
    return true;
}

}  // namespace

bool mix_q8_bytes(const float* p, std::size_t ps, int nq, const Q8Rows& values, std::size_t vs, int n, int d,
                  float* out) {
    while (nq > 0) {
        const int take = std::min(nq, 3);
        bool ok = false;
        if (d == 256) {
            switch (take) {
                case 1: ok = mix_bytes<1, 8>(p, ps, values, vs, n, out); break;
                case 2: ok = mix_bytes<2, 8>(p, ps, values, vs, n, out); break;
                default: ok = mix_bytes<3, 8>(p, ps, values, vs, n, out); break;
            }
        } else {
            switch (take) {
                case 1: ok = mix_bytes<1, 4>(p, ps, values, vs, n, out); break;
                case 2: ok = mix_bytes<2, 4>(p, ps, values, vs, n, out); break;
                default: ok = mix_bytes<3, 4>(p, ps, values, vs, n, out); break;
            }
        }
        if (!ok) return false;
        p += take * ps;
        out += static_cast<std::size_t>(take) * d;
        nq -= take;
    }
    return true;
}

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
bool mix_q8_bytes(const float*, std::size_t, int, const Q8Rows&, std::size_t, int, int, float*) { return false; }
bool mix_q8_int16(const float*, std::size_t, int, const Q8Rows&, std::size_t, int, int, float*) { return false; }
#endif

}  // namespace wp
