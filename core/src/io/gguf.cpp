#include "io/gguf.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <set>

#include "wp/error.h"

namespace wp {

namespace {

struct TypeInfo {
    std::uint32_t id;
    const char* name;
    std::size_t block_elems, block_bytes;
};

// ggml's type traits (ggml.c's type_traits, the block structs of ggml-common.h): every type has its
// size, so every tensor is measured against the file whether or not Windowpane can read it.
constexpr TypeInfo kTypes[] = {
    {0, "F32", 1, 4},         {1, "F16", 1, 2},       {2, "Q4_0", 32, 18},      {3, "Q4_1", 32, 20},
    {6, "Q5_0", 32, 22},      {7, "Q5_1", 32, 24},    {8, "Q8_0", 32, 34},      {9, "Q8_1", 32, 36},
    {10, "Q2_K", 256, 84},    {11, "Q3_K", 256, 110}, {12, "Q4_K", 256, 144},   {13, "Q5_K", 256, 176},
    {14, "Q6_K", 256, 210},   {15, "Q8_K", 256, 292}, {16, "IQ2_XXS", 256, 66}, {17, "IQ2_XS", 256, 74},
    {18, "IQ3_XXS", 256, 98}, {19, "IQ1_S", 256, 50}, {20, "IQ4_NL", 32, 18},   {21, "IQ3_S", 256, 110},
    {22, "IQ2_S", 256, 82},   {23, "IQ4_XS", 256, 136}, {24, "I8", 1, 1},       {25, "I16", 1, 2},
    {26, "I32", 1, 4},        {27, "I64", 1, 8},      {28, "F64", 1, 8},        {29, "IQ1_M", 256, 56},
    {30, "BF16", 1, 2},       {34, "TQ1_0", 256, 54}, {35, "TQ2_0", 256, 66},   {39, "MXFP4", 32, 17},
};

const TypeInfo* type_info(std::uint32_t t) {
    for (const TypeInfo& i : kTypes)
        if (i.id == t) return &i;
    return nullptr;
}

// A bounds-checked reader over the header; every failure names the file and what was being read.
class Reader {
public:
    Reader(const std::uint8_t* p, std::size_t n, std::string where) : p_(p), n_(n), where_(std::move(where)) {}

    [[noreturn]] void fail(const std::string& what) const { throw Error(where_ + ": " + what); }
    std::size_t pos() const { return pos_; }
    std::size_t left() const { return n_ - pos_; }

    const std::uint8_t* take(std::size_t bytes, const char* what) {
        if (bytes > left())
            fail(std::string("truncated: ") + what + " needs " + std::to_string(bytes) + " bytes at offset " +
                 std::to_string(pos_) + ", " + std::to_string(left()) + " left");
        const std::uint8_t* r = p_ + pos_;
        pos_ += bytes;
        return r;
    }
    template <class T>
    T get(const char* what) {
        T v;
        std::memcpy(&v, take(sizeof(T), what), sizeof(T));
        return v;
    }
    std::string_view string(const char* what) {
        const auto len = get<std::uint64_t>(what);
        if (len > GgufFile::kMaxString)
            fail(std::string(what) + " claims " + std::to_string(len) + " bytes (more than " +
                 std::to_string(GgufFile::kMaxString) + ")");
        const auto* s = take(static_cast<std::size_t>(len), what);
        return {reinterpret_cast<const char*>(s), static_cast<std::size_t>(len)};
    }

private:
    const std::uint8_t* p_;
    std::size_t n_;
    std::size_t pos_ = 0;
    std::string where_;
};

std::size_t scalar_size(std::uint32_t t) {
    switch (t) {
        case GgufValue::U8: case GgufValue::I8: case GgufValue::BOOL: return 1;
        case GgufValue::U16: case GgufValue::I16: return 2;
        case GgufValue::U32: case GgufValue::I32: case GgufValue::F32: return 4;
        case GgufValue::U64: case GgufValue::I64: case GgufValue::F64: return 8;
        default: return 0;
    }
}

void read_scalar(GgufValue& v, const std::uint8_t* p) {
    auto load = [&](auto x) {
        std::memcpy(&x, p, sizeof(x));
        return x;
    };
    switch (v.type) {
        case GgufValue::U8: v.u = load(std::uint8_t{}); v.i = static_cast<std::int64_t>(v.u); break;
        case GgufValue::I8: v.i = load(std::int8_t{}); break;
        case GgufValue::U16: v.u = load(std::uint16_t{}); v.i = static_cast<std::int64_t>(v.u); break;
        case GgufValue::I16: v.i = load(std::int16_t{}); break;
        case GgufValue::U32: v.u = load(std::uint32_t{}); v.i = static_cast<std::int64_t>(v.u); break;
        case GgufValue::I32: v.i = load(std::int32_t{}); break;
        case GgufValue::U64: v.u = load(std::uint64_t{}); v.i = static_cast<std::int64_t>(v.u); break;
        case GgufValue::I64: v.i = load(std::int64_t{}); break;
        case GgufValue::F32: v.f = load(float{}); break;
        case GgufValue::F64: v.f = load(double{}); break;
        case GgufValue::BOOL: v.i = load(std::uint8_t{}) != 0; break;
        default: break;
    }
    if (v.type == GgufValue::I8 || v.type == GgufValue::I16 || v.type == GgufValue::I32 || v.type == GgufValue::I64)
        v.u = static_cast<std::uint64_t>(v.i);
}

}  // namespace

std::string ggml_type_name(std::uint32_t type) {
    const TypeInfo* i = type_info(type);
    return i ? i->name : "type " + std::to_string(type);
}

bool ggml_type_layout(std::uint32_t type, std::size_t& block_elems, std::size_t& block_bytes) {
    const TypeInfo* i = type_info(type);
    if (i == nullptr) return false;
    block_elems = i->block_elems;
    block_bytes = i->block_bytes;
    return true;
}

const char* gguf_value_type_name(std::uint32_t t) {
    static const char* names[] = {"u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array",
                                  "u64", "i64", "f64"};
    return t < 13 ? names[t] : "unknown";
}

bool GgufValue::is_integer() const {
    return type != BOOL && type != F32 && type != F64 && type != STRING && type != ARRAY && type <= F64;
}

std::int64_t GgufTensor::numel() const {
    std::int64_t n = 1;
    for (auto d : dims) n *= d;
    return n;
}

std::string GgufTensor::dims_string() const {
    std::string s = "[";
    for (std::size_t i = 0; i < dims.size(); ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
    return s + "]";
}

GgufFile::GgufFile(const std::filesystem::path& path) : file_(path) {
    const std::string where = path.filename().string();
    Reader r(file_.data(), file_.size(), where);
    const std::uint8_t* magic = r.take(4, "the magic");
    if (std::memcmp(magic, "GGUF", 4) != 0) r.fail("not a GGUF file (the first bytes are not \"GGUF\")");
    version_ = r.get<std::uint32_t>("the version");
    if (version_ != 2 && version_ != 3)
        r.fail("GGUF version " + std::to_string(version_) + " is not supported (versions 2 and 3 are)");
    const auto n_tensors = r.get<std::uint64_t>("the tensor count");
    const auto n_kv = r.get<std::uint64_t>("the metadata count");
    // Each entry takes at least 8 (a key's length) + 4 + 1 bytes, each tensor 8 + 4 + 8 + 4 + 8.
    if (n_kv > kMaxKeys || n_kv > r.left() / 13)
        r.fail("the header claims " + std::to_string(n_kv) + " metadata entries, more than the file can hold");
    if (n_tensors > kMaxTensors || n_tensors > r.left() / 32)
        r.fail("the header claims " + std::to_string(n_tensors) + " tensors, more than the file can hold");

    for (std::uint64_t k = 0; k < n_kv; ++k) {
        const std::string key(r.string("a metadata key"));
        if (key.empty()) r.fail("metadata entry " + std::to_string(k) + " has an empty key");
        if (kv_.count(key)) r.fail("metadata key " + key + " appears twice");
        GgufValue v;
        const auto type = r.get<std::uint32_t>("a metadata type");
        if (type > GgufValue::F64) r.fail(key + " has unknown value type " + std::to_string(type));
        v.type = static_cast<GgufValue::Type>(type);
        if (v.type == GgufValue::STRING) {
            v.s = r.string(key.c_str());
        } else if (v.type == GgufValue::ARRAY) {
            const auto et = r.get<std::uint32_t>("an array's element type");
            if (et > GgufValue::F64 || et == GgufValue::ARRAY)
                r.fail(key + " is an array of unsupported element type " + std::to_string(et));
            v.elem_type = static_cast<GgufValue::Type>(et);
            v.count = r.get<std::uint64_t>("an array's length");
            if (v.count > kMaxArray) r.fail(key + " claims " + std::to_string(v.count) + " elements");
            v.elems = file_.data() + r.pos();
            if (v.elem_type == GgufValue::STRING) {
                if (v.count > r.left() / 8) r.fail("truncated: " + key + " claims " + std::to_string(v.count) + " strings");
                v.strings.reserve(static_cast<std::size_t>(v.count));
                for (std::uint64_t i = 0; i < v.count; ++i) v.strings.push_back(r.string(key.c_str()));
            } else {
                const std::size_t es = scalar_size(v.elem_type);
                if (v.count > r.left() / es)
                    r.fail("truncated: " + key + " claims " + std::to_string(v.count) + " elements");
                r.take(static_cast<std::size_t>(v.count) * es, key.c_str());
            }
        } else {
            read_scalar(v, r.take(scalar_size(v.type), key.c_str()));
        }
        kv_.emplace(key, std::move(v));
    }

    if (const GgufValue* a = find("general.alignment")) {
        if (!a->is_integer() || a->i <= 0 || a->i > (1 << 20) || (a->i & (a->i - 1)) != 0)
            r.fail("general.alignment must be a power of two up to 1 MiB");
        alignment_ = static_cast<std::size_t>(a->i);
    }

    tensors_.reserve(static_cast<std::size_t>(n_tensors));
    for (std::uint64_t t = 0; t < n_tensors; ++t) {
        GgufTensor ti;
        ti.name = std::string(r.string("a tensor name"));
        const std::string what = "tensor " + (ti.name.empty() ? "#" + std::to_string(t) : ti.name);
        if (ti.name.empty()) r.fail(what + " has an empty name");
        if (by_name_.count(ti.name)) r.fail(what + " appears twice");
        const auto n_dims = r.get<std::uint32_t>("a tensor's dimension count");
        if (n_dims == 0 || n_dims > 4) r.fail(what + " has " + std::to_string(n_dims) + " dimensions (1 to 4 allowed)");
        std::int64_t numel = 1;
        for (std::uint32_t d = 0; d < n_dims; ++d) {
            const auto n = r.get<std::int64_t>("a tensor dimension");
            if (n <= 0) r.fail(what + " has dimension " + std::to_string(n));
            if (numel > std::numeric_limits<std::int64_t>::max() / n) r.fail(what + " has too many elements");
            numel *= n;
            ti.dims.push_back(n);
        }
        ti.type = r.get<std::uint32_t>("a tensor type");
        ti.offset = r.get<std::uint64_t>("a tensor offset");
        if (ti.offset % alignment_ != 0)
            r.fail(what + " starts at offset " + std::to_string(ti.offset) + ", not a multiple of the alignment " +
                   std::to_string(alignment_));
        std::size_t be = 0, bb = 0;
        if (!ggml_type_layout(ti.type, be, bb)) r.fail(what + " has unknown type " + std::to_string(ti.type));
        if (ti.dims[0] % static_cast<std::int64_t>(be) != 0)
            r.fail(what + " (" + ggml_type_name(ti.type) + ") has rows of " + std::to_string(ti.dims[0]) +
                   " elements, not a multiple of its block of " + std::to_string(be));
        const std::uint64_t blocks = static_cast<std::uint64_t>(numel) / be;
        if (blocks > std::numeric_limits<std::uint64_t>::max() / bb) r.fail(what + " is too large");
        ti.bytes = static_cast<std::size_t>(blocks * bb);
        by_name_.emplace(ti.name, tensors_.size());
        tensors_.push_back(std::move(ti));
    }

    // The data section starts at the next multiple of the alignment after the header.
    const std::size_t header_end = r.pos();
    const std::size_t data_start = (header_end + alignment_ - 1) / alignment_ * alignment_;
    if (data_start > file_.size() && !tensors_.empty()) r.fail("truncated: no tensor data after the header");
    const std::size_t data_size = file_.size() > data_start ? file_.size() - data_start : 0;
    std::vector<std::size_t> order(tensors_.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return tensors_[a].offset < tensors_[b].offset; });
    std::uint64_t end_of_previous = 0;
    const GgufTensor* previous = nullptr;
    for (std::size_t i : order) {
        GgufTensor& ti = tensors_[i];
        if (ti.offset > data_size || ti.bytes > data_size - ti.offset)
            r.fail("truncated: tensor " + ti.name + " (" + std::to_string(ti.bytes) + " bytes at data offset " +
                   std::to_string(ti.offset) + ") runs past the end of the file");
        if (previous && ti.offset < end_of_previous)
            r.fail("tensor " + ti.name + " overlaps tensor " + previous->name);
        ti.data = file_.data() + data_start + ti.offset;
        end_of_previous = ti.offset + ti.bytes;
        previous = &ti;
    }
}

const GgufValue* GgufFile::find(std::string_view key) const {
    auto it = kv_.find(key);
    return it == kv_.end() ? nullptr : &it->second;
}

const GgufTensor* GgufFile::tensor(std::string_view name) const {
    auto it = by_name_.find(name);
    return it == by_name_.end() ? nullptr : &tensors_[it->second];
}

namespace {
[[noreturn]] void wrong_type(const std::filesystem::path& p, std::string_view key, const GgufValue& v, const char* expected) {
    std::string got = gguf_value_type_name(v.type);
    if (v.type == GgufValue::ARRAY) got = std::string("an array of ") + gguf_value_type_name(v.elem_type);
    throw Error(p.filename().string() + ": " + std::string(key) + " is " + got + ", expected " + expected);
}
}  // namespace

std::optional<std::string> GgufFile::get_string(std::string_view key) const {
    const GgufValue* v = find(key);
    if (!v) return std::nullopt;
    if (v->type != GgufValue::STRING) wrong_type(path(), key, *v, "a string");
    return std::string(v->s);
}

std::optional<std::int64_t> GgufFile::get_int(std::string_view key) const {
    const GgufValue* v = find(key);
    if (!v) return std::nullopt;
    if (!v->is_integer()) wrong_type(path(), key, *v, "an integer");
    if (v->type == GgufValue::U64 && v->u > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
        throw Error(path().filename().string() + ": " + std::string(key) + " = " + std::to_string(v->u) + " is out of range");
    return v->i;
}

std::optional<double> GgufFile::get_float(std::string_view key) const {
    const GgufValue* v = find(key);
    if (!v) return std::nullopt;
    if (v->is_float()) return v->f;
    if (v->is_integer()) return static_cast<double>(v->i);
    wrong_type(path(), key, *v, "a number");
}

std::optional<bool> GgufFile::get_bool(std::string_view key) const {
    const GgufValue* v = find(key);
    if (!v) return std::nullopt;
    if (v->type != GgufValue::BOOL) wrong_type(path(), key, *v, "a bool");
    return v->i != 0;
}

std::string GgufFile::require_string(std::string_view key) const {
    auto v = get_string(key);
    if (!v) throw Error(path().filename().string() + ": " + std::string(key) + " is missing");
    return *v;
}

std::int64_t GgufFile::require_int(std::string_view key) const {
    auto v = get_int(key);
    if (!v) throw Error(path().filename().string() + ": " + std::string(key) + " is missing");
    return *v;
}

const std::vector<std::string_view>& GgufFile::string_array(std::string_view key) const {
    const GgufValue* v = find(key);
    if (!v) throw Error(path().filename().string() + ": " + std::string(key) + " is missing");
    if (v->type != GgufValue::ARRAY || v->elem_type != GgufValue::STRING) wrong_type(path(), key, *v, "an array of strings");
    return v->strings;
}

std::vector<float> GgufFile::float_array(std::string_view key) const {
    const GgufValue* v = find(key);
    if (!v) throw Error(path().filename().string() + ": " + std::string(key) + " is missing");
    if (v->type != GgufValue::ARRAY || (v->elem_type != GgufValue::F32 && v->elem_type != GgufValue::F64))
        wrong_type(path(), key, *v, "an array of floats");
    std::vector<float> out(static_cast<std::size_t>(v->count));
    for (std::size_t i = 0; i < out.size(); ++i) {
        if (v->elem_type == GgufValue::F32) {
            std::memcpy(&out[i], v->elems + 4 * i, 4);
        } else {
            double d;
            std::memcpy(&d, v->elems + 8 * i, 8);
            out[i] = static_cast<float>(d);
        }
    }
    return out;
}

std::vector<std::int64_t> GgufFile::int_array(std::string_view key) const {
    const GgufValue* v = find(key);
    if (!v) throw Error(path().filename().string() + ": " + std::string(key) + " is missing");
    GgufValue e;
    e.type = v->elem_type;
    if (v->type != GgufValue::ARRAY || !e.is_integer()) wrong_type(path(), key, *v, "an array of integers");
    const std::size_t es = scalar_size(v->elem_type);
    std::vector<std::int64_t> out(static_cast<std::size_t>(v->count));
    for (std::size_t i = 0; i < out.size(); ++i) {
        read_scalar(e, v->elems + es * i);
        out[i] = e.i;
    }
    return out;
}

}  // namespace wp
