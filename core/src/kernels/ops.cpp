#include "kernels/ops.h"

#include <cmath>
#include <cstring>

#include "kernels/attention_kernels.h"

namespace wp::ops {

void bf16_to_f32(const void* src, float* dst, std::size_t n) {
    const auto* s = static_cast<const std::uint8_t*>(src);
    for (std::size_t i = 0; i < n; ++i) {
        std::uint16_t h;
        std::memcpy(&h, s + 2 * i, 2);
        dst[i] = bf16_to_f32(h);
    }
}

void f16_to_f32(const void* src, float* dst, std::size_t n) {
    const auto* s = static_cast<const std::uint8_t*>(src);
    for (std::size_t i = 0; i < n; ++i) {
        std::uint16_t h;
        std::memcpy(&h, s + 2 * i, 2);
        dst[i] = f16_to_f32(h);
    }
}

void rms_norm(const float* x, const float* w, float* y, int rows, int n, float eps, NormStyle style) {
    for (int r = 0; r < rows; ++r) {
        const float* xr = x + static_cast<std::size_t>(r) * n;
        float* yr = y + static_cast<std::size_t>(r) * n;
        double ss = 0;
        for (int i = 0; i < n; ++i) ss += static_cast<double>(xr[i]) * xr[i];
        const float inv = static_cast<float>(1.0 / std::sqrt(ss / n + eps));
        if (style == NormStyle::OnePlusWeight) {
            for (int i = 0; i < n; ++i) yr[i] = (xr[i] * inv) * (1.0f + w[i]);
        } else {
            for (int i = 0; i < n; ++i) yr[i] = (xr[i] * inv) * w[i];
        }
    }
}

void rope_table(double theta, int head_dim, std::int64_t pos0, int count, float* cos, float* sin) {
    const int half = head_dim / 2;
    for (int i = 0; i < half; ++i) {
        // transformers: inv_freq = 1 / theta^(arange(0, dim, 2) / dim)
        const double inv_freq = 1.0 / std::pow(theta, (2.0 * i) / head_dim);
        for (int t = 0; t < count; ++t) {
            const double a = static_cast<double>(pos0 + t) * inv_freq;
            cos[static_cast<std::size_t>(t) * half + i] = static_cast<float>(std::cos(a));
            sin[static_cast<std::size_t>(t) * half + i] = static_cast<float>(std::sin(a));
        }
    }
}

void rope(float* x, int rows, int heads, int head_dim, int stride, const float* cos, const float* sin) {
    const int half = head_dim / 2;
    for (int r = 0; r < rows; ++r) {
        const float* c = cos + static_cast<std::size_t>(r) * half;
        const float* s = sin + static_cast<std::size_t>(r) * half;
        for (int h = 0; h < heads; ++h) {
            float* v = x + static_cast<std::size_t>(r) * stride + static_cast<std::size_t>(h) * head_dim;
            for (int i = 0; i < half; ++i) {
                const float a = v[i], b = v[i + half];
                v[i] = a * c[i] - b * s[i];
                v[i + half] = b * c[i] + a * s[i];
            }
        }
    }
}

void gelu_tanh_mul(const float* gate, const float* up, float* out, std::size_t n) { vec_gelu_tanh_mul(gate, up, out, n); }

void silu_mul(const float* gate, const float* up, float* out, std::size_t n) { vec_silu_mul(gate, up, out, n); }

void softcap(float* x, std::size_t n, float cap) { vec_softcap(x, n, cap); }

std::size_t argmax(const float* x, std::size_t n) { return vec_argmax(x, n); }

void add(float* y, const float* x, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) y[i] += x[i];
}

}  // namespace wp::ops
