// One of a layer's K or V arrays (or its q8 scales): `heads` blocks of `stride` slots, each slot
// `per_slot` elements, in address space reserved once. Memory is taken as slots are written, so
// the cache grows within its reservation without moving a byte: a doubling that copied every row
// stalled one decode step (0.3 s at 8,192 tokens of qwen2-1.5b's q8 cache).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <utility>

#include "kernels/huge_pages.h"

namespace wp {

// A head's block asks for huge pages once its slots in use may reach this (1 MB): large enough
// that one partly written 2 MB page per head is not most of the memory, small enough that gemma2's
// q8 sliding layers (4,096 slots of 256 bytes) are read through huge pages.
inline constexpr std::size_t kKvHugeFrom = std::size_t{1} << 20;

template <typename T>
class KvArray {
public:
    KvArray() = default;
    ~KvArray() { release(); }
    KvArray(KvArray&& o) noexcept { *this = std::move(o); }
    KvArray& operator=(KvArray&& o) noexcept {
        if (this != &o) {
            release();
            p_ = std::exchange(o.p_, nullptr);
            bytes_ = std::exchange(o.bytes_, 0);
            heads_ = o.heads_, per_slot_ = o.per_slot_, stride_ = o.stride_, huge_ = o.huge_;
        }
        return *this;
    }
    KvArray(const KvArray&) = delete;
    KvArray& operator=(const KvArray&) = delete;

    // A new reservation of `stride` slots per head; each head's first `keep` slots (rows already
    // stored) move to it. Throws std::bad_alloc when the address space is refused.
    void reserve(int heads, std::size_t per_slot, std::int64_t stride, std::int64_t keep) {
        const std::size_t bytes = static_cast<std::size_t>(heads) * per_slot * static_cast<std::size_t>(stride) * sizeof(T);
        T* q = static_cast<T*>(reserve_pages(std::max<std::size_t>(bytes, 1)));
        if (p_ != nullptr && keep > 0)
            for (int h = 0; h < heads; ++h)
                std::memcpy(q + static_cast<std::size_t>(h) * per_slot * static_cast<std::size_t>(stride),
                            p_ + static_cast<std::size_t>(h) * per_slot_ * static_cast<std::size_t>(stride_),
                            static_cast<std::size_t>(keep) * per_slot * sizeof(T));
        release();
        p_ = q, bytes_ = std::max<std::size_t>(bytes, 1), heads_ = heads, per_slot_ = per_slot, stride_ = stride, huge_ = false;
    }

    // The slots in use may now reach `slots` per head: huge pages from here on once that is large.
    void expect(std::int64_t slots) {
        if (!huge_ && p_ != nullptr && head_bytes(slots) >= kKvHugeFrom) {
            advise_huge_pages(p_, bytes_);
            huge_ = true;
        }
    }

    // The memory `slots` per head take: each head's rows in whole 4 KB pages, or 2 MB ones once
    // asked for (an estimate: pages written before the advice stay 4 KB).
    std::size_t footprint(std::int64_t slots) const {
        if (p_ == nullptr) return 0;
        const std::size_t page = huge_ ? kHugePage : 4096;
        return static_cast<std::size_t>(heads_) * ((head_bytes(slots) + page - 1) / page * page);
    }

    bool empty() const { return p_ == nullptr; }
    T* data() { return p_; }
    const T* data() const { return p_; }
    T& operator[](std::size_t i) { return p_[i]; }
    const T& operator[](std::size_t i) const { return p_[i]; }

private:
    std::size_t head_bytes(std::int64_t slots) const {
        return static_cast<std::size_t>(std::min(slots, stride_)) * per_slot_ * sizeof(T);
    }
    void release() {
        if (p_ != nullptr) unmap_huge_pages(p_, bytes_);
        p_ = nullptr;
        bytes_ = 0;
    }

    T* p_ = nullptr;
    std::size_t bytes_ = 0;
    int heads_ = 0;
    std::size_t per_slot_ = 0;
    std::int64_t stride_ = 0;
    bool huge_ = false;
};

}  // namespace wp
