// ggml's block formats into Windowpane's weight forms (gguf_weights.h).
//
// The dequantizers follow llama.cpp's ggml-quants.c dequantize_row_* expression for expression:
// scales widened exactly from f16 (f16_to_f32, as GGML_FP16_TO_FP32), integer parts computed in
// int and converted once, the products and differences in the reference's order, so the floats
// are bit-identical to ggml's. Fused multiply-adds (contraction) cannot change them either: every
// product of an affine format is exact in f32 (an f16 significand of 11 bits times a 6-bit scale
// times a quant of at most 5 bits needs 22 of f32's 24), so `d * q - m` rounds only at the
// difference with or without fusion (checked: -mfma -ffp-contract=fast gives the same floats).
// Against a build of llama.cpp's libggml-base, on random bytes (inf and NaN scales included), every
// type gave the same bits except in NaN payloads (F16C quiets signalling NaNs).
//
// Q8_0 quants may be -128 (ggml's quantizer rounds to -127..127, but a file may hold any byte).
// Windowpane's own quantizer never makes -128, yet every q8 kernel reads it exactly: the AVX2 and
// AVX-512 decode kernels take |w| as an unsigned byte (abs/sign of -128 is 0x80 = 128 unsigned) and
// x in -127..127 carries w's sign, so maddubs' 16-bit pair sums stay within 2 x 128 x 127 = 32512;
// the int8 product uses w as the signed operand of vpdpbusd (int32 sums); the scalar loop is int.
// So -128 is kept, not clamped (gguf_weights_test checks every kernel set against the reference).
#include "kernels/gguf_weights.h"

#include <algorithm>
#include <cstring>
#include <string>

#include "io/gguf.h"
#include "kernels/q4_layout.h"
#include "kernels/q8_layout.h"
#include "wp/error.h"
#include "wp/io/float16.h"

namespace wp {

namespace {

constexpr int QK_K = 256;

inline float f16_at(const std::uint8_t* p) {
    std::uint16_t h;
    std::memcpy(&h, p, 2);
    return f16_to_f32(h);
}

struct Geometry {
    GgmlType type;
    std::size_t elems, bytes;
};
// Sizes from ggml-common.h's block structs (and their static_asserts).
constexpr Geometry kGeometry[] = {
    {GgmlType::F32, 1, 4},         {GgmlType::F16, 1, 2},         {GgmlType::BF16, 1, 2},
    {GgmlType::Q4_0, 32, 18},      {GgmlType::Q4_1, 32, 20},      {GgmlType::Q5_0, 32, 22},
    {GgmlType::Q5_1, 32, 24},      {GgmlType::Q8_0, 32, 34},      {GgmlType::Q2_K, QK_K, 84},
    {GgmlType::Q3_K, QK_K, 110},   {GgmlType::Q4_K, QK_K, 144},   {GgmlType::Q5_K, QK_K, 176},
    {GgmlType::Q6_K, QK_K, 210},   {GgmlType::Q8_K, QK_K, 292},
};

const Geometry* geometry(std::uint32_t type) {
    for (const Geometry& g : kGeometry)
        if (static_cast<std::uint32_t>(g.type) == type) return &g;
    return nullptr;
}

// ---- 32-element blocks ----

// block_q4_0: f16 d; u8 qs[16]. Element j: low nibble of qs[j], j + 16: its high nibble; (q - 8) d.
void dq_q4_0(const std::uint8_t* x, float* y, std::int64_t nb) {
    for (std::int64_t i = 0; i < nb; ++i, x += 18, y += 32) {
        const float d = f16_at(x);
        const std::uint8_t* qs = x + 2;
        for (int j = 0; j < 16; ++j) {
            const int x0 = (qs[j] & 0x0F) - 8;
            const int x1 = (qs[j] >> 4) - 8;
            y[j] = x0 * d;
            y[j + 16] = x1 * d;
        }
    }
}

// block_q4_1: f16 d, f16 m; u8 qs[16]. q d + m.
void dq_q4_1(const std::uint8_t* x, float* y, std::int64_t nb) {
    for (std::int64_t i = 0; i < nb; ++i, x += 20, y += 32) {
        const float d = f16_at(x), m = f16_at(x + 2);
        const std::uint8_t* qs = x + 4;
        for (int j = 0; j < 16; ++j) {
            const int x0 = qs[j] & 0x0F;
            const int x1 = qs[j] >> 4;
            y[j] = x0 * d + m;
            y[j + 16] = x1 * d + m;
        }
    }
}

// block_q5_0: f16 d; u8 qh[4] (bit j: the fifth bit of element j); u8 qs[16]. (q - 16) d.
void dq_q5_0(const std::uint8_t* x, float* y, std::int64_t nb) {
    for (std::int64_t i = 0; i < nb; ++i, x += 22, y += 32) {
        const float d = f16_at(x);
        std::uint32_t qh;
        std::memcpy(&qh, x + 2, 4);
        const std::uint8_t* qs = x + 6;
        for (int j = 0; j < 16; ++j) {
            const std::uint8_t xh_0 = ((qh >> (j + 0)) << 4) & 0x10;
            const std::uint8_t xh_1 = ((qh >> (j + 12))) & 0x10;
            const std::int32_t x0 = ((qs[j] & 0x0F) | xh_0) - 16;
            const std::int32_t x1 = ((qs[j] >> 4) | xh_1) - 16;
            y[j] = x0 * d;
            y[j + 16] = x1 * d;
        }
    }
}

// block_q5_1: f16 d, f16 m; u8 qh[4]; u8 qs[16]. q d + m.
void dq_q5_1(const std::uint8_t* x, float* y, std::int64_t nb) {
    for (std::int64_t i = 0; i < nb; ++i, x += 24, y += 32) {
        const float d = f16_at(x), m = f16_at(x + 2);
        std::uint32_t qh;
        std::memcpy(&qh, x + 4, 4);
        const std::uint8_t* qs = x + 8;
        for (int j = 0; j < 16; ++j) {
            const std::uint8_t xh_0 = ((qh >> (j + 0)) << 4) & 0x10;
            const std::uint8_t xh_1 = ((qh >> (j + 12))) & 0x10;
            const int x0 = (qs[j] & 0x0F) | xh_0;
            const int x1 = (qs[j] >> 4) | xh_1;
            y[j] = x0 * d + m;
            y[j + 16] = x1 * d + m;
        }
    }
}

// block_q8_0: f16 d; i8 qs[32]. q d.
void dq_q8_0(const std::uint8_t* x, float* y, std::int64_t nb) {
    for (std::int64_t i = 0; i < nb; ++i, x += 34, y += 32) {
        const float d = f16_at(x);
        const auto* qs = reinterpret_cast<const std::int8_t*>(x + 2);
        for (int j = 0; j < 32; ++j) y[j] = qs[j] * d;
    }
}

// ---- super-blocks of 256 ----

// block_q2_K: u8 scales[16] (low nibble: scale, high: min); u8 qs[64]; f16 d; f16 dmin.
void dq_q2_K(const std::uint8_t* x, float* y, std::int64_t nb) {
    for (std::int64_t i = 0; i < nb; ++i, x += 84) {
        const std::uint8_t* scales = x;
        const std::uint8_t* q = x + 16;
        const float d = f16_at(x + 80), min = f16_at(x + 82);
        int is = 0;
        for (int n = 0; n < QK_K; n += 128) {
            int shift = 0;
            for (int j = 0; j < 4; ++j) {
                std::uint8_t sc = scales[is++];
                float dl = d * (sc & 0xF), ml = min * (sc >> 4);
                for (int l = 0; l < 16; ++l) *y++ = dl * static_cast<std::int8_t>((q[l] >> shift) & 3) - ml;
                sc = scales[is++];
                dl = d * (sc & 0xF), ml = min * (sc >> 4);
                for (int l = 0; l < 16; ++l) *y++ = dl * static_cast<std::int8_t>((q[l + 16] >> shift) & 3) - ml;
                shift += 2;
            }
            q += 32;
        }
    }
}

// block_q3_K: u8 hmask[32]; u8 qs[64]; u8 scales[12] (sixteen 6-bit scales, offset by 32); f16 d.
void dq_q3_K(const std::uint8_t* x, float* y, std::int64_t nb) {
    const std::uint32_t kmask1 = 0x03030303, kmask2 = 0x0f0f0f0f;
    for (std::int64_t i = 0; i < nb; ++i, x += 110) {
        const float d_all = f16_at(x + 108);
        const std::uint8_t* q = x + 32;
        const std::uint8_t* hm = x;
        std::uint8_t m = 1;
        // The sixteen scales: low four bits from bytes 0-7 (low nibble: scales 0-7, high: 8-15),
        // high two bits from bytes 8-11 (byte 8 + j % 4, bits 2 (j / 4)); as ggml unpacks them.
        std::uint32_t aux[4];
        std::memcpy(aux, x + 96, 12);
        const std::uint32_t tmp = aux[2];
        aux[2] = ((aux[0] >> 4) & kmask2) | (((tmp >> 4) & kmask1) << 4);
        aux[3] = ((aux[1] >> 4) & kmask2) | (((tmp >> 6) & kmask1) << 4);
        aux[0] = (aux[0] & kmask2) | (((tmp >> 0) & kmask1) << 4);
        aux[1] = (aux[1] & kmask2) | (((tmp >> 2) & kmask1) << 4);
        std::int8_t scales[16];
        std::memcpy(scales, aux, 16);
        int is = 0;
        for (int n = 0; n < QK_K; n += 128) {
            int shift = 0;
            for (int j = 0; j < 4; ++j) {
                float dl = d_all * (scales[is++] - 32);
                for (int l = 0; l < 16; ++l)
                    *y++ = dl * (static_cast<std::int8_t>((q[l + 0] >> shift) & 3) - ((hm[l + 0] & m) ? 0 : 4));
                dl = d_all * (scales[is++] - 32);
                for (int l = 0; l < 16; ++l)
                    *y++ = dl * (static_cast<std::int8_t>((q[l + 16] >> shift) & 3) - ((hm[l + 16] & m) ? 0 : 4));
                shift += 2;
                m <<= 1;
            }
            q += 32;
        }
    }
}

// The 6-bit scale and min of sub-block j of a Q4_K / Q5_K block (ggml's get_scale_min_k4).
inline void get_scale_min_k4(int j, const std::uint8_t* q, std::uint8_t* d, std::uint8_t* m) {
    if (j < 4) {
        *d = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *d = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
        *m = (q[j + 4] >> 4) | ((q[j - 0] >> 6) << 4);
    }
}

// block_q4_K: f16 d, f16 dmin; u8 scales[12]; u8 qs[128].
void dq_q4_K(const std::uint8_t* x, float* y, std::int64_t nb) {
    for (std::int64_t i = 0; i < nb; ++i, x += 144) {
        const float d = f16_at(x), min = f16_at(x + 2);
        const std::uint8_t* scales = x + 4;
        const std::uint8_t* q = x + 16;
        int is = 0;
        std::uint8_t sc, m;
        for (int j = 0; j < QK_K; j += 64) {
            get_scale_min_k4(is + 0, scales, &sc, &m);
            const float d1 = d * sc, m1 = min * m;
            get_scale_min_k4(is + 1, scales, &sc, &m);
            const float d2 = d * sc, m2 = min * m;
            for (int l = 0; l < 32; ++l) *y++ = d1 * (q[l] & 0xF) - m1;
            for (int l = 0; l < 32; ++l) *y++ = d2 * (q[l] >> 4) - m2;
            q += 32;
            is += 2;
        }
    }
}

// block_q5_K: f16 d, f16 dmin; u8 scales[12]; u8 qh[32]; u8 qs[128].
void dq_q5_K(const std::uint8_t* x, float* y, std::int64_t nb) {
    for (std::int64_t i = 0; i < nb; ++i, x += 176) {
        const float d = f16_at(x), min = f16_at(x + 2);
        const std::uint8_t* scales = x + 4;
        const std::uint8_t* qh = x + 16;
        const std::uint8_t* ql = x + 48;
        int is = 0;
        std::uint8_t sc, m;
        std::uint8_t u1 = 1, u2 = 2;
        for (int j = 0; j < QK_K; j += 64) {
            get_scale_min_k4(is + 0, scales, &sc, &m);
            const float d1 = d * sc, m1 = min * m;
            get_scale_min_k4(is + 1, scales, &sc, &m);
            const float d2 = d * sc, m2 = min * m;
            for (int l = 0; l < 32; ++l) *y++ = d1 * ((ql[l] & 0xF) + (qh[l] & u1 ? 16 : 0)) - m1;
            for (int l = 0; l < 32; ++l) *y++ = d2 * ((ql[l] >> 4) + (qh[l] & u2 ? 16 : 0)) - m2;
            ql += 32;
            is += 2;
            u1 <<= 2;
            u2 <<= 2;
        }
    }
}

// block_q6_K: u8 ql[128]; u8 qh[64]; i8 scales[16]; f16 d.
void dq_q6_K(const std::uint8_t* x, float* y, std::int64_t nb) {
    for (std::int64_t i = 0; i < nb; ++i, x += 210) {
        const float d = f16_at(x + 208);
        const std::uint8_t* ql = x;
        const std::uint8_t* qh = x + 128;
        const auto* sc = reinterpret_cast<const std::int8_t*>(x + 192);
        for (int n = 0; n < QK_K; n += 128) {
            for (int l = 0; l < 32; ++l) {
                const int is = l / 16;
                const auto q1 = static_cast<std::int8_t>(((ql[l + 0] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32);
                const auto q2 = static_cast<std::int8_t>(((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32);
                const auto q3 = static_cast<std::int8_t>(((ql[l + 0] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
                const auto q4 = static_cast<std::int8_t>(((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
                y[l + 0] = d * sc[is + 0] * q1;
                y[l + 32] = d * sc[is + 2] * q2;
                y[l + 64] = d * sc[is + 4] * q3;
                y[l + 96] = d * sc[is + 6] * q4;
            }
            y += 128;
            ql += 64;
            qh += 32;
            sc += 8;
        }
    }
}

// block_q8_K: f32 d; i8 qs[256]; i16 bsums[16] (not needed to widen).
void dq_q8_K(const std::uint8_t* x, float* y, std::int64_t nb) {
    for (std::int64_t i = 0; i < nb; ++i, x += 292) {
        float d;
        std::memcpy(&d, x, 4);
        const auto* qs = reinterpret_cast<const std::int8_t*>(x + 4);
        for (int j = 0; j < QK_K; ++j) *y++ = d * qs[j];
    }
}

std::string shape_of(int rows, int cols) { return std::to_string(rows) + " x " + std::to_string(cols); }

// Rows [0, rows) in chunks on the pool (when there is one and the matrix is large enough to gain).
template <typename F>
void each_rows(ThreadPool* pool, int rows, std::size_t elems, F&& body) {
    if (pool != nullptr && elems >= (std::size_t{1} << 16))
        pool->parallel_for(rows, 16, [&](std::int64_t r0, std::int64_t r1) { body(static_cast<int>(r0), static_cast<int>(r1)); });
    else if (rows > 0)
        body(0, rows);
}

// A q8 matrix from ggml blocks of `block_bytes` (an f16 scale, then the quants), each block's 32
// int8 values written by `quants(x + 2, q)`; allocated as make_qmatrix does (8 scales of slack
// for the kernels' whole-vector reads past the last block), rows on the pool.
template <typename F>
QMatrix q8_from_blocks(int rows, int cols, const std::uint8_t* blocks, std::size_t block_bytes, WeightStorage& st,
                       ThreadPool* pool, F&& quants) {
    const std::size_t n = static_cast<std::size_t>(rows) * cols, nb = n / kQuantBlock, row_blocks = cols / kQuantBlock;
    std::uint16_t* sc = st.alloc<std::uint16_t>(nb + 8);
    std::int8_t* q8 = st.alloc<std::int8_t>(n);
    each_rows(pool, rows, n, [&](int r0, int r1) {
        for (std::size_t b = r0 * row_blocks; b < r1 * row_blocks; ++b) {
            const std::uint8_t* x = blocks + block_bytes * b;
            const int r = static_cast<int>(b / row_blocks), rb = static_cast<int>(b % row_blocks);
            std::memcpy(sc + q8_scale_index(r, rb, rows, static_cast<int>(row_blocks)), x, 2);
            std::int8_t q[kQuantBlock];
            quants(x + 2, q);
            store_q8_block(q8, r, rb, rows, cols, q);
        }
    });
    return QMatrix{.precision = Precision::Q8, .rows = rows, .cols = cols, .q8 = q8, .scales = sc};
}

// Q4_0 blocks into q8 with no loss: q = nibble - 8 (in -8..7) under the same scale.
QMatrix q4_0_as_q8(int rows, int cols, const std::uint8_t* blocks, WeightStorage& st, ThreadPool* pool) {
    return q8_from_blocks(rows, cols, blocks, 18, st, pool, [](const std::uint8_t* x, std::int8_t* q) {
        for (int j = 0; j < 16; ++j) {
            q[j] = static_cast<std::int8_t>((x[j] & 0x0F) - 8);
            q[j + 16] = static_cast<std::int8_t>((x[j] >> 4) - 8);
        }
    });
}

void check_repack(const char* what, int rows, int cols) {
    if (rows < 0 || cols <= 0 || cols % kQuantBlock != 0)
        throw Error(std::string(what) + ": a " + shape_of(rows, cols) + " matrix needs whole blocks of 32 per row");
}

}  // namespace

bool ggml_block_geometry(std::uint32_t type, std::size_t& block_elems, std::size_t& block_bytes) {
    const Geometry* g = geometry(type);
    if (g == nullptr) return false;
    block_elems = g->elems;
    block_bytes = g->bytes;
    return true;
}

bool ggml_dequantizable(std::uint32_t type) { return geometry(type) != nullptr; }

void dequantize_ggml_row(std::uint32_t type, const std::uint8_t* src, float* dst, std::int64_t n) {
    const Geometry* g = geometry(type);
    if (g == nullptr) throw Error("ggml type " + ggml_type_name(type) + " cannot be dequantized (not supported)");
    if (n < 0 || n % static_cast<std::int64_t>(g->elems) != 0)
        throw Error("ggml type " + ggml_type_name(type) + ": " + std::to_string(n) + " elements are not whole blocks of " +
                    std::to_string(g->elems));
    const std::int64_t nb = n / static_cast<std::int64_t>(g->elems);
    switch (g->type) {
        case GgmlType::F32: std::memcpy(dst, src, static_cast<std::size_t>(n) * 4); break;
        case GgmlType::F16:
            for (std::int64_t i = 0; i < n; ++i) dst[i] = f16_at(src + 2 * i);
            break;
        case GgmlType::BF16:
            for (std::int64_t i = 0; i < n; ++i) {
                std::uint16_t h;
                std::memcpy(&h, src + 2 * i, 2);
                dst[i] = bf16_to_f32(h);
            }
            break;
        case GgmlType::Q4_0: dq_q4_0(src, dst, nb); break;
        case GgmlType::Q4_1: dq_q4_1(src, dst, nb); break;
        case GgmlType::Q5_0: dq_q5_0(src, dst, nb); break;
        case GgmlType::Q5_1: dq_q5_1(src, dst, nb); break;
        case GgmlType::Q8_0: dq_q8_0(src, dst, nb); break;
        case GgmlType::Q2_K: dq_q2_K(src, dst, nb); break;
        case GgmlType::Q3_K: dq_q3_K(src, dst, nb); break;
        case GgmlType::Q4_K: dq_q4_K(src, dst, nb); break;
        case GgmlType::Q5_K: dq_q5_K(src, dst, nb); break;
        case GgmlType::Q6_K: dq_q6_K(src, dst, nb); break;
        case GgmlType::Q8_K: dq_q8_K(src, dst, nb); break;
        default: throw Error("ggml type " + ggml_type_name(type) + " cannot be dequantized (not supported)");
    }
}

QMatrix repack_q8_0(int rows, int cols, const std::uint8_t* blocks, WeightStorage& st, ThreadPool* pool) {
    check_repack("Q8_0", rows, cols);
    return q8_from_blocks(rows, cols, blocks, 34, st, pool,
                          [](const std::uint8_t* x, std::int8_t* q) { std::memcpy(q, x, kQuantBlock); });
}

QMatrix repack_q4_0(int rows, int cols, const std::uint8_t* blocks, WeightStorage& st, ThreadPool* pool) {
    check_repack("Q4_0", rows, cols);
    const std::size_t n = static_cast<std::size_t>(rows) * cols, nb = n / kQuantBlock;
    const int row_blocks = cols / kQuantBlock;
    // As make_qmatrix: slack of 8 scales and 8 blocks' bytes past the end.
    std::uint16_t* sc = st.alloc<std::uint16_t>(nb + 8);
    std::uint8_t* q4 = st.alloc<std::uint8_t>(n / 2 + 8 * kQuantBlock / 2);
    // Q4_0's 16 bytes are already a q4 block (element i low, i + 16 high, value + 8): only their
    // place changes (q4_layout.h's panels).
    each_rows(pool, rows, n, [&](int r0, int r1) {
        for (int r = r0; r < r1; ++r)
            for (int b = 0; b < row_blocks; ++b) {
                const std::uint8_t* x = blocks + 18 * (static_cast<std::size_t>(r) * row_blocks + b);
                std::memcpy(sc + q8_scale_index(r, b, rows, row_blocks), x, 2);
                store_q4_block(q4, r, b, rows, cols, x + 2);
            }
    });
    return QMatrix{.precision = Precision::Q4, .rows = rows, .cols = cols, .q4 = q4, .scales = sc};
}

QMatrix dequantize_to(Precision precision, int rows, int cols, std::uint32_t type, const std::uint8_t* data,
                      WeightStorage& st, ThreadPool* pool, std::vector<float>& tmp, const KernelOptions& options,
                      std::string_view tensor) {
    const std::string what = tensor.empty() ? ggml_type_name(type) : std::string(tensor) + " (" + ggml_type_name(type) + ")";
    const Geometry* g = geometry(type);
    if (g == nullptr) throw Error(what + ": ggml type " + ggml_type_name(type) + " is not supported");
    if (rows < 0 || cols <= 0 || cols % static_cast<int>(g->elems) != 0)
        throw Error(what + ": rows of " + std::to_string(cols) + " elements are not whole blocks of " + std::to_string(g->elems));
    if ((precision == Precision::Q8 || precision == Precision::Q4) && cols % kQuantBlock != 0) precision = Precision::F32;
    const GgmlType t = g->type;
    if (t == GgmlType::Q8_0 && precision == Precision::Q8) return repack_q8_0(rows, cols, data, st, pool);
    if (t == GgmlType::Q4_0 && precision == Precision::Q4) return repack_q4_0(rows, cols, data, st, pool);
    if (t == GgmlType::Q4_0 && precision == Precision::Q8) return q4_0_as_q8(rows, cols, data, st, pool);

    const std::size_t C = static_cast<std::size_t>(cols), n = static_cast<std::size_t>(rows) * C;
    const std::size_t row_bytes = C / g->elems * g->bytes;
    const auto addr = reinterpret_cast<std::uintptr_t>(data);
    // f32 and bf16 in the file, aligned: make_qmatrix reads them in place (a view for their own
    // precision; bf16 -> f32 and both -> q8/q4 give the bytes of the widened values).
    if (t == GgmlType::F32 && addr % alignof(float) == 0)
        return make_qmatrix(precision, rows, cols, reinterpret_cast<const float*>(data), nullptr, st, pool, options);
    if (t == GgmlType::BF16 && addr % alignof(std::uint16_t) == 0)
        return make_qmatrix(precision, rows, cols, nullptr, reinterpret_cast<const std::uint16_t*>(data), st, pool, options);

    auto widen = [&](int r0, int r1, float* out) {  // rows [r0, r1) into out (row r0 first)
        each_rows(pool, r1 - r0, static_cast<std::size_t>(r1 - r0) * C, [&](int a, int b) {
            dequantize_ggml_row(type, data + static_cast<std::size_t>(r0 + a) * row_bytes, out + a * C,
                                static_cast<std::int64_t>(b - a) * cols);
        });
    };
    QMatrix m;
    m.precision = precision;
    m.rows = rows;
    m.cols = cols;
    if (precision == Precision::F32) {
        float* w = st.alloc<float>(n);
        widen(0, rows, w);
        m.f32 = w;
        return m;
    }
    // A slab of rows at a time through tmp: about 8M elements, whole panels of 16 rows (so a
    // slab's bytes and scales are the whole matrix's, q8_layout.h and q4_layout.h).
    const int slab = static_cast<int>(std::clamp<std::size_t>((std::size_t{8} << 20) / C / kQ8Panel * kQ8Panel, kQ8Panel,
                                                              static_cast<std::size_t>(std::max(rows, kQ8Panel))));
    tmp.resize(static_cast<std::size_t>(slab) * C);
    if (precision == Precision::BF16) {
        std::uint16_t* w = st.alloc<std::uint16_t>(n);
        for (int r0 = 0; r0 < rows; r0 += slab) {
            const int r1 = std::min(rows, r0 + slab);
            widen(r0, r1, tmp.data());
            std::uint16_t* o = w + static_cast<std::size_t>(r0) * C;
            each_rows(pool, r1 - r0, static_cast<std::size_t>(r1 - r0) * C, [&](int a, int b) {
                for (std::size_t i = a * C; i < b * C; ++i) o[i] = f32_to_bf16(tmp[i]);  // as make_qmatrix rounds
            });
        }
        m.bf16 = w;
        return m;
    }
    // q8 / q4: each slab quantized by make_qmatrix itself (so the bytes are its bytes), into a
    // storage of its own that is dropped after its rows are copied into place. A row's q8/q4
    // bytes and scales do not depend on the other rows, and slabs are whole panels, so the
    // slabs join exactly.
    const std::size_t nb = n / kQuantBlock, row_blocks = C / kQuantBlock;
    const std::size_t row_q = precision == Precision::Q8 ? C : C / 2;
    std::uint16_t* sc = st.alloc<std::uint16_t>(nb + 8);
    std::int8_t* q8 = precision == Precision::Q8 ? st.alloc<std::int8_t>(n) : nullptr;
    std::uint8_t* q4 = precision == Precision::Q4 ? st.alloc<std::uint8_t>(n / 2 + 8 * kQuantBlock / 2) : nullptr;
    for (int r0 = 0; r0 < rows; r0 += slab) {
        const int r1 = std::min(rows, r0 + slab);
        widen(r0, r1, tmp.data());
        WeightStorage part;
        const QMatrix p = make_qmatrix(precision, r1 - r0, cols, tmp.data(), nullptr, part, pool, options);
        std::memcpy(sc + r0 * row_blocks, p.scales, (r1 - r0) * row_blocks * sizeof(std::uint16_t));
        if (q8) std::memcpy(q8 + r0 * row_q, p.q8, (r1 - r0) * row_q);
        if (q4) std::memcpy(q4 + r0 * row_q, p.q4, (r1 - r0) * row_q);
    }
    m.scales = sc;
    m.q8 = q8;
    m.q4 = q4;
    return m;
}

}  // namespace wp
