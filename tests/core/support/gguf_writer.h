// GGUF files written field by field for tests, so that a test can write any field, or any field
// wrong: metadata of each kind, tensor infos (with their data, or an offset given by hand).
#pragma once

#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "test_support.h"

namespace wp::test {

struct GgufWriter {
    std::string kvs, infos, data;
    std::uint64_t n_kv = 0, n_tensors = 0;
    std::uint32_t version = 3;
    std::size_t align = 32;

    template <class T>
    static std::string raw(T v) {
        std::string s(sizeof(T), '\0');
        std::memcpy(s.data(), &v, sizeof(T));
        return s;
    }
    static std::string str(const std::string& s) { return raw<std::uint64_t>(s.size()) + s; }

    GgufWriter& add(const std::string& k, std::uint32_t type, const std::string& value) {
        kvs += str(k) + raw(type) + value;
        ++n_kv;
        return *this;
    }
    GgufWriter& u32(const std::string& k, std::uint32_t v) { return add(k, 4, raw(v)); }
    GgufWriter& f32(const std::string& k, float v) { return add(k, 6, raw(v)); }
    GgufWriter& string(const std::string& k, const std::string& v) { return add(k, 8, str(v)); }
    GgufWriter& strings(const std::string& k, const std::vector<std::string>& v) {
        std::string b = raw<std::uint32_t>(8) + raw<std::uint64_t>(v.size());
        for (const auto& s : v) b += str(s);
        return add(k, 9, b);
    }
    GgufWriter& i32s(const std::string& k, const std::vector<std::int32_t>& v) {
        std::string b = raw<std::uint32_t>(5) + raw<std::uint64_t>(v.size());
        for (auto x : v) b += raw(x);
        return add(k, 9, b);
    }
    GgufWriter& f32s(const std::string& k, const std::vector<float>& v) {
        std::string b = raw<std::uint32_t>(6) + raw<std::uint64_t>(v.size());
        for (auto x : v) b += raw(x);
        return add(k, 9, b);
    }

    // A tensor of ggml `type` with `bytes` of data (0x01 bytes) at the next aligned offset, or its
    // info alone at `offset` when one is given. dims in ggml order: dims[0] is a row's length.
    GgufWriter& tensor(const std::string& name, std::vector<std::int64_t> dims, std::uint32_t type, std::size_t bytes,
                       std::optional<std::uint64_t> offset = std::nullopt) {
        const std::uint64_t at = offset.value_or(data.size());
        infos += str(name) + raw<std::uint32_t>(static_cast<std::uint32_t>(dims.size()));
        for (auto d : dims) infos += raw<std::int64_t>(d);
        infos += raw(type) + raw(at);
        if (!offset) {
            data += std::string(bytes, '\x01');
            data += std::string((align - data.size() % align) % align, '\0');
        }
        ++n_tensors;
        return *this;
    }
    // An F32 tensor of zeros.
    GgufWriter& f32_tensor(const std::string& name, std::vector<std::int64_t> dims) {
        std::size_t n = 1;
        for (auto d : dims) n *= static_cast<std::size_t>(d);
        const std::uint64_t at = data.size();
        tensor(name, std::move(dims), 0, 0, at);
        data += std::string(n * 4, '\0');
        data += std::string((align - data.size() % align) % align, '\0');
        return *this;
    }

    std::string bytes() const {
        std::string h = "GGUF" + raw(version) + raw(n_tensors) + raw(n_kv) + kvs + infos;
        h += std::string((align - h.size() % align) % align, '\0');
        return h + data;
    }
    const GgufWriter& write(const fs::path& p) const {
        if (p.has_parent_path()) fs::create_directories(p.parent_path());
        const std::string b = bytes();
        write_bytes(p, std::vector<std::uint8_t>(b.begin(), b.end()));
        return *this;
    }
    // Into `dir` as `name`; the path.
    fs::path write_in(const fs::path& dir, const std::string& name = "bad.gguf") const {
        write(dir / name);
        return dir / name;
    }
};

}  // namespace wp::test
