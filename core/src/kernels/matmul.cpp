// The matrix products' dispatch (qmatrix.h): which path a product takes (decode kernels, int8
// product, sgemm) and which kernel set runs it. Paths, limits and tiles: docs/KERNELS.md.
#include <algorithm>
#include <cstring>
#include <cblas.h>

#include "kernels/bf16_gemm.h"
#include "kernels/int8_gemm.h"
#include "kernels/kernel_choice.h"
#include "kernels/matvec_kernels.h"
#include "kernels/prepared_input.h"
#include "kernels/qmatrix.h"

namespace wp {

namespace {

// Rows [r0, r1) of y = W x on the kernel set the input was prepared for. stream: one input row
// (decoding), whose weights come from memory once, not a block of rows that several input rows
// are run against in cache.
void rows(const QMatrix& W, const PreparedInput& in, float* y, int r0, int r1, bool stream) {
#if defined(__x86_64__)
    if (in.kernels == KernelSet::Avx512) {
        switch (W.precision) {
            case Precision::F32: return rows_f32_avx512(W, in.x, y, r0, r1);
            case Precision::BF16: return rows_bf16_avx512(W, in.x, y, r0, r1);
            case Precision::Q8: return rows_q8_avx512(W, in.xu, in.xd, y, r0, r1);
            case Precision::Q4: return rows_q4_avx512(W, in.xq, in.c4, in.xd, y, r0, r1);
        }
    }
    if (in.kernels == KernelSet::Avx2) {
        switch (W.precision) {
            case Precision::F32: return rows_f32_avx2(W.f32, W.cols, in.x, y, r0, r1, stream);
            case Precision::BF16: return rows_bf16_avx2(W.bf16, W.cols, in.xp, in.x, y, r0, r1, stream);
            case Precision::Q8: return rows_q8_avx2(W, in.xq, in.xd, y, r0, r1);
            case Precision::Q4: return rows_q4_avx2(W, in.xq, in.c4, in.xd, y, r0, r1);
        }
    }
#endif
    rows_scalar(W, in.x, in.xq, in.xd, y, r0, r1);
}

// A few input rows (a short prompt, a chat turn, or one when decoding): the decode kernels, over
// blocks of 16 weight rows that stay in cache while every input row is run against them, so the
// weights are read from memory once per 64 input rows instead of being widened for sgemm. Every
// count cuts its rows as decode does (Chunks::Streams): each thread reads one stretch of the
// weights front to back and the threads finish together (docs/KERNELS.md).
void matmul_few(const QMatrix* const* Ws, const float* X, int n, float* const* Ys, int count, ThreadPool& pool,
                KernelScratch& s, const KernelOptions& chosen) {
    // Every product on this path takes the same set (prompt lookup checks its drafts here and
    // must get what decoding one token gets).
    KernelOptions options = chosen;
    if (options.decode_avx2[static_cast<std::size_t>(Ws[0]->precision)]) options.avx512 = false;
    constexpr int kBatch = 64;
    if (s.inputs.size() < static_cast<std::size_t>(std::min(n, kBatch))) s.inputs.resize(std::min(n, kBatch));
    std::int64_t total = 0;
    for (int i = 0; i < count; ++i) total += Ws[i]->rows;
    PreparedInput in[kBatch];
    for (int t0 = 0; t0 < n; t0 += kBatch) {
        const int nt = std::min(kBatch, n - t0);
        pool.parallel_for(nt, 1, [&](std::int64_t b, std::int64_t e) {
            for (std::int64_t t = b; t < e; ++t)
                in[t] = prepare_input(*Ws[0], X + static_cast<std::size_t>(t0 + t) * Ws[0]->cols, s.inputs[t], options);
        });
        const std::uint8_t* xu[kBatch];
        const std::int8_t* xq[kBatch];
        const std::int32_t* c4[kBatch];
        const float* xd[kBatch];
        for (int t = 0; t < nt; ++t) xu[t] = in[t].xu, xq[t] = in[t].xq, c4[t] = in[t].c4, xd[t] = in[t].xd;
        // Several q8 input rows on AMX: their int8 blocks side by side, as the tiles load them.
        const bool amx = nt > 1 && in[0].kernels == KernelSet::Avx512 && Ws[0]->precision == Precision::Q8 &&
                         amx_int8_available(options);
        const std::size_t ldx = static_cast<std::size_t>(Ws[0]->cols);
        if (amx) {
            if (s.amx_rows.size() < nt * ldx) s.amx_rows.resize(nt * ldx);
            for (int t = 0; t < nt; ++t) std::memcpy(s.amx_rows.data() + t * ldx, in[t].xq, ldx);
        }
        pool.parallel_for(total, 16, [&](std::int64_t b, std::int64_t e) {
            std::int64_t off = 0;
            for (int i = 0; i < count && off < e; off += Ws[i]->rows, ++i) {
                const QMatrix& W = *Ws[i];
                const std::int64_t lo = std::max(b, off), hi = std::min(e, off + W.rows);
                // One input row (decode): the whole range in one call.
                const std::int64_t step = nt == 1 ? std::max<std::int64_t>(1, hi - lo) : 16;
#if defined(__x86_64__)
                if (lo < hi && in[0].kernels != KernelSet::Scalar)
                    prefetch_rows_start(W, static_cast<int>(lo - off), static_cast<int>(hi - off));
#endif
                // Several input rows on AVX-512, q8 or q4: each weight row loaded once for them all.
                const bool multi = nt > 1 && in[0].kernels == KernelSet::Avx512 &&
                                   (W.precision == Precision::Q8 || W.precision == Precision::Q4);
                float* ys[kBatch];
                if (multi)
                    for (int t = 0; t < nt; ++t) ys[t] = Ys[i] + static_cast<std::size_t>(t0 + t) * W.rows;
                for (std::int64_t r = lo; r < hi; r += step) {
                    const int r0 = static_cast<int>(r - off), r1 = static_cast<int>(std::min(hi, r + step) - off);
#if defined(__x86_64__)
                    if (multi && amx) {
                        // Sixteen input rows per pass: the whole range in one call.
                        rows_q8_amx_multi(W, nt, s.amx_rows.data(), ldx, xd, ys, r0, static_cast<int>(hi - off));
                        break;
                    }
                    if (multi && W.precision == Precision::Q8) {
                        rows_q8_avx512_multi(W, nt, xu, xd, ys, r0, r1);
                        continue;
                    }
                    if (multi) {
                        rows_q4_avx512_multi(W, nt, xq, c4, xd, ys, r0, r1);
                        continue;
                    }
#endif
                    for (int t = 0; t < nt; ++t)
                        rows(W, in[t], Ys[i] + static_cast<std::size_t>(t0 + t) * W.rows, r0, r1, nt == 1);
                }
            }
        }, Chunks::Streams);
    }
}

// Widens tiles of weight rows and runs sgemm against each. Each sgemm call packs the input rows
// anew and synchronises BLAS's threads, so tiles are large (up to 16 MB, usually a whole matrix
// of a small model), and a matrix's rows are split evenly between them (in whole 16s), since a
// short last tile's sgemm is slow.
void matmul_sgemm_tiles(const QMatrix& W, const float* X, int n, float* Y, ThreadPool& pool, KernelScratch& s,
                        const KernelOptions& options) {
    const std::int64_t max_rows = std::max(16, std::min(W.rows, (1 << 22) / std::max(1, W.cols)));
    const std::int64_t tiles = (W.rows + max_rows - 1) / max_rows;
    const int tile_rows = static_cast<int>(std::min<std::int64_t>(W.rows, ((W.rows + tiles - 1) / tiles + 15) / 16 * 16));
    if (s.tile.size() < static_cast<std::size_t>(tile_rows) * W.cols) s.tile.resize(static_cast<std::size_t>(tile_rows) * W.cols);
    for (int r0 = 0; r0 < W.rows; r0 += tile_rows) {
        const int r1 = std::min(W.rows, r0 + tile_rows);
        float* tile = s.tile.data();
        pool.parallel_for(r1 - r0, 4, [&](std::int64_t b, std::int64_t e) {
            W.dequantize_rows(r0 + static_cast<int>(b), r0 + static_cast<int>(e), tile + b * W.cols, options);
        });
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, r1 - r0, W.cols, 1.0f, X, W.cols, tile, W.cols, 0.0f,
                    Y + r0, W.rows);
    }
}

}  // namespace

int few_rows_limit(Precision p, const KernelOptions& options) {
    if (options.few_rows_limit >= 0) return std::max(1, options.few_rows_limit);
    // The int8 product beats the decode kernels from two input rows on.
    if ((p == Precision::Q8 || p == Precision::Q4) && int8_gemm_available(options)) return 1;
    // On AMX tiles the bf16 product reads the weights in place, at about the memory's rate from two
    // input rows on (docs/KERNELS.md).
    if (p == Precision::BF16 && amx_bf16_available(options)) return 1;
    // The bf16 product repacks every weight once per call: it overtakes the decode kernels
    // between 6 and 8 input rows (docs/KERNELS.md).
    if (p == Precision::BF16 && bf16_gemm_available(options)) return 7;
    // The crossovers with sgemm (docs/KERNELS.md, "Short prompts").
    switch (p) {
        case Precision::F32: return 12;
        case Precision::BF16: return 40;
        case Precision::Q8: return 48;
        case Precision::Q4: return 192;
    }
    return 0;
}

void matvec(const QMatrix& W, const float* x, float* y, ThreadPool& pool, KernelScratch& s,
            const KernelOptions& options) {
    matmul(W, x, 1, y, pool, s, options);
}

void matmul_multi(const QMatrix* const* Ws, const float* X, int n, float* const* Ys, int count, ThreadPool& pool,
                  KernelScratch& s, const KernelOptions& options) {
    if (count <= 0 || n <= 0) return;
    bool same = true;
    for (int i = 0; i < count; ++i) same = same && Ws[i]->precision == Ws[0]->precision && Ws[i]->cols == Ws[0]->cols;
    if (same && n <= few_rows_limit(Ws[0]->precision, options))
        return matmul_few(Ws, X, n, Ys, count, pool, s, options);
    for (int i = 0; i < count; ++i) matmul(*Ws[i], X, n, Ys[i], pool, s, options);
}

void matmul(const QMatrix& W, const float* X, int n, float* Y, ThreadPool& pool, KernelScratch& s,
            const KernelOptions& options) {
    if (n <= few_rows_limit(W.precision, options)) {
        const QMatrix* Ws[1] = {&W};
        float* Ys[1] = {Y};
        return matmul_few(Ws, X, n, Ys, 1, pool, s, options);
    }
    if ((W.precision == Precision::Q8 || W.precision == Precision::Q4) && int8_gemm_available(options))
        return int8_gemm_avx512(W, X, n, Y, pool, s, options);
    if (W.precision == Precision::BF16 && W.cols % 32 == 0 && amx_bf16_available(options))
        return bf16_gemm_amx(W, X, n, Y, pool, s);
    if (W.precision == Precision::BF16 && W.cols % 32 == 0 && bf16_gemm_available(options))
        return bf16_gemm_avx512(W, X, n, Y, pool, s);
    if (W.precision == Precision::F32) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, W.rows, W.cols, 1.0f, X, W.cols, W.f32, W.cols, 0.0f, Y,
                    W.rows);
        return;
    }
    matmul_sgemm_tiles(W, X, n, Y, pool, s, options);
}

}  // namespace wp
