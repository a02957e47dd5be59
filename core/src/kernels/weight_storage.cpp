#include "kernels/weight_storage.h"

#include <algorithm>

#include "kernels/huge_pages.h"

namespace wp {

namespace {
constexpr std::size_t kMappingBytes = std::size_t{64} << 20;  // the least a new mapping takes
}

WeightStorage::~WeightStorage() {
    for (const Mapping& m : mappings_) unmap_huge_pages(m.base, m.size);
}

void* WeightStorage::alloc_bytes(std::size_t bytes) {
    const std::size_t need = (bytes + 64 + 63) & ~std::size_t{63};
    if (need > left_) {
        const std::size_t size = std::max(kMappingBytes, whole_huge_pages(need));
        next_ = static_cast<char*>(map_huge_pages(size));
        left_ = size;
        mappings_.push_back({next_, size});
    }
    void* piece = next_;
    next_ += need;
    left_ -= need;
    return piece;  // zero-filled (fresh anonymous memory, never handed out before)
}

}  // namespace wp
