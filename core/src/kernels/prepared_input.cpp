#include "kernels/prepared_input.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels/avx2_common.h"
#include "kernels/kernel_choice.h"

namespace wp {

namespace {

void quantize_input_scalar(const float* x, int n, std::int8_t* q, float* d) {
    for (int b = 0; b < n / kQuantBlock; ++b) {
        float amax = 0;
        for (int i = 0; i < kQuantBlock; ++i) amax = std::max(amax, std::fabs(x[b * kQuantBlock + i]));
        const float scale = amax / 127.0f;
        const float inv = scale > 0 ? 1.0f / scale : 0.0f;
        d[b] = scale;
        for (int i = 0; i < kQuantBlock; ++i)
            q[b * kQuantBlock + i] = static_cast<std::int8_t>(std::lrintf(x[b * kQuantBlock + i] * inv));
    }
}

#if defined(__x86_64__)
// The same quantization, eight lanes at a time (cvtps rounds to nearest even, as lrintf does).
WP_AVX2 void quantize_input_avx2(const float* x, int n, std::int8_t* q, float* d) {
    for (int b = 0; b < n / kQuantBlock; ++b) {
        __m256 v[4], a[4];
        for (int k = 0; k < 4; ++k) v[k] = _mm256_loadu_ps(x + b * kQuantBlock + 8 * k);
        const float scale = avx2::block_amax(v, a) / 127.0f;
        const __m256 inv = _mm256_set1_ps(scale > 0 ? 1.0f / scale : 0.0f);
        d[b] = scale;
        __m256i i[4];
        for (int k = 0; k < 4; ++k) i[k] = _mm256_cvtps_epi32(_mm256_mul_ps(v[k], inv));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + b * kQuantBlock), avx2::pack_i8(i));
    }
}
#endif

}  // namespace

void quantize_input_blocks(const float* x, int n, std::int8_t* q, float* d, const KernelOptions& options) {
#if defined(__x86_64__)
    if (use_avx2_kernels(options)) return quantize_input_avx2(x, n, q, d);
#endif
    quantize_input_scalar(x, n, q, d);
}

void q4_corrections(const std::int8_t* xq, int nb, std::int32_t* c4) {
    for (int b = 0; b < nb; ++b) {
        int sum = 0;
        for (int i = 0; i < kQuantBlock; ++i) sum += xq[kQuantBlock * b + i];
        c4[b] = -8 * sum;
    }
}

PreparedInput prepare_input(const QMatrix& W, const float* x, InputScratch& s, const KernelOptions& options) {
    PreparedInput in;
    in.x = x;
    in.kernels = avx512_decode_kernels(options) ? KernelSet::Avx512
                 : use_avx2_kernels(options)    ? KernelSet::Avx2
                                                : KernelSet::Scalar;
    if (W.precision == Precision::BF16 && in.kernels == KernelSet::Avx2) {
        // Even and odd elements of each 16-block, for the AVX2 bf16 kernel (AVX-512 reads x as it is).
        if (s.xp.size() < static_cast<std::size_t>(W.cols)) s.xp.resize(W.cols);
        constexpr int block = 16;
        for (int b = 0; b + block <= W.cols; b += block)
            for (int i = 0; i < block / 2; ++i) {
                s.xp[b + i] = x[b + 2 * i];
                s.xp[b + block / 2 + i] = x[b + 2 * i + 1];
            }
        in.xp = s.xp.data();
    }
    if (W.precision == Precision::Q8 || W.precision == Precision::Q4) {
        // Blocks padded to a multiple of sixteen (the vector kernels' step); the padding is
        // zeroed on every call, since a wider input may have used it before.
        const int nb = W.cols / kQuantBlock, padded = (nb + 15) / 16 * 16;
        const std::size_t bytes = static_cast<std::size_t>(padded) * kQuantBlock;
        if (s.xq.size() < bytes) {
            s.xq.resize(bytes);
            s.xd.resize(padded);
        }
        quantize_input_blocks(x, W.cols, s.xq.data(), s.xd.data(), options);
        std::fill(s.xd.begin() + nb, s.xd.begin() + padded, 0.0f);
        std::fill(s.xq.begin() + static_cast<std::size_t>(nb) * kQuantBlock, s.xq.begin() + bytes, std::int8_t{0});
        in.xq = s.xq.data();
        in.xd = s.xd.data();
        if (W.precision == Precision::Q8 && in.kernels == KernelSet::Avx512) {
            if (s.xu.size() < bytes) s.xu.resize(bytes);
            for (std::size_t i = 0; i < bytes; ++i) s.xu[i] = static_cast<std::uint8_t>(s.xq[i] ^ 0x80);
            in.xu = s.xu.data();
        }
        // The vector q4 kernels start each block's sum at its correction (the scalar one
        // subtracts 8 from each nibble).
        if (W.precision == Precision::Q4 && in.kernels != KernelSet::Scalar) {
            if (s.c4.size() < static_cast<std::size_t>(padded)) s.c4.resize(padded);
            q4_corrections(s.xq.data(), nb, s.c4.data());
            in.c4 = s.c4.data();
        }
    }
    return in;
}

}  // namespace wp
