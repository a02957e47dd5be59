// GGUF tensor data into Windowpane's weight forms (kernels/gguf_weights.h): ggml's block formats
// widened, checked against blocks packed here from known values the way llama.cpp's
// quantize_row_*_ref packs them (ggml-common.h's structs, ggml-quants.c), hand-built blocks with
// literal expectations, the lossless Q8_0 / Q4_0 repacks under every kernel, and conversion into
// each compute precision.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "io/gguf.h"
#include "kernels/f16_vectors.h"
#include "kernels/gguf_weights.h"
#include "kernels/kernel_choice.h"
#include "kernels/qmatrix.h"
#include "kernels/thread_pool.h"
#include "scalar_kernels.h"
#include "test_support.h"
#include "wp/error.h"
#include "wp/io/float16.h"

namespace wp::test {
namespace {

constexpr std::uint32_t T(GgmlType t) { return static_cast<std::uint32_t>(t); }

void put16(std::uint8_t* p, std::uint16_t v) { std::memcpy(p, &v, 2); }
float f16(std::uint16_t h) { return f16_to_f32(h); }

// A random finite f16 (either sign, subnormals included) as bits.
std::uint16_t random_f16(std::mt19937& rng) {
    for (;;) {
        const auto h = static_cast<std::uint16_t>(rng());
        if (((h >> 10) & 0x1f) != 0x1f) return h;
    }
}

// One block of a type packed from known parts, and the floats ggml's formula gives for them.
struct Packed {
    std::vector<std::uint8_t> bytes;
    std::vector<float> want;
};

// ---- Packers: the parts laid out as the structs and quantize_row_*_ref describe ----

// Q4_0 / Q4_1: qs[j] = q[j] | q[j + 16] << 4.
Packed pack_q4(bool affine, std::uint16_t d, std::uint16_t m, const int* q) {
    Packed p;
    p.bytes.assign(affine ? 20 : 18, 0);
    put16(p.bytes.data(), d);
    if (affine) put16(p.bytes.data() + 2, m);
    std::uint8_t* qs = p.bytes.data() + (affine ? 4 : 2);
    for (int j = 0; j < 16; ++j) qs[j] = static_cast<std::uint8_t>(q[j] | (q[j + 16] << 4));
    for (int e = 0; e < 32; ++e) p.want.push_back(affine ? static_cast<float>(q[e]) * f16(d) + f16(m) : static_cast<float>(q[e] - 8) * f16(d));
    return p;
}

// Q5_0 / Q5_1: the low four bits as Q4; bit 4 of element e into bit e of the u32 qh.
Packed pack_q5(bool affine, std::uint16_t d, std::uint16_t m, const int* q) {
    Packed p;
    p.bytes.assign(affine ? 24 : 22, 0);
    put16(p.bytes.data(), d);
    if (affine) put16(p.bytes.data() + 2, m);
    std::uint32_t qh = 0;
    for (int e = 0; e < 32; ++e) qh |= static_cast<std::uint32_t>((q[e] >> 4) & 1) << e;
    std::memcpy(p.bytes.data() + (affine ? 4 : 2), &qh, 4);
    std::uint8_t* qs = p.bytes.data() + (affine ? 8 : 6);
    for (int j = 0; j < 16; ++j) qs[j] = static_cast<std::uint8_t>((q[j] & 15) | ((q[j + 16] & 15) << 4));
    for (int e = 0; e < 32; ++e) p.want.push_back(affine ? static_cast<float>(q[e]) * f16(d) + f16(m) : static_cast<float>(q[e] - 16) * f16(d));
    return p;
}

Packed pack_q8_0(std::uint16_t d, const int* q) {
    Packed p;
    p.bytes.assign(34, 0);
    put16(p.bytes.data(), d);
    for (int e = 0; e < 32; ++e) {
        p.bytes[2 + e] = static_cast<std::uint8_t>(static_cast<std::int8_t>(q[e]));
        p.want.push_back(static_cast<float>(q[e]) * f16(d));
    }
    return p;
}

// Two-bit fields as Q2_K and Q3_K store them: 128 elements per 32 bytes, element j + 32 k of a
// half in bits 2k of byte j.
void pack_2bit(const int* L, std::uint8_t* qs) {
    for (int j = 0; j < 256; j += 128)
        for (int l = 0; l < 32; ++l)
            qs[j / 4 + l] = static_cast<std::uint8_t>((L[j + l] & 3) | ((L[j + l + 32] & 3) << 2) | ((L[j + l + 64] & 3) << 4) |
                                                      ((L[j + l + 96] & 3) << 6));
}

// Q2_K: scales[16] (scale | min << 4), qs[64], d, dmin. x = d sc q - dmin mn, per 16 elements.
Packed pack_q2_K(std::uint16_t d, std::uint16_t dmin, const int* sc, const int* mn, const int* L) {
    Packed p;
    p.bytes.assign(84, 0);
    for (int s = 0; s < 16; ++s) p.bytes[s] = static_cast<std::uint8_t>(sc[s] | (mn[s] << 4));
    pack_2bit(L, p.bytes.data() + 16);
    put16(p.bytes.data() + 80, d);
    put16(p.bytes.data() + 82, dmin);
    for (int e = 0; e < 256; ++e) {
        const int s = e / 16;
        p.want.push_back(f16(d) * static_cast<float>(sc[s]) * static_cast<float>(L[e]) - f16(dmin) * static_cast<float>(mn[s]));
    }
    return p;
}

// Q3_K: hmask[32] (the high bit of element e in bit e / 32 of byte e % 32), qs[64] (the low two
// bits), scales[12] (sixteen 6-bit values l = scale + 32: low four bits of j < 8 in the low
// nibble of byte j, of j >= 8 in the high nibble of byte j - 8; the top two in byte 8 + j % 4 at
// bit 2 (j / 4)), d. q = L - 4 with L = low | high << 2 in 0..7.
Packed pack_q3_K(std::uint16_t d, const int* l6, const int* L) {
    Packed p;
    p.bytes.assign(110, 0);
    std::uint8_t* hmask = p.bytes.data();
    for (int e = 0; e < 256; ++e)
        if (L[e] > 3) hmask[e % 32] |= static_cast<std::uint8_t>(1 << (e / 32));
    pack_2bit(L, p.bytes.data() + 32);
    std::uint8_t* sc = p.bytes.data() + 96;
    for (int j = 0; j < 16; ++j) {
        if (j < 8) sc[j] |= static_cast<std::uint8_t>(l6[j] & 15);
        else sc[j - 8] |= static_cast<std::uint8_t>((l6[j] & 15) << 4);
        sc[8 + j % 4] |= static_cast<std::uint8_t>((l6[j] >> 4) << (2 * (j / 4)));
    }
    put16(p.bytes.data() + 108, d);
    for (int e = 0; e < 256; ++e) p.want.push_back(f16(d) * static_cast<float>(l6[e / 16] - 32) * static_cast<float>(L[e] - 4));
    return p;
}

// The 12 bytes of eight 6-bit scales and mins of Q4_K / Q5_K, as quantize_row_q4_K_ref packs them.
void pack_scales_k4(const int* ls, const int* lm, std::uint8_t* s) {
    for (int j = 0; j < 8; ++j) {
        if (j < 4) {
            s[j] = static_cast<std::uint8_t>(ls[j]);
            s[j + 4] = static_cast<std::uint8_t>(lm[j]);
        } else {
            s[j + 4] = static_cast<std::uint8_t>((ls[j] & 0xF) | ((lm[j] & 0xF) << 4));
            s[j - 4] |= static_cast<std::uint8_t>((ls[j] >> 4) << 6);
            s[j - 0] |= static_cast<std::uint8_t>((lm[j] >> 4) << 6);
        }
    }
}

// Q4_K: d, dmin, scales[12], qs[128] (64 elements per 32 bytes: the first 32 in the low nibbles).
// x = d ls q - dmin lm, per 32 elements.
Packed pack_q4_K(std::uint16_t d, std::uint16_t dmin, const int* ls, const int* lm, const int* L) {
    Packed p;
    p.bytes.assign(144, 0);
    put16(p.bytes.data(), d);
    put16(p.bytes.data() + 2, dmin);
    pack_scales_k4(ls, lm, p.bytes.data() + 4);
    std::uint8_t* q = p.bytes.data() + 16;
    for (int j = 0; j < 256; j += 64, q += 32)
        for (int l = 0; l < 32; ++l) q[l] = static_cast<std::uint8_t>(L[j + l] | (L[j + l + 32] << 4));
    for (int e = 0; e < 256; ++e) {
        const int s = e / 32;
        p.want.push_back(f16(d) * static_cast<float>(ls[s]) * static_cast<float>(L[e]) - f16(dmin) * static_cast<float>(lm[s]));
    }
    return p;
}

// Q5_K: d, dmin, scales[12], qh[32] (bit 4 of element 64 c + j in bit 2c of byte j, of
// 64 c + 32 + j in bit 2c + 1), qs[128] (the low four bits as Q4_K).
Packed pack_q5_K(std::uint16_t d, std::uint16_t dmin, const int* ls, const int* lm, const int* L) {
    Packed p;
    p.bytes.assign(176, 0);
    put16(p.bytes.data(), d);
    put16(p.bytes.data() + 2, dmin);
    pack_scales_k4(ls, lm, p.bytes.data() + 4);
    std::uint8_t* qh = p.bytes.data() + 16;
    std::uint8_t* ql = p.bytes.data() + 48;
    std::uint8_t m1 = 1, m2 = 2;
    for (int n = 0; n < 256; n += 64, ql += 32, m1 <<= 2, m2 <<= 2)
        for (int j = 0; j < 32; ++j) {
            if (L[n + j] > 15) qh[j] |= m1;
            if (L[n + j + 32] > 15) qh[j] |= m2;
            ql[j] = static_cast<std::uint8_t>((L[n + j] & 15) | ((L[n + j + 32] & 15) << 4));
        }
    for (int e = 0; e < 256; ++e) {
        const int s = e / 32;
        p.want.push_back(f16(d) * static_cast<float>(ls[s]) * static_cast<float>(L[e]) - f16(dmin) * static_cast<float>(lm[s]));
    }
    return p;
}

// Q6_K: ql[128], qh[64], int8 scales[16], d. Per 128 elements: ql[l] = L[l] low | L[l + 64] low
// << 4, ql[l + 32] = L[l + 32] low | L[l + 96] low << 4, qh[l] = the top two bits of L[l],
// L[l + 32], L[l + 64], L[l + 96] at bits 0, 2, 4, 6. x = d sc (L - 32), per 16 elements.
Packed pack_q6_K(std::uint16_t d, const int* sc, const int* L) {
    Packed p;
    p.bytes.assign(210, 0);
    std::uint8_t* ql = p.bytes.data();
    std::uint8_t* qh = p.bytes.data() + 128;
    for (int j = 0; j < 256; j += 128, ql += 64, qh += 32)
        for (int l = 0; l < 32; ++l) {
            ql[l] = static_cast<std::uint8_t>((L[j + l] & 15) | ((L[j + l + 64] & 15) << 4));
            ql[l + 32] = static_cast<std::uint8_t>((L[j + l + 32] & 15) | ((L[j + l + 96] & 15) << 4));
            qh[l] = static_cast<std::uint8_t>((L[j + l] >> 4) | ((L[j + l + 32] >> 4) << 2) | ((L[j + l + 64] >> 4) << 4) |
                                              ((L[j + l + 96] >> 4) << 6));
        }
    for (int s = 0; s < 16; ++s) p.bytes[192 + s] = static_cast<std::uint8_t>(static_cast<std::int8_t>(sc[s]));
    put16(p.bytes.data() + 208, d);
    for (int e = 0; e < 256; ++e) p.want.push_back(f16(d) * static_cast<float>(sc[e / 16]) * static_cast<float>(L[e] - 32));
    return p;
}

// Q8_K: f32 d, int8 qs[256], int16 bsums[16] (sums of 16 quants, unused when widening).
Packed pack_q8_K(float d, const int* q) {
    Packed p;
    p.bytes.assign(292, 0);
    std::memcpy(p.bytes.data(), &d, 4);
    for (int e = 0; e < 256; ++e) p.bytes[4 + e] = static_cast<std::uint8_t>(static_cast<std::int8_t>(q[e]));
    for (int s = 0; s < 16; ++s) {
        std::int16_t sum = 0;
        for (int e = 16 * s; e < 16 * s + 16; ++e) sum = static_cast<std::int16_t>(sum + q[e]);
        std::memcpy(p.bytes.data() + 260 + 2 * s, &sum, 2);
    }
    for (int e = 0; e < 256; ++e) p.want.push_back(d * static_cast<float>(q[e]));
    return p;
}

// A random block of `type`: every field drawn over its whole range, so every bit of the bytes
// takes both values across blocks.
Packed random_block(std::uint32_t type, std::mt19937& rng) {
    auto ints = [&](int n, int lo, int hi) {
        std::vector<int> v(n);
        std::uniform_int_distribution<int> u(lo, hi);
        for (int& x : v) x = u(rng);
        return v;
    };
    const std::uint16_t d = random_f16(rng), m = random_f16(rng);
    switch (static_cast<GgmlType>(type)) {
        case GgmlType::Q4_0: return pack_q4(false, d, m, ints(32, 0, 15).data());
        case GgmlType::Q4_1: return pack_q4(true, d, m, ints(32, 0, 15).data());
        case GgmlType::Q5_0: return pack_q5(false, d, m, ints(32, 0, 31).data());
        case GgmlType::Q5_1: return pack_q5(true, d, m, ints(32, 0, 31).data());
        case GgmlType::Q8_0: return pack_q8_0(d, ints(32, -128, 127).data());
        case GgmlType::Q2_K: return pack_q2_K(d, m, ints(16, 0, 15).data(), ints(16, 0, 15).data(), ints(256, 0, 3).data());
        case GgmlType::Q3_K: return pack_q3_K(d, ints(16, 0, 63).data(), ints(256, 0, 7).data());
        case GgmlType::Q4_K: return pack_q4_K(d, m, ints(8, 0, 63).data(), ints(8, 0, 63).data(), ints(256, 0, 15).data());
        case GgmlType::Q5_K: return pack_q5_K(d, m, ints(8, 0, 63).data(), ints(8, 0, 63).data(), ints(256, 0, 31).data());
        case GgmlType::Q6_K: return pack_q6_K(d, ints(16, -128, 127).data(), ints(256, 0, 63).data());
        case GgmlType::Q8_K: return pack_q8_K(std::uniform_real_distribution<float>(-1e-2f, 1e-2f)(rng), ints(256, -128, 127).data());
        default: break;
    }
    ADD_FAILURE() << "no packer for " << ggml_type_name(type);
    return {};
}

const std::vector<std::uint32_t> kBlockTypes = {T(GgmlType::Q4_0), T(GgmlType::Q4_1), T(GgmlType::Q5_0), T(GgmlType::Q5_1),
                                                T(GgmlType::Q8_0), T(GgmlType::Q2_K), T(GgmlType::Q3_K), T(GgmlType::Q4_K),
                                                T(GgmlType::Q5_K), T(GgmlType::Q6_K), T(GgmlType::Q8_K)};

// Bit-exact comparison (NaN-safe; -0 and +0 told apart).
void expect_same_floats(const float* got, const float* want, std::size_t n, const std::string& what) {
    for (std::size_t i = 0; i < n; ++i) {
        std::uint32_t a, b;
        std::memcpy(&a, got + i, 4);
        std::memcpy(&b, want + i, 4);
        if (a != b) {
            ADD_FAILURE() << what << ": element " << i << " is " << got[i] << " (0x" << std::hex << a << "), expected "
                          << want[i] << " (0x" << b << ")";
            return;
        }
    }
}

// Many random blocks of each type, widened in one call, against the packers' values.
TEST(GgufWeights, RandomBlocksMatchTheirParts) {
    std::mt19937 rng(42);
    for (std::uint32_t type : kBlockTypes) {
        SCOPED_TRACE(ggml_type_name(type));
        std::vector<std::uint8_t> bytes;
        std::vector<float> want;
        for (int b = 0; b < 300; ++b) {
            const Packed p = random_block(type, rng);
            bytes.insert(bytes.end(), p.bytes.begin(), p.bytes.end());
            want.insert(want.end(), p.want.begin(), p.want.end());
        }
        std::size_t be = 0, bb = 0;
        ASSERT_TRUE(ggml_block_geometry(type, be, bb));
        ASSERT_EQ(bytes.size(), 300 * bb);  // the struct sizes of ggml-common.h
        ASSERT_EQ(want.size(), 300 * be);
        std::vector<float> got(want.size());
        dequantize_ggml_row(type, bytes.data(), got.data(), static_cast<std::int64_t>(got.size()));
        expect_same_floats(got.data(), want.data(), got.size(), ggml_type_name(type));
    }
}

// Hand-built blocks, each value worked out by hand from the struct descriptions: nibbles 0 and
// 15, the fifth and sixth bits, signed scales, and the 6-bit scales that borrow their top bits.
TEST(GgufWeights, HandBuiltBlocks) {
    std::vector<float> y(256);
    auto widen = [&](GgmlType t, const std::vector<std::uint8_t>& b, int n) { dequantize_ggml_row(T(t), b.data(), y.data(), n); };
    {  // Q4_0, d = 1: byte 0 = 0xF0 -> e0 = 0 - 8, e16 = 15 - 8; byte 1 = 0x0F -> e1 = 7, e17 = -8.
        std::vector<std::uint8_t> b(18, 0x88);
        put16(b.data(), 0x3C00);
        b[2] = 0xF0, b[3] = 0x0F;
        widen(GgmlType::Q4_0, b, 32);
        EXPECT_EQ(y[0], -8.0f); EXPECT_EQ(y[16], 7.0f); EXPECT_EQ(y[1], 7.0f); EXPECT_EQ(y[17], -8.0f); EXPECT_EQ(y[2], 0.0f);
    }
    {  // Q4_1, d = 0.5, m = -1: nibble 0 -> -1, 15 -> 6.5.
        std::vector<std::uint8_t> b(20, 0);
        put16(b.data(), 0x3800), put16(b.data() + 2, 0xBC00);
        b[4] = 0xF0;
        widen(GgmlType::Q4_1, b, 32);
        EXPECT_EQ(y[0], -1.0f); EXPECT_EQ(y[16], 6.5f); EXPECT_EQ(y[1], -1.0f);
    }
    {  // Q5_0, d = -2: qh bit 0 and bit 16 set; qs[0] = 0x0F: e0 = (15 | 16) - 16 = 15 -> -30,
       // e16 = (0 | 16) - 16 = 0, e1 = 0 - 16 -> 32, e31 (bit 31 set, nibble 0xF of qs[15]) = 15 -> -30.
        std::vector<std::uint8_t> b(22, 0);
        put16(b.data(), 0xC000);
        const std::uint32_t qh = 1u | (1u << 16) | (1u << 31);
        std::memcpy(b.data() + 2, &qh, 4);
        b[6] = 0x0F, b[6 + 15] = 0xF0;
        widen(GgmlType::Q5_0, b, 32);
        EXPECT_EQ(y[0], -30.0f); EXPECT_EQ(y[16], 0.0f); EXPECT_EQ(y[1], 32.0f); EXPECT_EQ(y[31], -30.0f); EXPECT_EQ(y[15], 32.0f);
    }
    {  // Q5_1, d = 1, m = 0.25: e0 = 31 -> 31.25, e1 = 0 -> 0.25.
        std::vector<std::uint8_t> b(24, 0);
        put16(b.data(), 0x3C00), put16(b.data() + 2, 0x3400);
        const std::uint32_t qh = 1u;
        std::memcpy(b.data() + 4, &qh, 4);
        b[8] = 0x0F;
        widen(GgmlType::Q5_1, b, 32);
        EXPECT_EQ(y[0], 31.25f); EXPECT_EQ(y[1], 0.25f);
    }
    {  // Q8_0, d = 2: -128 -> -256, 127 -> 254, -1 -> -2.
        std::vector<std::uint8_t> b(34, 0);
        put16(b.data(), 0x4000);
        b[2] = 0x80, b[3] = 0x7F, b[4] = 0xFF;
        widen(GgmlType::Q8_0, b, 32);
        EXPECT_EQ(y[0], -256.0f); EXPECT_EQ(y[1], 254.0f); EXPECT_EQ(y[2], -2.0f); EXPECT_EQ(y[3], 0.0f);
    }
    {  // Q2_K, d = 1, dmin = 0.5. scales[0] = 0x2F (15, min 2); qs[0] = 0b11000011: e0 = 3 ->
       // 15*3 - 1 = 44; e32 (bits 2-3, sub-block 2, scales[2] = 0x10: 0, min 1) -> -0.5; e96 (bits
       // 6-7, sub-block 6, scales[6] = 0x01) -> 3; e128 (second half: qs[32]) sub-block 8.
        std::vector<std::uint8_t> b(84, 0);
        b[0] = 0x2F, b[2] = 0x10, b[6] = 0x01, b[8] = 0x03;
        b[16] = 0xC3, b[16 + 32] = 0x02;
        put16(b.data() + 80, 0x3C00), put16(b.data() + 82, 0x3800);
        widen(GgmlType::Q2_K, b, 256);
        EXPECT_EQ(y[0], 44.0f); EXPECT_EQ(y[32], -0.5f); EXPECT_EQ(y[64], 0.0f); EXPECT_EQ(y[96], 3.0f); EXPECT_EQ(y[128], 6.0f);
    }
    {  // Q3_K, d = 1. Scales default to l = 32 (0): bytes 8-11 = 0xAA. Sub-block 0: l = 63 (31):
       // low nibble of byte 0 = 15, bits 0-1 of byte 8 = 3. Sub-block 9: l = 0 (-32): high nibble
       // of byte 1 = 0, bits 4-5 of byte 9 = 0. e0: low bits 3, hmask[0] bit 0 set -> 3 -> 93;
       // e1: 0, no high bit -> -4 -> -124; e144 (qs[48], hmask[16] bit 4) 0 -> -4 -> 128;
       // e145 (qs[49] = 2, hmask[17] bit 4 set) -> 2 -> -64.
        std::vector<std::uint8_t> b(110, 0);
        b[0] = 0x01, b[17] = 0x10;
        b[32] = 0x03, b[32 + 49] = 0x02;
        for (int i = 8; i < 12; ++i) b[96 + i] = 0xAA;
        b[96 + 0] = 0x0F, b[96 + 8] = 0xAB, b[96 + 9] = 0x8A;
        put16(b.data() + 108, 0x3C00);
        widen(GgmlType::Q3_K, b, 256);
        EXPECT_EQ(y[0], 93.0f); EXPECT_EQ(y[1], -124.0f); EXPECT_EQ(y[144], 128.0f); EXPECT_EQ(y[145], -64.0f); EXPECT_EQ(y[16], 0.0f);
    }
    {  // Q4_K, d = 1, dmin = 1. scales[1] = 0xC3 (sub-block 1 scale 3; top bits 3 = sub-block 5's
       // scale bits 4-5), scales[5] = 0x84 (sub-block 1 min 4; top bits 2 = sub-block 5's min bits
       // 4-5), scales[9] = 0x21 (sub-block 5: scale 1 | 48 = 49, min 2 | 32 = 34). qs[0] = 0xF0:
       // e0 (sub-block 0, all zero) -> 0, e32 (high nibble, sub-block 1) -> 3*15 - 4 = 41;
       // qs[64] = 0xF0: e128 (sub-block 4) -> 0, e160 (high nibble, sub-block 5) -> 49*15 - 34 = 701.
        std::vector<std::uint8_t> b(144, 0);
        put16(b.data(), 0x3C00), put16(b.data() + 2, 0x3C00);
        b[4 + 1] = 0xC3, b[4 + 5] = 0x84, b[4 + 9] = 0x21;
        b[16] = 0xF0, b[16 + 64] = 0xF0;
        widen(GgmlType::Q4_K, b, 256);
        EXPECT_EQ(y[0], 0.0f); EXPECT_EQ(y[32], 41.0f); EXPECT_EQ(y[33], -4.0f); EXPECT_EQ(y[128], 0.0f); EXPECT_EQ(y[160], 701.0f);
        EXPECT_EQ(y[161], -34.0f);
    }
    {  // Q5_K with the Q4_K scales above; qh[0] = 0b00100010 sets bit 4 of e32 (bit 1) and e160
       // (bit 5): e32 -> 3*31 - 4 = 89, e160 -> 49*31 - 34 = 1485; qh[1] bit 4 -> e129 (sub-block 4) 16*0.
        std::vector<std::uint8_t> b(176, 0);
        put16(b.data(), 0x3C00), put16(b.data() + 2, 0x3C00);
        b[4 + 1] = 0xC3, b[4 + 5] = 0x84, b[4 + 9] = 0x21;
        b[16] = 0x22, b[17] = 0x10;
        b[48] = 0xF0, b[48 + 64] = 0xF0;
        widen(GgmlType::Q5_K, b, 256);
        EXPECT_EQ(y[32], 89.0f); EXPECT_EQ(y[160], 1485.0f); EXPECT_EQ(y[0], 0.0f); EXPECT_EQ(y[129], 0.0f); EXPECT_EQ(y[33], -4.0f);
    }
    {  // Q6_K, d = 1, scales[0] = -2, [2] = 3, [4] = 1, [8] = -1. ql[0] = 0x0F, qh[0] = 3: e0 =
       // 15 | 3 << 4 = 63 -> 31 * -2 = -62; e32 (ql[32] = 0, sub-block 2) -> -32 * 3 = -96; e64
       // (ql[0] high nibble 0, sub-block 4) -> -32; the second half: e128 (ql[64] = 0, qh[32] bits
       // 0-1 = 2 -> 32 - 32 = 0), e129 (ql[65] = 1, qh[33] = 0 -> -31, sub-block 8 -> 31).
        std::vector<std::uint8_t> b(210, 0);
        b[0] = 0x0F, b[128] = 0x03;
        b[65] = 0x01, b[128 + 32] = 0x02;
        b[192 + 0] = 0xFE, b[192 + 2] = 3, b[192 + 4] = 1, b[192 + 8] = 0xFF;
        put16(b.data() + 208, 0x3C00);
        widen(GgmlType::Q6_K, b, 256);
        EXPECT_EQ(y[0], -62.0f); EXPECT_EQ(y[32], -96.0f); EXPECT_EQ(y[64], -32.0f); EXPECT_EQ(y[128], 0.0f); EXPECT_EQ(y[129], 31.0f);
    }
    {  // Q8_K, d = 0.25 (f32): -128 -> -32.
        std::vector<std::uint8_t> b(292, 0);
        const float d = 0.25f;
        std::memcpy(b.data(), &d, 4);
        b[4] = 0x80, b[5] = 0x04;
        widen(GgmlType::Q8_K, b, 256);
        EXPECT_EQ(y[0], -32.0f); EXPECT_EQ(y[1], 1.0f); EXPECT_EQ(y[2], 0.0f);
    }
    {  // F16 (subnormal, negative), BF16, F32.
        std::vector<std::uint8_t> b(4);
        put16(b.data(), 0x0001), put16(b.data() + 2, 0xC000);
        widen(GgmlType::F16, b, 2);
        EXPECT_EQ(y[0], std::ldexp(1.0f, -24)); EXPECT_EQ(y[1], -2.0f);
        put16(b.data(), 0x3F80), put16(b.data() + 2, 0xC040);
        widen(GgmlType::BF16, b, 2);
        EXPECT_EQ(y[0], 1.0f); EXPECT_EQ(y[1], -3.0f);
        const float f = -1.5f;
        std::memcpy(b.data(), &f, 4);
        widen(GgmlType::F32, b, 1);
        EXPECT_EQ(y[0], -1.5f);
    }
}

TEST(GgufWeights, UnsupportedTypesAndPartialBlocksAreErrors) {
    std::vector<std::uint8_t> b(1024);
    std::vector<float> y(1024);
    EXPECT_NE(error_of([&] { dequantize_ggml_row(T(GgmlType::IQ2_XXS), b.data(), y.data(), 256); }).find("IQ2_XXS"), std::string::npos);
    EXPECT_NE(error_of([&] { dequantize_ggml_row(99, b.data(), y.data(), 256); }).find("type 99"), std::string::npos);
    EXPECT_NE(error_of([&] { dequantize_ggml_row(T(GgmlType::Q4_K), b.data(), y.data(), 100); }).find("Q4_K"), std::string::npos);
    EXPECT_FALSE(ggml_dequantizable(T(GgmlType::Q8_1)));
    EXPECT_TRUE(ggml_dequantizable(T(GgmlType::Q6_K)));
    WeightStorage st;
    std::vector<float> tmp;
    const std::string e = error_of([&] { dequantize_to(Precision::Q8, 2, 128, T(GgmlType::Q4_K), b.data(), st, nullptr, tmp, {}, "blk.0.ffn_up.weight"); });
    EXPECT_NE(e.find("blk.0.ffn_up.weight"), std::string::npos) << e;
    EXPECT_NE(e.find("Q4_K"), std::string::npos) << e;
    EXPECT_NE(error_of([&] { dequantize_to(Precision::F32, 1, 32, T(GgmlType::IQ4_NL), b.data(), st, nullptr, tmp, {}, "x"); }).find("IQ4_NL"),
              std::string::npos);
    EXPECT_NE(error_of([&] { repack_q8_0(1, 48, b.data(), st); }).find("Q8_0"), std::string::npos);
}

// Random Q8_0 / Q4_0 matrices as a file would hold them (rows of blocks).
std::vector<std::uint8_t> random_matrix(std::uint32_t type, int rows, int cols, std::mt19937& rng) {
    std::vector<std::uint8_t> out;
    const std::size_t blocks = static_cast<std::size_t>(rows) * cols / 32;
    for (std::size_t b = 0; b < blocks; ++b) {
        Packed p = random_block(type, rng);
        put16(p.bytes.data(), f32_to_f16(std::uniform_real_distribution<float>(-0.05f, 0.05f)(rng)));  // sane scales
        out.insert(out.end(), p.bytes.begin(), p.bytes.end());
    }
    return out;
}

// Each row quantized with Windowpane's own scheme would differ; the repack must instead give
// exactly ggml's floats, on the scalar and the vector widening alike.
TEST(GgufWeights, RepackIsLossless) {
    std::mt19937 rng(7);
    ThreadPool pool(3);
    for (std::uint32_t type : {T(GgmlType::Q8_0), T(GgmlType::Q4_0)})
        for (auto [rows, cols] : std::vector<std::pair<int, int>>{{1, 32}, {7, 64}, {13, 96}, {3, 4096}, {37, 32}, {259, 320}, {5, 544}}) {
            SCOPED_TRACE(ggml_type_name(type) + " " + std::to_string(rows) + "x" + std::to_string(cols));
            const auto data = random_matrix(type, rows, cols, rng);
            std::vector<float> want(static_cast<std::size_t>(rows) * cols), got(want.size());
            dequantize_ggml_row(type, data.data(), want.data(), static_cast<std::int64_t>(want.size()));
            WeightStorage st;
            const bool q8 = type == T(GgmlType::Q8_0);
            const QMatrix m = q8 ? repack_q8_0(rows, cols, data.data(), st) : repack_q4_0(rows, cols, data.data(), st);
            const QMatrix pooled = q8 ? repack_q8_0(rows, cols, data.data(), st, &pool) : repack_q4_0(rows, cols, data.data(), st, &pool);
            ASSERT_EQ(m.precision, q8 ? Precision::Q8 : Precision::Q4);
            for (bool scalar : {true, false}) {
                m.dequantize_rows(0, rows, got.data(), scalar_kernels(scalar));
                expect_same_floats(got.data(), want.data(), got.size(), scalar ? "scalar widening" : "vector widening");
            }
            const std::size_t qbytes = want.size() / (q8 ? 1 : 2);
            EXPECT_EQ(0, std::memcmp(m.scales, pooled.scales, want.size() / 32 * 2));
            EXPECT_EQ(0, std::memcmp(q8 ? static_cast<const void*>(m.q8) : m.q4, q8 ? static_cast<const void*>(pooled.q8) : pooled.q4, qbytes));
            // dequantize_to takes the same path.
            std::vector<float> tmp;
            const QMatrix via = dequantize_to(q8 ? Precision::Q8 : Precision::Q4, rows, cols, type, data.data(), st, &pool, tmp);
            EXPECT_EQ(0, std::memcmp(q8 ? static_cast<const void*>(m.q8) : m.q4, q8 ? static_cast<const void*>(via.q8) : via.q4, qbytes));
            EXPECT_TRUE(tmp.empty());  // no temporary
            // Q4_0 into q8 is lossless too.
            if (!q8) {
                const QMatrix as8 = dequantize_to(Precision::Q8, rows, cols, type, data.data(), st, &pool, tmp);
                ASSERT_EQ(as8.precision, Precision::Q8);
                as8.dequantize_rows(0, rows, got.data());
                expect_same_floats(got.data(), want.data(), got.size(), "Q4_0 as q8");
            }
        }
}

// Relative error bound of a quantized product: the input is rounded to int8 blocks too, so each
// block contributes up to |w|_1 max|x| / 254 (as in matmul_test).
float quant_bound(const float* w, const float* x, int cols) {
    float bound = 0;
    for (int b = 0; b < cols / 32; ++b) {
        float amax = 0, wsum = 0;
        for (int i = 0; i < 32; ++i) {
            amax = std::max(amax, std::fabs(x[b * 32 + i]));
            wsum += std::fabs(w[b * 32 + i]);
        }
        bound += wsum * amax / 254.0f;
    }
    return bound * 1.01f + 1e-5f;
}

std::vector<KernelOptions> every_kernel_set() {
    std::vector<KernelOptions> sets{scalar_kernels()};
    KernelOptions avx2;  // and sgemm on widened tiles for longer prompts
    avx2.avx512 = false;
    avx2.int8_gemm = false;
    sets.push_back(avx2);
    if (avx512_decode_kernels(KernelOptions{})) sets.push_back(KernelOptions{});
    return sets;
}

// The repacked matrices under every kernel: decode (scalar, AVX2, AVX-512), short prompts on the
// decode kernels, and longer prompts (the int8 product where there is one, else sgemm tiles),
// against the double-precision reference. Q8_0 blocks full of -128 are included: Windowpane's
// quantizer never makes them, ggml's files may hold them, and every kernel must read them.
TEST(GgufWeights, RepackedMatricesUnderEveryKernel) {
    std::mt19937 rng(11);
    ThreadPool pool(2);
    for (std::uint32_t type : {T(GgmlType::Q8_0), T(GgmlType::Q4_0)})
        for (bool extremes : {false, true})
            for (auto [rows, cols] : std::vector<std::pair<int, int>>{{1, 32}, {7, 64}, {33, 96}, {19, 4096}, {50, 160}}) {
                if (extremes && type != T(GgmlType::Q8_0)) continue;
                SCOPED_TRACE(ggml_type_name(type) + (extremes ? " -128/127" : "") + " " + std::to_string(rows) + "x" + std::to_string(cols));
                auto data = random_matrix(type, rows, cols, rng);
                if (extremes)  // every quant -128 or 127, and the input at its extremes below
                    for (std::size_t b = 0; b < data.size() / 34; ++b)
                        for (int i = 0; i < 32; ++i) data[34 * b + 2 + i] = (i % 3 == 2) ? 0x7F : 0x80;
                WeightStorage st;
                const QMatrix m = type == T(GgmlType::Q8_0) ? repack_q8_0(rows, cols, data.data(), st) : repack_q4_0(rows, cols, data.data(), st);
                std::vector<float> w(static_cast<std::size_t>(rows) * cols);
                dequantize_ggml_row(type, data.data(), w.data(), static_cast<std::int64_t>(w.size()));
                const int n = 6;  // input rows
                auto X = randn(static_cast<std::size_t>(n) * cols, rows + cols);
                // Extremes: x = -1 (quantized to -127) where w = -128 and 1 where w = 127, so every
                // pair of products is 2 x 128 x 127 = 32512, the most AVX2's 16-bit pair sums meet.
                if (extremes)
                    for (std::size_t i = 0; i < X.size(); ++i) X[i] = (i % cols % 32 % 3 == 2) ? 1.0f : -1.0f;
                // The reference from ggml's floats (not from the repacked matrix's layout), and the
                // scalar decode kernel's result: the int8 paths round the input the same way and sum
                // each block exactly, so they meet it up to float summation order.
                std::vector<float> ref(static_cast<std::size_t>(n) * rows), scalar(ref.size()), mag(ref.size());
                KernelScratch ks0;
                for (int t = 0; t < n; ++t) {
                    const float* x = X.data() + static_cast<std::size_t>(t) * cols;
                    for (int r = 0; r < rows; ++r) {
                        double s = 0, a = 0;
                        for (int i = 0; i < cols; ++i) {
                            s += static_cast<double>(w[static_cast<std::size_t>(r) * cols + i]) * x[i];
                            a += std::fabs(static_cast<double>(w[static_cast<std::size_t>(r) * cols + i]) * x[i]);
                        }
                        ref[static_cast<std::size_t>(t) * rows + r] = static_cast<float>(s);
                        mag[static_cast<std::size_t>(t) * rows + r] = static_cast<float>(a);
                    }
                    matvec(m, x, scalar.data() + static_cast<std::size_t>(t) * rows, pool, ks0, scalar_kernels());
                }
                for (const KernelOptions& base : every_kernel_set())
                    for (int limit : {-1, 1, n}) {  // the measured limits; 1: the int8 product or sgemm tiles; n: the decode kernels
                        KernelOptions o = base;
                        o.few_rows_limit = limit;
                        SCOPED_TRACE(std::string(o.force_scalar ? "scalar" : o.avx512 ? "AVX-512" : "AVX2") + " few_rows_limit " + std::to_string(limit));
                        const bool int8_input = n <= few_rows_limit(m.precision, o) || int8_gemm_available(o);  // else sgemm on f32 input
                        KernelScratch ks;
                        std::vector<float> y(ref.size()), y1(rows);
                        matmul(m, X.data(), n, y.data(), pool, ks, o);
                        matvec(m, X.data(), y1.data(), pool, ks, o);
                        for (int t = 0; t < n; ++t)
                            for (int r = 0; r < rows; ++r) {
                                const std::size_t i = static_cast<std::size_t>(t) * rows + r;
                                const float tol = quant_bound(w.data() + static_cast<std::size_t>(r) * cols, X.data() + static_cast<std::size_t>(t) * cols, cols);
                                const float tight = 1e-5f * mag[i] + 1e-6f;
                                ASSERT_NEAR(y[i], ref[i], tol) << "input row " << t << ", row " << r;
                                if (int8_input) {
                                    ASSERT_NEAR(y[i], scalar[i], tight) << "input row " << t << ", row " << r;
                                }
                                if (t == 0) {
                                    ASSERT_NEAR(y1[r], ref[r], tol) << "matvec row " << r;
                                    ASSERT_NEAR(y1[r], scalar[r], tight) << "matvec row " << r;
                                }
                            }
                    }
            }
}

// Every other type into each precision: the bytes make_qmatrix gives for the widened matrix,
// slab by slab or whole; f32 and bf16 in place where they can be.
TEST(GgufWeights, DequantizeToMatchesMakeQmatrix) {
    std::mt19937 rng(3);
    ThreadPool pool(2);
    auto check = [&](std::uint32_t type, int rows, int cols, const std::uint8_t* at) {
        std::vector<float> wide(static_cast<std::size_t>(rows) * cols);
        dequantize_ggml_row(type, at, wide.data(), static_cast<std::int64_t>(wide.size()));
        for (Precision prec : {Precision::F32, Precision::BF16, Precision::Q8, Precision::Q4}) {
            SCOPED_TRACE(ggml_type_name(type) + " " + std::to_string(rows) + "x" + std::to_string(cols) + " into " + precision_name(prec));
            WeightStorage st, st2;
            std::vector<float> tmp;
            const QMatrix got = dequantize_to(prec, rows, cols, type, at, st, &pool, tmp);
            const QMatrix want = make_qmatrix(prec, rows, cols, wide.data(), nullptr, st2);
            ASSERT_EQ(got.precision, want.precision);
            EXPECT_LE(tmp.size(), (std::size_t{8} << 20) + static_cast<std::size_t>(cols));
            const std::size_t n = wide.size();
            switch (want.precision) {
                case Precision::F32: EXPECT_EQ(0, std::memcmp(got.f32, want.f32, n * 4)); break;
                case Precision::BF16: EXPECT_EQ(0, std::memcmp(got.bf16, want.bf16, n * 2)); break;
                case Precision::Q8:
                    EXPECT_EQ(0, std::memcmp(got.scales, want.scales, n / 32 * 2));
                    EXPECT_EQ(0, std::memcmp(got.q8, want.q8, n));
                    break;
                case Precision::Q4:
                    EXPECT_EQ(0, std::memcmp(got.scales, want.scales, n / 32 * 2));
                    EXPECT_EQ(0, std::memcmp(got.q4, want.q4, n / 2));
                    break;
            }
        }
    };
    for (std::uint32_t type : kBlockTypes) {
        if (type == T(GgmlType::Q8_0) || type == T(GgmlType::Q4_0)) continue;  // repacked: above
        std::size_t be = 0, bb = 0;
        ggml_block_geometry(type, be, bb);
        for (auto [rows, cols] : std::vector<std::pair<int, int>>{{3, 256}, {17, 512}, {5, 4096}}) {
            std::vector<std::uint8_t> data;
            for (std::size_t b = 0; b < static_cast<std::size_t>(rows) * cols / be; ++b) {
                Packed p = random_block(type, rng);
                // Sane magnitudes (random f16 scales reach 65504 and overflow the products).
                if (type != T(GgmlType::Q8_K)) {
                    const std::size_t at = type == T(GgmlType::Q2_K) ? 80 : type == T(GgmlType::Q3_K) ? 108 : type == T(GgmlType::Q6_K) ? 208 : 0;
                    put16(p.bytes.data() + at, f32_to_f16(std::uniform_real_distribution<float>(-0.01f, 0.01f)(rng)));
                    if (type == T(GgmlType::Q2_K) || type == T(GgmlType::Q4_K) || type == T(GgmlType::Q5_K) || type == T(GgmlType::Q4_1) ||
                        type == T(GgmlType::Q5_1))
                        put16(p.bytes.data() + at + 2, f32_to_f16(std::uniform_real_distribution<float>(0.0f, 0.01f)(rng)));
                }
                data.insert(data.end(), p.bytes.begin(), p.bytes.end());
            }
            check(type, rows, cols, data.data());
        }
    }
    // F16, F32 and BF16, aligned and not; rows of any length (q8/q4 stay f32 for 40 columns).
    for (std::uint32_t type : {T(GgmlType::F16), T(GgmlType::F32), T(GgmlType::BF16)})
        for (auto [rows, cols] : std::vector<std::pair<int, int>>{{9, 40}, {6, 96}, {300, 256}}) {
            const auto v = randn(static_cast<std::size_t>(rows) * cols, rows + cols);
            const std::size_t es = type == T(GgmlType::F32) ? 4 : 2;
            std::vector<std::uint8_t> data(v.size() * es + 1);
            for (std::size_t i = 0; i < v.size(); ++i) {
                if (type == T(GgmlType::F32)) std::memcpy(data.data() + 4 * i, &v[i], 4);
                else put16(data.data() + 2 * i, type == T(GgmlType::F16) ? f32_to_f16(v[i]) : f32_to_bf16(v[i]));
            }
            check(type, rows, cols, data.data());
            std::vector<std::uint8_t> shifted(data.size());
            std::memcpy(shifted.data() + 1, data.data(), data.size() - 1);
            check(type, rows, cols, shifted.data() + 1);  // misaligned: widened
        }
    // In place: f32 and bf16 into their own precision are the file's pointer.
    std::vector<float> f(64 * 32, 0.5f);
    std::vector<std::uint16_t> h(64 * 32, 0x3F00);
    WeightStorage st;
    std::vector<float> tmp;
    EXPECT_EQ(dequantize_to(Precision::F32, 64, 32, T(GgmlType::F32), reinterpret_cast<const std::uint8_t*>(f.data()), st, nullptr, tmp).f32, f.data());
    EXPECT_EQ(dequantize_to(Precision::BF16, 64, 32, T(GgmlType::BF16), reinterpret_cast<const std::uint8_t*>(h.data()), st, nullptr, tmp).bf16,
              h.data());
}

// A matrix larger than one slab (8M elements): the slabs join into make_qmatrix's bytes.
TEST(GgufWeights, SlabsJoinExactly) {
    std::mt19937 rng(5);
    ThreadPool pool(2);
    const int rows = 33000, cols = 256;  // 8.4M elements: two slabs of 32768 rows and less
    std::vector<std::uint8_t> data;
    data.reserve(static_cast<std::size_t>(rows) * 210);
    for (int r = 0; r < rows; ++r) {
        Packed p = random_block(T(GgmlType::Q6_K), rng);
        put16(p.bytes.data() + 208, f32_to_f16(std::uniform_real_distribution<float>(-0.01f, 0.01f)(rng)));
        data.insert(data.end(), p.bytes.begin(), p.bytes.end());
    }
    std::vector<float> wide(static_cast<std::size_t>(rows) * cols);
    dequantize_ggml_row(T(GgmlType::Q6_K), data.data(), wide.data(), static_cast<std::int64_t>(wide.size()));
    for (Precision prec : {Precision::Q8, Precision::Q4}) {
        SCOPED_TRACE(precision_name(prec));
        WeightStorage st, st2;
        std::vector<float> tmp;
        const QMatrix got = dequantize_to(prec, rows, cols, T(GgmlType::Q6_K), data.data(), st, &pool, tmp);
        EXPECT_LT(tmp.size(), wide.size());
        const QMatrix want = make_qmatrix(prec, rows, cols, wide.data(), nullptr, st2, &pool);
        EXPECT_EQ(0, std::memcmp(got.scales, want.scales, wide.size() / 32 * 2));
        if (prec == Precision::Q8) EXPECT_EQ(0, std::memcmp(got.q8, want.q8, wide.size()));
        else EXPECT_EQ(0, std::memcmp(got.q4, want.q4, wide.size() / 2));
    }
}

}  // namespace
}  // namespace wp::test
