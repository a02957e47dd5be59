// The memory of quantized or widened weight matrices (views into a file's mapping need none).
#pragma once

#include <cstddef>
#include <vector>

namespace wp {

// Owns 64-byte aligned pieces, each with at least 64 zeroed bytes past its end that kernels may
// read (whole vector groups). Pieces are cut one after another from huge-page mappings
// (huge_pages.h) of 64 MB or more, so that even a layer's small matrices sit in 2 MB pages: only
// whole aligned 2 MB of a mapping can be huge pages. Not thread-safe; pieces live as long as it.
class WeightStorage {
public:
    struct Mapping {
        void* base = nullptr;
        std::size_t size = 0;
    };

    WeightStorage() = default;
    WeightStorage(const WeightStorage&) = delete;
    WeightStorage& operator=(const WeightStorage&) = delete;
    ~WeightStorage();

    template <typename T>
    T* alloc(std::size_t n) {
        return static_cast<T*>(alloc_bytes(n * sizeof(T)));
    }
    void* alloc_bytes(std::size_t bytes);  // zero-filled; throws std::bad_alloc

    const std::vector<Mapping>& mappings() const { return mappings_; }

private:
    std::vector<Mapping> mappings_;
    char* next_ = nullptr;  // the free rest of the newest mapping
    std::size_t left_ = 0;
};

}  // namespace wp
