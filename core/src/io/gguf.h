// GGUF reading (llama.cpp's single-file format, versions 2 and 3): memory-mapped, and every header
// field validated before a byte of tensor data is touched — counts and string lengths against
// the bytes left, tensor dimensions, types, sizes, alignment and overlaps against the file.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "io/mapped_file.h"

namespace wp {

// ggml's tensor types, by their numbers in the file (ggml.h's enum ggml_type).
enum class GgmlType : std::uint32_t {
    F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8, Q8_1 = 9,
    Q2_K = 10, Q3_K = 11, Q4_K = 12, Q5_K = 13, Q6_K = 14, Q8_K = 15,
    IQ2_XXS = 16, IQ2_XS = 17, IQ3_XXS = 18, IQ1_S = 19, IQ4_NL = 20, IQ3_S = 21, IQ2_S = 22, IQ4_XS = 23,
    I8 = 24, I16 = 25, I32 = 26, I64 = 27, F64 = 28, IQ1_M = 29, BF16 = 30, TQ1_0 = 34, TQ2_0 = 35,
    MXFP4 = 39,
};

// "Q4_K", or "type 31" for a number ggml does not (or no longer) define.
std::string ggml_type_name(std::uint32_t type);
// Elements per block and bytes per block; false for a number without a known layout.
bool ggml_type_layout(std::uint32_t type, std::size_t& block_elems, std::size_t& block_bytes);

// One metadata value. Arrays keep their element type and count; their elements are read on demand
// (a 256k-token vocabulary is not copied into a vector of variants).
struct GgufValue {
    enum Type : std::uint32_t {
        U8 = 0, I8 = 1, U16 = 2, I16 = 3, U32 = 4, I32 = 5, F32 = 6, BOOL = 7, STRING = 8, ARRAY = 9,
        U64 = 10, I64 = 11, F64 = 12,
    };
    Type type = U8;
    // Scalars: the value (integers and bools in i/u, floats in f); strings: s.
    std::int64_t i = 0;
    std::uint64_t u = 0;
    double f = 0;
    std::string_view s;  // points into the mapping
    // Arrays: element type, count, and where the first element starts in the mapping.
    Type elem_type = U8;
    std::uint64_t count = 0;
    const std::uint8_t* elems = nullptr;
    std::vector<std::string_view> strings;  // an array of strings, each pointing into the mapping

    bool is_integer() const;  // U8..I64 (not BOOL)
    bool is_float() const { return type == F32 || type == F64; }
};

const char* gguf_value_type_name(std::uint32_t t);

struct GgufTensor {
    std::string name;
    std::uint32_t type = 0;            // GgmlType number
    std::vector<std::int64_t> dims;    // ggml order: dims[0] is the innermost (a row's length)
    std::uint64_t offset = 0;          // from the start of the data section
    const std::uint8_t* data = nullptr;
    std::size_t bytes = 0;

    std::int64_t numel() const;
    std::string dims_string() const;  // "[2304, 256000]" (ggml order)
};

class GgufFile {
public:
    // Bounds on what a header may claim: far above any real file, far below what would exhaust memory.
    static constexpr std::uint64_t kMaxTensors = 1u << 20;
    static constexpr std::uint64_t kMaxKeys = 1u << 16;
    static constexpr std::uint64_t kMaxArray = 1u << 26;
    static constexpr std::uint64_t kMaxString = 1u << 26;  // a chat template or a merge is far shorter

    explicit GgufFile(const std::filesystem::path& path);  // throws wp::Error "NAME.gguf: ..."

    const std::filesystem::path& path() const { return file_.path(); }
    std::uint32_t version() const { return version_; }
    std::size_t alignment() const { return alignment_; }

    const std::map<std::string, GgufValue, std::less<>>& metadata() const { return kv_; }
    const GgufValue* find(std::string_view key) const;
    // Typed access; a key of another type is a wp::Error naming it ("qwen2.block_count is a
    // string, expected an integer"). The optional forms return nullopt only when the key is absent.
    std::optional<std::string> get_string(std::string_view key) const;
    std::optional<std::int64_t> get_int(std::string_view key) const;   // any integer type
    std::optional<double> get_float(std::string_view key) const;       // F32/F64 or an integer
    std::optional<bool> get_bool(std::string_view key) const;
    std::string require_string(std::string_view key) const;
    std::int64_t require_int(std::string_view key) const;
    // Array elements (throws when the key is not an array of that kind).
    const std::vector<std::string_view>& string_array(std::string_view key) const;
    std::vector<float> float_array(std::string_view key) const;         // F32/F64 elements
    std::vector<std::int64_t> int_array(std::string_view key) const;    // integer elements

    const std::vector<GgufTensor>& tensors() const { return tensors_; }
    const GgufTensor* tensor(std::string_view name) const;

private:
    MappedFile file_;
    std::uint32_t version_ = 0;
    std::size_t alignment_ = 32;
    std::map<std::string, GgufValue, std::less<>> kv_;
    std::vector<GgufTensor> tensors_;
    std::map<std::string, std::size_t, std::less<>> by_name_;
};

}  // namespace wp
