// The scalar decode kernels (matvec_kernels.h): plain loops for any CPU, and the reference the
// vector kernels are tested against.
#include "kernels/matvec_kernels.h"

#include <cmath>
#include <cstddef>

#include "kernels/q4_layout.h"
#include "kernels/q8_layout.h"
#include "wp/io/float16.h"

namespace wp {

namespace {

float dot_f32_scalar(const float* w, const float* x, int n) {
    float s = 0;
    for (int i = 0; i < n; ++i) s += w[i] * x[i];
    return s;
}

float dot_bf16_scalar(const std::uint16_t* w, const float* x, int n) {
    float s = 0;
    for (int i = 0; i < n; ++i) s += bf16_to_f32(w[i]) * x[i];
    return s;
}

// Each block's exact integer sum, scaled and added with one rounding (fma), block after block:
// what every q8 and q4 kernel computes in each row's lane, so all of them agree bit for bit.
float dot_q8_scalar(const QMatrix& W, int r, const std::int8_t* xq, const float* xd) {
    const int nb = W.cols / kQuantBlock;
    float s = 0;
    for (int b = 0; b < nb; ++b) {
        std::int8_t w[kQuantBlock];
        load_q8_block(W.q8, r, b, W.rows, W.cols, w);
        int acc = 0;
        for (int i = 0; i < kQuantBlock; ++i) acc += w[i] * xq[b * kQuantBlock + i];
        s = std::fma(static_cast<float>(acc), f16_to_f32(W.scales[q8_scale_index(r, b, W.rows, nb)]) * xd[b], s);
    }
    return s;
}

float dot_q4_scalar(const QMatrix& W, int r, const std::int8_t* xq, const float* xd) {
    float s = 0;
    const int nb = W.cols / kQuantBlock;
    for (int b = 0; b < nb; ++b) {
        std::uint8_t q[16];
        load_q4_block(W.q4, r, b, W.rows, W.cols, q);
        const std::int8_t* x = xq + b * kQuantBlock;
        int acc = 0;
        for (int i = 0; i < 16; ++i) {
            acc += (static_cast<int>(q[i] & 0x0f) - 8) * x[i];
            acc += (static_cast<int>(q[i] >> 4) - 8) * x[i + 16];
        }
        s = std::fma(static_cast<float>(acc), f16_to_f32(W.scales[q8_scale_index(r, b, W.rows, nb)]) * xd[b], s);
    }
    return s;
}

}  // namespace

void rows_scalar(const QMatrix& W, const float* x, const std::int8_t* xq, const float* xd, float* y, int r0, int r1) {
    for (int r = r0; r < r1; ++r) {
        const std::size_t o = static_cast<std::size_t>(r) * W.cols;
        switch (W.precision) {
            case Precision::F32: y[r] = dot_f32_scalar(W.f32 + o, x, W.cols); break;
            case Precision::BF16: y[r] = dot_bf16_scalar(W.bf16 + o, x, W.cols); break;
            case Precision::Q8: y[r] = dot_q8_scalar(W, r, xq, xd); break;
            case Precision::Q4: y[r] = dot_q4_scalar(W, r, xq, xd); break;
        }
    }
}

}  // namespace wp
