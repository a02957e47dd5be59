// One of a layer's K or V arrays (or its q8 scales): `heads` blocks of `stride` slots, each slot
// `per_slot` elements, in address space reserved once. Memory is taken as slots are written, so
// the cache grows within its reservation without moving a byte: a doubling that copied every row
// stalled one decode step (0.3 s at 8,192 tokens of qwen2-1.5b's q8 cache). The pages stay 4 KB:
// with 2 MB ones every head of every layer crossed into a new page at the same token, and taking
// them all at once stalled that step as long (gemma2-2b at 8,192: 0.55 s).
//
// Once the rows fill half of a 2 MB range, the range is queued to become one huge page in place
// (collapse_to_huge_page), a few ranges a step (KvCache::store): decode reads every row each
// token, and on some CPUs the TLB misses of 4 KB pages are a large share of attention's time
// (docs/KERNELS.md, "Huge pages"). A collapsed range takes its whole 2 MB: at most twice its rows.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <utility>
#include <vector>

#include "kernels/huge_pages.h"

namespace wp {

inline constexpr std::size_t kKvPage = 4096;
inline constexpr std::size_t kCollapseFill = kHugePage / 2;  // rows in a range before it is queued

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
            filled_ = std::exchange(o.filled_, 0);
            ranges_ = std::move(o.ranges_);
            queue_ = std::move(o.queue_);
            queued_ = std::exchange(o.queued_, 0);
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
        filled_ = 0, queue_.clear(), queued_ = 0;
        heads_ = heads, per_slot_ = per_slot, stride_ = stride;
        ranges_.assign(whole_huge_pages(bytes) / kHugePage, Range::Small);
        queue_.reserve(ranges_.size());  // so that a decode step queuing a range allocates nothing
        if (old.p_ == nullptr || keep <= 0) return;
        for (int h = 0; h < heads; ++h)
            std::memcpy(p_ + static_cast<std::size_t>(h) * per_slot * static_cast<std::size_t>(stride),
                        old.p_ + static_cast<std::size_t>(h) * old.per_slot_ * static_cast<std::size_t>(old.stride_),
                        static_cast<std::size_t>(keep) * per_slot * sizeof(T));
    }

    // Every head's first `slots` slots now hold rows (after reserve(), the rows it kept count
    // again): the 2 MB ranges this fills to kCollapseFill are queued for collapse(). Returns how
    // many.
    int filled(std::int64_t slots) {
        slots = std::min(slots, stride_);
        if (p_ == nullptr || slots <= filled_) return 0;
        int queued = 0;
        const std::int64_t before = filled_;
        filled_ = slots;
        for (int h = 0; h < heads_; ++h) {
            const std::size_t first = head_bytes(h, before) / kHugePage, last = (head_bytes(h, slots) - 1) / kHugePage;
            for (std::size_t r = first; r <= last && r < ranges_.size(); ++r)
                if (ranges_[r] == Range::Small && rows_in(r, filled_, false) >= kCollapseFill) {
                    ranges_[r] = Range::Queued;
                    queue_.push_back(r);
                    ++queued;
                }
        }
        return queued;
    }

    // Collapses the oldest queued range into a huge page; false when none is queued.
    bool collapse() {
        if (queued_ >= queue_.size()) return false;
        const std::size_t r = queue_[queued_++];
        ranges_[r] = collapse_to_huge_page(reinterpret_cast<char*>(p_) + r * kHugePage) ? Range::Huge : Range::Refused;
        if (queued_ == queue_.size()) queue_.clear(), queued_ = 0;
        return true;
    }

    // The memory `slots` per head take: each head's rows in whole pages, and each huge page whole.
    std::size_t footprint(std::int64_t slots) const {
        if (p_ == nullptr) return 0;
        slots = std::min(slots, stride_);
        const std::size_t b = static_cast<std::size_t>(slots) * per_slot_ * sizeof(T);
        std::size_t total = static_cast<std::size_t>(heads_) * ((b + kKvPage - 1) / kKvPage * kKvPage);
        for (std::size_t r = 0; r < ranges_.size(); ++r)
            if (ranges_[r] == Range::Huge) total += kHugePage - rows_in(r, slots, true);
        return total;
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

    // Head h's first `slots` rows end this many bytes into the reservation.
    std::size_t head_bytes(int h, std::int64_t slots) const {
        return (static_cast<std::size_t>(h) * static_cast<std::size_t>(stride_) + static_cast<std::size_t>(slots)) *
               per_slot_ * sizeof(T);
    }
    // The bytes of range r that every head's first `slots` rows cover (in whole 4 KB pages).
    std::size_t rows_in(std::size_t r, std::int64_t slots, bool pages) const {
        const std::size_t lo = r * kHugePage, hi = lo + kHugePage;
        std::size_t n = 0;
        for (int h = 0; h < heads_; ++h) {
            const std::size_t a = head_bytes(h, 0);
            std::size_t b = head_bytes(h, slots);
            if (pages) b = a + (b - a + kKvPage - 1) / kKvPage * kKvPage;
            if (b > lo && a < hi) n += std::min(b, hi) - std::max(a, lo);
        }
        return std::min(n, kHugePage);
    }

    enum class Range : std::uint8_t { Small, Queued, Huge, Refused };
    T* p_ = nullptr;
    std::size_t bytes_ = 0;
    int heads_ = 0;
    std::size_t per_slot_ = 0;
    std::int64_t stride_ = 0;
    std::int64_t filled_ = 0;      // slots every head has written
    std::vector<Range> ranges_;    // per 2 MB of the reservation
    std::vector<std::size_t> queue_;  // ranges for collapse(), oldest first from queued_
    std::size_t queued_ = 0;
};

}  // namespace wp
