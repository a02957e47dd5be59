// Memory for the large buffers that decoding streams through every token (weights, the KV
// cache): mappings that start on a 2 MB boundary and are asked for transparent huge pages, so
// that reading them takes far fewer TLB misses than 4 KB pages would.
#pragma once

#include <cstddef>
#include <new>

namespace wp {

constexpr std::size_t kHugePage = std::size_t{2} << 20;

// `bytes` rounded up to whole 2 MB pages, zero-filled, 2 MB-aligned; throws std::bad_alloc.
// Release with unmap_huge_pages(p, the same bytes).
void* map_huge_pages(std::size_t bytes);
void unmap_huge_pages(void* p, std::size_t bytes);

// `bytes` rounded up to whole 2 MB pages: what map_huge_pages maps.
constexpr std::size_t whole_huge_pages(std::size_t bytes) { return (bytes + kHugePage - 1) & ~(kHugePage - 1); }

// Address space for a buffer that fills over time (the KV cache): `bytes` rounded up to whole
// 2 MB, reading as zeros; memory is taken only for the 4 KB pages written (MAP_NORESERVE, and no
// huge pages, which would be taken 2 MB at a time). Throws std::bad_alloc. Release with
// unmap_huge_pages(p, the same bytes).
void* reserve_pages(std::size_t bytes);

// Turns the 2 MB at p (2 MB-aligned, inside a reserve_pages mapping) into one huge page in
// place (MADV_COLLAPSE, Linux 6.1 on): what was written keeps its values, the rest reads as
// zeros and now takes memory. False where the kernel will not (too old, huge pages off or none
// free); the range then stays in 4 KB pages. After the kernel refuses the call itself, every
// later call returns false at once.
bool collapse_to_huge_page(void* p);

// A std::allocator for such buffers: 2 MB or more come from map_huge_pages, less from the heap.
template <typename T>
struct HugePageAllocator {
    using value_type = T;
    HugePageAllocator() = default;
    template <typename U>
    HugePageAllocator(const HugePageAllocator<U>&) {}
    T* allocate(std::size_t n) {
        const std::size_t bytes = n * sizeof(T);
        if (bytes >= kHugePage) return static_cast<T*>(map_huge_pages(bytes));
        return static_cast<T*>(::operator new(bytes));
    }
    void deallocate(T* p, std::size_t n) {
        const std::size_t bytes = n * sizeof(T);
        if (bytes >= kHugePage) unmap_huge_pages(p, bytes);
        else ::operator delete(p);
    }
    template <typename U>
    bool operator==(const HugePageAllocator<U>&) const { return true; }
};

}  // namespace wp
