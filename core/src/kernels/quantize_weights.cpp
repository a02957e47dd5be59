// make_qmatrix: weight matrices converted or quantized at load (the q8/q4 formats:
// docs/KERNELS.md, "Weight layouts").
#include "kernels/qmatrix.h"

#include <algorithm>
#include <cmath>

#include "kernels/avx2_common.h"
#include "kernels/kernel_choice.h"
#include "kernels/q4_layout.h"
#include "kernels/q8_layout.h"
#include "wp/io/float16.h"
#include "kernels/f16_vectors.h"
#include "kernels/ops.h"

namespace wp {

namespace {

// Quantization of weight blocks [b0, b1) at load. Q8: d = amax / 127, q = round(w / d) in
// -127..127. Q4 (as Q4_0): the largest-magnitude value maps to -8, so the range is used fully;
// q = round(w / d) + 8 clamped to 0..15, element i in the low nibble of byte i, element i + 16
// in its high nibble. Q8 and Q4 blocks and scales go into the panels of q8_layout.h and
// q4_layout.h (`rows` rows of nb blocks). The scale is rounded
// to f16 first and the weights divided by the rounded scale. The AVX2 version below gives
// identical results.
void quantize_blocks_scalar(Precision precision, const float* f32, const std::uint16_t* bf16, std::size_t b0,
                            std::size_t b1, int nb, int rows, std::uint16_t* sc, std::int8_t* q8, std::uint8_t* q4) {
    float block[kQuantBlock];
    for (std::size_t b = b0; b < b1; ++b) {
        float amax = 0, signed_max = 0;
        for (int i = 0; i < kQuantBlock; ++i) {
            const std::size_t j = b * kQuantBlock + i;
            block[i] = f32 ? f32[j] : bf16_to_f32(bf16[j]);
            if (std::fabs(block[i]) > amax) {
                amax = std::fabs(block[i]);
                signed_max = block[i];
            }
        }
        if (precision == Precision::Q8) {
            const int r = static_cast<int>(b / nb), rb = static_cast<int>(b % nb);
            const std::uint16_t scale = f32_to_f16(amax / 127.0f);
            sc[q8_scale_index(r, rb, rows, nb)] = scale;
            const float dd = f16_to_f32(scale);
            const float inv = dd > 0 ? 1.0f / dd : 0.0f;
            std::int8_t q[kQuantBlock];
            for (int i = 0; i < kQuantBlock; ++i)
                q[i] = static_cast<std::int8_t>(std::clamp(std::lrintf(block[i] * inv), -127L, 127L));
            store_q8_block(q8, r, rb, rows, nb * kQuantBlock, q);
        } else {
            const int r = static_cast<int>(b / nb), rb = static_cast<int>(b % nb);
            const std::uint16_t scale = f32_to_f16(signed_max / -8.0f);
            sc[q8_scale_index(r, rb, rows, nb)] = scale;
            const float dd = f16_to_f32(scale);
            const float inv = dd != 0 ? 1.0f / dd : 0.0f;
            std::uint8_t q[16];
            for (int i = 0; i < 16; ++i) {
                const int lo = static_cast<int>(std::clamp(std::lrintf(block[i] * inv) + 8, 0L, 15L));
                const int hi = static_cast<int>(std::clamp(std::lrintf(block[i + 16] * inv) + 8, 0L, 15L));
                q[i] = static_cast<std::uint8_t>(lo | (hi << 4));
            }
            store_q4_block(q4, r, rb, rows, nb * kQuantBlock, q);
        }
    }
}

#if defined(__x86_64__)
WP_AVX2 void quantize_blocks_avx2(Precision precision, const float* f32, const std::uint16_t* bf16, std::size_t b0,
                                  std::size_t b1, int nb, int rows, std::uint16_t* sc, std::int8_t* q8, std::uint8_t* q4) {
    for (std::size_t b = b0; b < b1; ++b) {
        __m256 v[4], a[4];
        for (int k = 0; k < 4; ++k) {
            const std::size_t j = b * kQuantBlock + 8 * k;
            v[k] = f32 ? _mm256_loadu_ps(f32 + j) : avx2::load_bf16(bf16 + j);
        }
        const float amax = avx2::block_amax(v, a);
        float inv;
        const int r = static_cast<int>(b / nb), rb = static_cast<int>(b % nb);
        if (precision == Precision::Q8) {
            const std::uint16_t scale = f32_to_f16(amax / 127.0f);
            sc[q8_scale_index(r, rb, rows, nb)] = scale;
            const float dd = _cvtsh_ss(scale);  // exact, as f16_to_f32
            inv = dd > 0 ? 1.0f / dd : 0.0f;
        } else {
            // The first element of largest magnitude, as the scalar scan picks it.
            const __m256 am = _mm256_set1_ps(amax);
            std::uint32_t hits = 0;
            for (int k = 0; k < 4; ++k)
                hits |= static_cast<std::uint32_t>(_mm256_movemask_ps(_mm256_cmp_ps(a[k], am, _CMP_EQ_OQ))) << (8 * k);
            float vals[kQuantBlock];
            for (int k = 0; k < 4; ++k) _mm256_storeu_ps(vals + 8 * k, v[k]);
            const float signed_max = hits != 0 && amax > 0 ? vals[__builtin_ctz(hits)] : 0.0f;
            const std::uint16_t scale = f32_to_f16(signed_max / -8.0f);
            sc[q8_scale_index(r, rb, rows, nb)] = scale;
            const float dd = _cvtsh_ss(scale);  // exact, as f16_to_f32
            inv = dd != 0 ? 1.0f / dd : 0.0f;
        }
        const __m256 iv = _mm256_set1_ps(inv);
        __m256i i[4];
        for (int k = 0; k < 4; ++k) i[k] = _mm256_cvtps_epi32(_mm256_mul_ps(v[k], iv));  // rounds as lrintf
        if (precision == Precision::Q8) {
            const __m256i c = _mm256_max_epi8(avx2::pack_i8(i), _mm256_set1_epi8(-127));
            std::int8_t q[kQuantBlock];
            _mm256_storeu_si256(reinterpret_cast<__m256i*>(q), c);
            store_q8_block(q8, r, rb, rows, nb * kQuantBlock, q);
        } else {
            const __m256i lo = _mm256_set1_epi32(0), hi = _mm256_set1_epi32(15), eight = _mm256_set1_epi32(8);
            for (int k = 0; k < 4; ++k) i[k] = _mm256_min_epi32(_mm256_max_epi32(_mm256_add_epi32(i[k], eight), lo), hi);
            // Bytes 0-7 and 8-15: elements 0-7 | 16-23 << 4 and 8-15 | 24-31 << 4.
            const __m256i n0 = _mm256_or_si256(i[0], _mm256_slli_epi32(i[2], 4));
            const __m256i n1 = _mm256_or_si256(i[1], _mm256_slli_epi32(i[3], 4));
            const __m256i p16 = _mm256_packs_epi32(n0, n1);  // per lane: n0 (4), n1 (4)
            const __m256i p8 = _mm256_packus_epi16(p16, p16);
            const __m256i o = _mm256_permutevar8x32_epi32(p8, _mm256_setr_epi32(0, 4, 1, 5, 0, 0, 0, 0));
            std::uint8_t bytes[16];
            _mm_storeu_si128(reinterpret_cast<__m128i*>(bytes), _mm256_castsi256_si128(o));
            store_q4_block(q4, r, rb, rows, nb * kQuantBlock, bytes);
        }
    }
}
#endif

void quantize_blocks(Precision precision, const float* f32, const std::uint16_t* bf16, std::size_t b0, std::size_t b1,
                     int nb, int rows, std::uint16_t* sc, std::int8_t* q8, std::uint8_t* q4, const KernelOptions& options) {
#if defined(__x86_64__)
    if (use_avx2_kernels(options)) return quantize_blocks_avx2(precision, f32, bf16, b0, b1, nb, rows, sc, q8, q4);
#endif
    quantize_blocks_scalar(precision, f32, bf16, b0, b1, nb, rows, sc, q8, q4);
}

}  // namespace

QMatrix make_qmatrix(Precision precision, int rows, int cols, const float* f32, const std::uint16_t* bf16,
                     WeightStorage& st, ThreadPool* pool, const KernelOptions& options) {
    QMatrix m;
    m.rows = rows;
    m.cols = cols;
    const std::size_t n = static_cast<std::size_t>(rows) * cols;
    if ((precision == Precision::Q8 || precision == Precision::Q4) && cols % kQuantBlock != 0) precision = Precision::F32;
    m.precision = precision;
    // Rows [r0, r1) of the conversion, on the pool's threads when there is one.
    auto each_rows = [&](auto&& body) {
        if (pool != nullptr && n >= (std::size_t{1} << 16))
            pool->parallel_for(rows, 64, [&](std::int64_t r0, std::int64_t r1) {
                body(static_cast<std::size_t>(r0), static_cast<std::size_t>(r1));
            });
        else
            body(std::size_t{0}, static_cast<std::size_t>(rows));
    };
    const std::size_t C = static_cast<std::size_t>(cols);
    switch (precision) {
        case Precision::F32:
            if (f32) {
                m.f32 = f32;
            } else {
                float* w = st.alloc<float>(n);
                each_rows([&](std::size_t r0, std::size_t r1) { ops::bf16_to_f32(bf16 + r0 * C, w + r0 * C, (r1 - r0) * C); });
                m.f32 = w;
            }
            break;
        case Precision::BF16:
            if (bf16) {
                m.bf16 = bf16;
            } else {
                std::uint16_t* w = st.alloc<std::uint16_t>(n);
                each_rows([&](std::size_t r0, std::size_t r1) {
                    for (std::size_t i = r0 * C; i < r1 * C; ++i) w[i] = f32_to_bf16(f32[i]);
                });
                m.bf16 = w;
            }
            break;
        case Precision::Q8:
        case Precision::Q4: {
            const std::size_t nb = n / kQuantBlock, row_blocks = C / kQuantBlock;
            // The q4 kernels read whole vectors of blocks past a row's end (its scales, or past
            // the last row): room for more.
            std::uint16_t* sc = st.alloc<std::uint16_t>(nb + 8);
            std::int8_t* q8 = precision == Precision::Q8 ? st.alloc<std::int8_t>(n) : nullptr;
            std::uint8_t* q4 = precision == Precision::Q4 ? st.alloc<std::uint8_t>(n / 2 + 8 * kQuantBlock / 2) : nullptr;
            each_rows([&](std::size_t r0, std::size_t r1) {
                quantize_blocks(precision, f32, bf16, r0 * row_blocks, r1 * row_blocks, static_cast<int>(row_blocks), rows, sc,
                                q8, q4, options);
            });
            m.scales = sc;
            m.q8 = q8;
            m.q4 = q4;
            break;
        }
    }
    return m;
}

}  // namespace wp
