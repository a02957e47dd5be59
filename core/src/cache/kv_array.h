// One of a layer's K or V arrays (or its q8 scales): `heads` blocks of `stride` slots, each slot
// `per_slot` elements, in address space reserved once. Memory is taken as slots are written, so
// the cache grows within its reservation without moving a byte: a doubling that copied every row
// stalled one decode step (0.3 s at 8,192 tokens of qwen2-1.5b's q8 cache). The pages stay 4 KB:
// with 2 MB ones every head of every layer crossed into a new page at the same token, and taking
// them all at once stalled that step as long (gemma2-2b at 8,192: 0.55 s).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <utility>

#include "kernels/huge_pages.h"

namespace wp {

inline constexpr std::size_t kKvPage = 4096;

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
            heads_ = o.heads_, per_slot_ = o.per_slot_, stride_ = o.stride_;
        }
        return *this;
    }
    KvArray(const KvArray&) = delete;
    KvArray& operator=(const KvArray&) = delete;

    // A new reservation of `stride` slots per head; each head's first `keep` slots (rows already
    // stored) move to it. Throws std::bad_alloc when the address space is refused.
    void reserve(int heads, std::size_t per_slot, std::int64_t stride, std::int64_t keep) {
        const std::size_t bytes = std::max<std::size_t>(
            static_cast<std::size_t>(heads) * per_slot * static_cast<std::size_t>(stride) * sizeof(T), 1);
        T* const q = static_cast<T*>(reserve_pages(bytes));  // throws with this array unchanged
        KvArray old = std::move(*this);
        p_ = q, bytes_ = bytes;
        heads_ = heads, per_slot_ = per_slot, stride_ = stride;
        if (old.p_ == nullptr || keep <= 0) return;
        for (int h = 0; h < heads; ++h)
            std::memcpy(p_ + static_cast<std::size_t>(h) * per_slot * static_cast<std::size_t>(stride),
                        old.p_ + static_cast<std::size_t>(h) * old.per_slot_ * static_cast<std::size_t>(old.stride_),
                        static_cast<std::size_t>(keep) * per_slot * sizeof(T));
    }

    // The memory `slots` per head take: each head's rows in whole pages.
    std::size_t footprint(std::int64_t slots) const {
        if (p_ == nullptr) return 0;
        const std::size_t b = static_cast<std::size_t>(std::min(slots, stride_)) * per_slot_ * sizeof(T);
        return static_cast<std::size_t>(heads_) * ((b + kKvPage - 1) / kKvPage * kKvPage);
    }

    bool empty() const { return p_ == nullptr; }
    T* data() { return p_; }
    const T* data() const { return p_; }
    T& operator[](std::size_t i) { return p_[i]; }
    const T& operator[](std::size_t i) const { return p_[i]; }

private:
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
};

}  // namespace wp
