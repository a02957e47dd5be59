// Scratch of the matrix products (qmatrix.h), owned by the caller and reused across
// calls: every buffer grows to the largest product it meets and then stays, so decoding
// allocates nothing per token. One KernelScratch per forward pass in flight (a ForwardScratch holds
// one); it is not shared between threads that run products at the same time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <vector>

namespace wp {

// Storage on 64-byte boundaries: the vector kernels read the input rows 64 bytes at a time, and a
// load that straddles two cache lines costs two (docs/KERNELS.md, "The input row").
template <class T>
struct CacheLineAllocator {
    using value_type = T;
    CacheLineAllocator() = default;
    template <class U>
    CacheLineAllocator(const CacheLineAllocator<U>&) {}
    T* allocate(std::size_t n) { return static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t{64})); }
    void deallocate(T* p, std::size_t) { ::operator delete(p, std::align_val_t{64}); }
    template <class U>
    bool operator==(const CacheLineAllocator<U>&) const { return true; }
};

template <class T>
using LineVector = std::vector<T, CacheLineAllocator<T>>;

// One input row in the forms the decode kernels read (cols = the matrix's columns, nb = cols / 32
// rounded up to a multiple of 16).
struct InputScratch {
    LineVector<std::int8_t> xq;   // q8/q4: [nb * 32] the row as int8 blocks, zero past cols
    LineVector<float> xd;         // q8/q4: [nb] their scales, zero past cols / 32
    LineVector<std::uint8_t> xu;  // q8, AVX-512: [nb * 32] xq + 128
    LineVector<float> xp;         // bf16, AVX2: [cols] even then odd elements of each 16
    LineVector<std::int32_t> c4;  // q4: [nb] -8 x each block's sum
};

// What one pool thread uses inside a parallel loop, indexed by its slot
// (ThreadPool::parallel_for_slots) instead of thread_local buffers.
struct ThreadScratch {
    std::vector<std::byte> packed;     // int8 and bf16 products: 32 weight rows repacked (AMX: a last
                                       // block of weight rows padded), + alignment

    // `packed` from its first 64-byte boundary, room for what reserve_packed sized it to.
    void* packed_room() {
        void* p = packed.data();
        std::size_t space = packed.size();
        return std::align(64, space >= 64 ? space - 64 : 0, p, space);
    }
};

struct KernelScratch {
    std::vector<InputScratch> inputs;    // [min(rows, 64)]: the input rows of a short prompt or decode
    std::vector<ThreadScratch> threads;  // [pool size], sized by the products before their loops
    std::vector<float> tile;             // sgemm prompts: [tile rows, cols] widened weights (up to 16 MB)
    std::vector<std::uint8_t> gemm_q;    // int8 product: [rows, cols] the input rows as int8 (q8: + 128)
    std::vector<float> gemm_d;           // int8 product: [rows, cols / 32] their block scales
    std::vector<std::int32_t> gemm_s;    // int8 product, q4: [rows, cols / 32] -8 x each block's sum
    std::vector<std::uint16_t> gemm_bf16;  // bf16 product: [rows, cols] the input rows rounded to bf16
    std::vector<std::int8_t> amx_rows;     // q8 decode kernels on AMX: [rows, cols] the input rows' int8 blocks

    // Before a parallel loop whose threads each use `bytes` of ThreadScratch::packed (64-byte
    // aligned): `threads` slots, each grown to hold them (nothing is allocated inside the loop).
    void reserve_packed(int threads_in_pool, std::size_t bytes) {
        if (threads.size() < static_cast<std::size_t>(threads_in_pool)) threads.resize(threads_in_pool);
        for (ThreadScratch& t : threads)
            if (t.packed.size() < bytes + 64) t.packed.resize(bytes + 64);
    }
};

}  // namespace wp
