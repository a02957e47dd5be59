#include "kernels/huge_pages.h"

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <sys/mman.h>

// Linux 6.1's value; older C libraries lack the name.
#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25
#endif

namespace wp {

namespace {

// `size` (whole 2 MB pages) of anonymous memory starting on a 2 MB boundary.
char* map_aligned(std::size_t size, int flags) {
    // Mapped with 2 MB to spare, then trimmed to start on a 2 MB boundary.
    const std::size_t span = size + kHugePage;
    void* p = mmap(nullptr, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | flags, -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
    char* const raw = static_cast<char*>(p);
    char* const base = reinterpret_cast<char*>(whole_huge_pages(reinterpret_cast<std::uintptr_t>(raw)));
    if (base > raw) munmap(raw, static_cast<std::size_t>(base - raw));
    if (raw + span > base + size) munmap(base + size, static_cast<std::size_t>(raw + span - (base + size)));
    return base;
}

}  // namespace

void* map_huge_pages(std::size_t bytes) {
    const std::size_t size = whole_huge_pages(bytes);
    char* const base = map_aligned(size, 0);
#ifdef MADV_HUGEPAGE
    madvise(base, size, MADV_HUGEPAGE);  // before the first touch
#endif
    return base;
}

void unmap_huge_pages(void* p, std::size_t bytes) { munmap(p, whole_huge_pages(bytes)); }

void* reserve_pages(std::size_t bytes) {
    const std::size_t size = whole_huge_pages(bytes);
    char* const base = map_aligned(size, MAP_NORESERVE);
#ifdef MADV_NOHUGEPAGE
    madvise(base, size, MADV_NOHUGEPAGE);  // 4 KB pages even where the system makes huge ones always
#endif
    return base;
}

bool collapse_to_huge_page(void* p) {
#if defined(MADV_HUGEPAGE) && defined(MADV_NOHUGEPAGE)
    static std::atomic<bool> refused{false};
    if (refused.load(std::memory_order_relaxed)) return false;
    // reserve_pages marked the range for 4 KB pages, which MADV_COLLAPSE respects: lift that for
    // this range first, and put it back if the collapse fails, so that faults there stay small.
    if (madvise(p, kHugePage, MADV_HUGEPAGE) == 0 && madvise(p, kHugePage, MADV_COLLAPSE) == 0) return true;
    if (errno == EINVAL) refused.store(true, std::memory_order_relaxed);
    madvise(p, kHugePage, MADV_NOHUGEPAGE);
#else
    (void)p;
#endif
    return false;
}

}  // namespace wp
