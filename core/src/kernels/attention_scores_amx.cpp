#include "kernels/attention_scores_amx.h"

#include <cstring>
#include <type_traits>
#include <utility>

#include "kernels/amx_tiles.h"
#include "kernels/avx512_common.h"

namespace wp {

namespace {
constexpr int kMaxDim = 256, kMaxB = 4;
// Tiles: C (the sums) 0 and 1, A (the keys) 2 and 3, B (the queries) 4 to 7.
int b_tiles(int nq, int d) { return (nq * (d / 32) + 15) / 16 * (d / 64); }
}  // namespace

bool amx_scores_fit(int nq, int d) {
    return nq >= 1 && d % 64 == 0 && d <= kMaxDim && nq * (d / 32) <= 32 && b_tiles(nq, d) <= kMaxB;
}

#if defined(__x86_64__)
#define WP_AMX_SCORES __attribute__((target("amx-tile,amx-int8,avx512f,avx512bw,avx512vl,avx512vnni")))

namespace {

// The tile instructions with their tile numbers as template arguments (the intrinsics paste
// their arguments' spelling into the instruction, so they take only literals).
template <int A>
inline void tile_load(const void* base, std::size_t stride) {
    asm volatile("tileloadd (%0,%1,1), %%tmm%c2" ::"r"(base), "r"(stride), "i"(A) : "memory");
}
template <int C>
inline void tile_store(void* base) {
    asm volatile("tilestored %%tmm%c1, (%0,%2,1)" ::"r"(base), "i"(C), "r"(std::size_t{64}) : "memory");
}
template <int C>
inline void tile_zero() {
    asm volatile("tilezero %%tmm%c0" ::"i"(C));
}
template <int C, int A, int B>
inline void tile_dpbssd() {
    asm volatile("tdpbssd %%tmm%c0, %%tmm%c1, %%tmm%c2" ::"i"(B), "i"(A), "i"(C));
}

template <int N, typename F>
[[gnu::always_inline]] inline void static_for(F&& f) {
    [&]<int... I>(std::integer_sequence<int, I...>) { (f(std::integral_constant<int, I>{}), ...); }(
        std::make_integer_sequence<int, N>{});
}

// CH chunks of 64 bytes per key, NC C tiles of 16 (head, block) columns.
template <int CH, int NC>
WP_AMX_SCORES void scores_tiles(const std::int8_t* q, const float* q_scale, int nq, const Q8Rows& keys, std::size_t ks,
                                int n, float* out, std::size_t os) {
    constexpr int d = 64 * CH, nb = 2 * CH, heads_per_tile = 16 / nb;
    // B tile (c, k): row r holds dims 64k + 4r .. + 3 (block 2k + r / 8) of each column's head
    // where the column's block is that one.
    alignas(64) std::int8_t bt[NC][CH][16][64] = {};
    for (int c = 0; c < NC; ++c)
        for (int k = 0; k < CH; ++k)
            for (int r = 0; r < 16; ++r)
                for (int col = 0; col < 16; ++col) {
                    const int h = (16 * c + col) / nb, b = (16 * c + col) % nb;
                    if (h < nq && b == 2 * k + r / 8) std::memcpy(&bt[c][k][r][4 * col], q + h * d + 64 * k + 4 * r, 4);
                }
    TileConfig cfg;
    for (int t = 0; t < 8; ++t) cfg.rows[t] = 16, cfg.colsb[t] = 64;
    _tile_loadconfig(&cfg);
    static_for<NC>([&](auto c) { static_for<CH>([&](auto k) { tile_load<4 + c * CH + k>(bt[c][k], 64); }); });

    const int scale_stride = static_cast<int>(ks >> 5);
    const __m512i key_index = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                                 _mm512_set1_epi32(scale_stride));
    // Two groups (32 keys) ahead, in address order, sixteen lines before each tile load: issued
    // all at once per group, the fetches held the core up instead of overlapping its arithmetic
    // (KERNELS.md, "Prefetches in address order").
    constexpr int kAhead = 32;
    const std::size_t scale_lines = (16 * static_cast<std::size_t>(scale_stride) * sizeof(float) + 63) / 64;
    alignas(64) std::int32_t sums[2][16][16];
    // G groups of sixteen keys' products: C tile g * NC + c. With one C tile per group, two
    // groups at once, so that two chains of tdpbssd are in flight (one waits on each product).
    auto products = [&]<int G>(int j) WP_AMX_SCORES {
        for (int g = 0; g < G; ++g)
            if (j + 16 * g + kAhead < n) {
                const char* next_scales = reinterpret_cast<const char*>(keys.scales + (((j + 16 * g + kAhead) * ks) >> 5));
                for (std::size_t l = 0; l < scale_lines; ++l) _mm_prefetch(next_scales + 64 * l, _MM_HINT_T0);
            }
        static_for<G * NC>([&](auto t) WP_AMX_SCORES { tile_zero<t>(); });
        static_for<CH>([&](auto k) {
            static_for<G>([&](auto g) {
                constexpr int a = G == 1 ? 2 + k % 2 : 2 + g;
                if (j + 16 * g + kAhead < n) {
                    const char* next = reinterpret_cast<const char*>(keys.q + (j + 16 * g + kAhead) * ks);
                    for (int l = 16 * k; l < 16 * (k + 1); ++l) _mm_prefetch(next + l / CH * ks + 64 * (l % CH), _MM_HINT_T0);
                }
                tile_load<a>(keys.q + (j + 16 * g) * ks + 64 * k, ks);
                static_for<NC>([&](auto c) { tile_dpbssd<g * NC + c, a, 4 + c * CH + k>(); });
            });
        });
        static_for<G * NC>([&](auto t) { tile_store<t>(sums[t]); });
    };
    // Sixteen keys' scores from their C tiles' sums (from sums[first]).
    auto scale = [&](int j, int first) WP_AMX_SCORES {
        const float* scales = keys.scales + ((j * ks) >> 5);
        __m512 kd[nb];
        for (int b = 0; b < nb; ++b) kd[b] = avx512::key_scales16(scales, scale_stride, b, key_index);
        for (int c = 0; c < NC; ++c) {
            const int h0 = c * heads_per_tile;
            if (h0 >= nq) break;
            __m512i r[16];
            for (int i = 0; i < 16; ++i) r[i] = _mm512_load_si512(sums[first + c][i]);
            avx512::transpose16_epi32(r);
            for (int hl = 0; hl < heads_per_tile && h0 + hl < nq; ++hl) {
                const int h = h0 + hl;
                // Block after block from zero, as scores_vnni_lanes adds them: the same floats.
                __m512 acc = _mm512_setzero_ps();
                for (int b = 0; b < nb; ++b)
                    acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(r[hl * nb + b]),
                                          _mm512_mul_ps(kd[b], _mm512_set1_ps(q_scale[h * nb + b])), acc);
                _mm512_storeu_ps(out + h * os + j, acc);
            }
        }
    };
    int j = 0;
    if constexpr (NC == 1)
        for (; j + 32 <= n; j += 32) {
            products.template operator()<2>(j);
            scale(j, 0);
            scale(j + 16, 1);
        }
    for (; j < n; j += 16) {
        products.template operator()<1>(j);
        scale(j, 0);
    }
    // Back to the initial state, so that a context switch need not save the tiles.
    _tile_release();
}

}  // namespace

void scores_q8_amx(const std::int8_t* q, const float* q_scale, int nq, int d, const Q8Rows& keys, std::size_t ks, int n,
                   float* out, std::size_t os) {
    // amx_scores_fit leaves two C tiles only to head_dim 128 past four heads.
    const bool two = nq * (d / 32) > 16;
    switch (d) {
        case 64: return scores_tiles<1, 1>(q, q_scale, nq, keys, ks, n, out, os);
        case 128: return two ? scores_tiles<2, 2>(q, q_scale, nq, keys, ks, n, out, os)
                             : scores_tiles<2, 1>(q, q_scale, nq, keys, ks, n, out, os);
        default: return scores_tiles<4, 1>(q, q_scale, nq, keys, ks, n, out, os);
    }
}

#else
void scores_q8_amx(const std::int8_t*, const float*, int, int, const Q8Rows&, std::size_t, int, float*, std::size_t) {}
#endif

}  // namespace wp
