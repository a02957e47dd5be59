// Safetensors reading: memory-mapped, every header field validated before any byte of tensor data
// is touched. A single `model.safetensors` or shards listed by `model.safetensors.index.json`.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "io/mapped_file.h"

namespace wp {

enum class DType { F32, BF16, F16 };

const char* dtype_name(DType t);
std::size_t dtype_size(DType t);

// A view of one tensor inside a mapped file. Valid while the owning store lives.
struct TensorView {
    std::string name;
    DType dtype = DType::F32;
    std::vector<std::int64_t> shape;
    const std::uint8_t* data = nullptr;
    std::size_t bytes = 0;
    std::filesystem::path file;

    std::int64_t numel() const;
    std::string shape_string() const;  // "[9216, 2304]"
};

// One .safetensors file.
class SafeTensorsFile {
public:
    // Bound on the JSON header length; real headers of multi-billion-parameter shards are < 1 MiB.
    static constexpr std::uint64_t kMaxHeaderBytes = 100ull << 20;

    explicit SafeTensorsFile(const std::filesystem::path& path);  // throws wp::Error

    const std::filesystem::path& path() const { return file_.path(); }
    bool contains(const std::string& name) const { return tensors_.count(name) != 0; }
    const TensorView* find(const std::string& name) const;
    const std::map<std::string, TensorView>& tensors() const { return tensors_; }
    const std::map<std::string, std::string>& metadata() const { return metadata_; }

private:
    MappedFile file_;
    std::map<std::string, TensorView> tensors_;
    std::map<std::string, std::string> metadata_;
};

// All weight files of a model folder.
class WeightStore {
public:
    // Opens `model.safetensors`, or the shards named by `model.safetensors.index.json`.
    static WeightStore open_dir(const std::filesystem::path& dir);

    const TensorView* find(const std::string& name) const;
    bool contains(const std::string& name) const { return find(name) != nullptr; }
    // Throws a wp::Error naming the tensor (and expected/actual shape) when it is missing or has
    // another shape.
    const TensorView& require(const std::string& name, const std::vector<std::int64_t>& shape) const;
    std::vector<const TensorView*> all() const;
    std::string describe() const;  // "model.safetensors" or "3 shards"

private:
    std::vector<std::unique_ptr<SafeTensorsFile>> files_;
    std::map<std::string, const TensorView*> index_;
};

}  // namespace wp
