#include "kernels/attention_scores_q8.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#include "kernels/attention_scores_amx.h"
#include "kernels/avx512_common.h"
#include "kernels/prepared_input.h"

namespace wp {

bool vnni_scores_fit(const Q8Rows& keys, int d, std::size_t ks) {
    return keys.block == 32 && d % 64 == 0 && d <= kVnniMaxDim && ks % 64 == 0;
}

#if defined(__x86_64__) || defined(_M_X64)
#define WP_AVX512_VNNI __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")))

namespace {

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
        _mm512_store_ps(sums, avx512::sum16(acc));
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

// Scores of sixteen keys at a time, one key per lane (n a multiple of 16): each 64-byte chunk of
// the sixteen keys transposed in registers, so one vpdpbusd takes a query dword (broadcast)
// against that dword of every key, and a block's sums are scaled once per head for all sixteen
// keys. No horizontal sums: per key, query head and chunk about 2.5 instructions where the rows'
// kernel (scores_vnni) takes about 5.5, and the transpose's 4 per key and chunk are shared by the
// heads.
template <int NQ>
WP_AVX512_VNNI void scores_vnni_lanes(const Q8Queries& qq, int d, const Q8Rows& keys, std::size_t ks, int n, float* out,
                                      std::size_t os) {
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
    // Groups of up to kGroup keys, a 64-byte slice of all their rows before the next slice: the
    // memory is read in runs long enough for the prefetchers to follow (sixteen rows a slice were
    // not; docs/KERNELS.md). Each pass fetches a share of the next group's rows in address order
    // (fetched slice by slice, the fetches held the core up), and a share of its scales.
    constexpr int kGroup = 64;
    const int chunks = d / 64;
    const std::size_t scale_bytes = static_cast<std::size_t>(kGroup) * scale_stride * sizeof(float);
    const int scale_lines_per_pass = static_cast<int>((scale_bytes / 64 + chunks * (kGroup / 16) - 1) / (chunks * (kGroup / 16)));
    for (int j0 = 0; j0 + 16 <= n; j0 += kGroup) {
        const int g = std::min(kGroup, (n - j0) / 16 * 16);
        for (int j = j0; j < j0 + g; j += 16)
            for (int h = 0; h < NQ; ++h) _mm512_storeu_ps(out + h * os + j, _mm512_setzero_ps());
        const bool fetch = j0 + 2 * kGroup <= n;
        int pass = 0;
        for (int c = 0; c < chunks; ++c)
            for (int j = j0; j < j0 + g; j += 16, ++pass) {
                if (fetch) {
                    // Sixteen lines of the next group's rows a pass, in address order (row by row).
                    const char* next = reinterpret_cast<const char*>(keys.q + (j0 + kGroup) * ks);
                    for (int l = 16 * pass; l < 16 * (pass + 1); ++l) _mm_prefetch(next + l / chunks * ks + 64 * (l % chunks), _MM_HINT_T0);
                    const char* next_scales = reinterpret_cast<const char*>(keys.scales + (((j0 + kGroup) * ks) >> 5));
                    for (int l = pass * scale_lines_per_pass; l < (pass + 1) * scale_lines_per_pass; ++l)
                        if (static_cast<std::size_t>(l) * 64 < scale_bytes) _mm_prefetch(next_scales + 64 * l, _MM_HINT_T0);
                }
                const float* scales = keys.scales + ((j * ks) >> 5);
                // The chunk's two blocks' key scales first: their latency passes in the transpose.
                const __m512 kd[2] = {avx512::key_scales16(scales, scale_stride, 2 * c, key_index),
                                      avx512::key_scales16(scales, scale_stride, 2 * c + 1, key_index)};
                __m512i r[16];
                const std::int8_t* row = keys.q + j * ks + 64 * c;
                for (int k = 0; k < 16; ++k) {
                    r[k] = _mm512_xor_si512(_mm512_loadu_si512(row), _mm512_set1_epi8(static_cast<char>(0x80)));
                    row += ks;
                }
                avx512::transpose16_epi32(r);
                __m512 acc[NQ];
                for (int h = 0; h < NQ; ++h) acc[h] = _mm512_loadu_ps(out + h * os + j);
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
                for (int h = 0; h < NQ; ++h) _mm512_storeu_ps(out + h * os + j, acc[h]);
            }
    }
}

// The keys in whole sixteens by scores_vnni_lanes from kLanesMinHeads query heads on, the rest
// (and every key with fewer heads) by scores_vnni.
constexpr int kLanesMinHeads = 2;

template <int NQ, int NK>
WP_AVX512_VNNI void scores_vnni_keys(const Q8Queries& qq, int d, const Q8Rows& keys, std::size_t ks, int n, float* out,
                                     std::size_t os, bool amx) {
    int done = 0;
    if constexpr (NQ >= kLanesMinHeads) {
        done = n / 16 * 16;
        if (done > 0 && amx && amx_scores_fit(NQ, d)) {
            const int lanes = d / 4, blocks = d / 32;
            float q_scale[NQ * kVnniMaxDim / 32];
            for (int h = 0; h < NQ; ++h)
                for (int b = 0; b < blocks; ++b) q_scale[h * blocks + b] = qq.scale[h * lanes + 8 * b];
            scores_q8_amx(qq.q, q_scale, NQ, d, keys, ks, done, out, os);
        } else if (done > 0) {
            scores_vnni_lanes<NQ>(qq, d, keys, ks, done, out, os);
        }
    }
    if (done < n) {
        const std::size_t at = static_cast<std::size_t>(done) * ks;
        scores_vnni<NQ, NK>(qq, d, Q8Rows(keys.q + at, keys.scales + (at >> keys.shift), keys.block), ks, n - done,
                            out + done, os);
    }
}

}  // namespace

WP_AVX512_VNNI bool scores_q8_vnni(const float* q, int nq, int d, const Q8Rows& keys, std::size_t ks, int n, float* out,
                                   std::size_t os, bool amx) {
    Q8Queries qq;
    if (nq < 1 || nq > kVnniMaxHeads || !round_q8_queries(q, nq, d, qq)) return false;
    switch (nq) {  // up to 16 sums, reduced together by sum16
        case 1: scores_vnni_keys<1, 16>(qq, d, keys, ks, n, out, os, amx); break;
        case 2: scores_vnni_keys<2, 8>(qq, d, keys, ks, n, out, os, amx); break;
        case 3: scores_vnni_keys<3, 5>(qq, d, keys, ks, n, out, os, amx); break;
        case 4: scores_vnni_keys<4, 4>(qq, d, keys, ks, n, out, os, amx); break;
        case 5: scores_vnni_keys<5, 3>(qq, d, keys, ks, n, out, os, amx); break;
        case 6: scores_vnni_keys<6, 2>(qq, d, keys, ks, n, out, os, amx); break;
        case 7: scores_vnni_keys<7, 2>(qq, d, keys, ks, n, out, os, amx); break;
        default: scores_vnni_keys<8, 2>(qq, d, keys, ks, n, out, os, amx); break;
    }
    return true;
}
#else
bool scores_q8_vnni(const float*, int, int, const Q8Rows&, std::size_t, int, float*, std::size_t, bool) { return false; }
#endif

}  // namespace wp
