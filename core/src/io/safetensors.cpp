#include "io/safetensors.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <unordered_set>
#include <sstream>

#include "io/json_error.h"
#include "io/json_sax.h"
#include "wp/error.h"
#include "wp/io/json_file.h"
#include "wp/io/file_util.h"

namespace wp {

namespace fs = std::filesystem;
using json = nlohmann::json;

const char* dtype_name(DType t) {
    switch (t) {
        case DType::F32: return "F32";
        case DType::BF16: return "BF16";
        case DType::F16: return "F16";
    }
    return "?";
}

std::size_t dtype_size(DType t) { return t == DType::F32 ? 4 : 2; }

std::int64_t TensorView::numel() const {
    std::int64_t n = 1;
    for (auto d : shape) n *= d;
    return n;
}

static std::string shape_str(const std::vector<std::int64_t>& shape) {
    std::string s = "[";
    for (std::size_t i = 0; i < shape.size(); ++i) {
        if (i) s += ", ";
        s += std::to_string(shape[i]);
    }
    return s + "]";
}

std::string TensorView::shape_string() const { return shape_str(shape); }

namespace {

bool parse_dtype(const std::string& s, DType& out, std::size_t& size, bool& supported) {
    static const std::map<std::string, std::pair<int, std::size_t>> known = {
        {"F32", {0, 4}},  {"BF16", {1, 2}}, {"F16", {2, 2}},    {"F64", {-1, 8}}, {"I64", {-1, 8}},
        {"I32", {-1, 4}}, {"I16", {-1, 2}}, {"I8", {-1, 1}},     {"U8", {-1, 1}},  {"BOOL", {-1, 1}},
        {"U16", {-1, 2}}, {"U32", {-1, 4}}, {"U64", {-1, 8}},    {"F8_E4M3", {-1, 1}},
        {"F8_E5M2", {-1, 1}}};
    auto it = known.find(s);
    if (it == known.end()) return false;
    size = it->second.second;
    supported = it->second.first >= 0;
    if (supported) out = static_cast<DType>(it->second.first);
    return true;
}

}  // namespace

SafeTensorsFile::SafeTensorsFile(const fs::path& path) : file_(path) {
    const std::string where = path.filename().string();
    const std::size_t size = file_.size();
    if (size < 8)
        throw Error(where + ": truncated safetensors file (" + std::to_string(size) +
                    " bytes, shorter than the 8-byte header length)");
    std::uint64_t header_len = 0;
    std::memcpy(&header_len, file_.data(), 8);  // little-endian on every supported CPU
    if (header_len > kMaxHeaderBytes)
        throw Error(where + ": header length " + std::to_string(header_len) +
                    " exceeds the limit of " + std::to_string(kMaxHeaderBytes) + " bytes");
    if (header_len > size - 8)
        throw Error(where + ": header length " + std::to_string(header_len) +
                    " is larger than the file (" + std::to_string(size) + " bytes)");
    const char* hdr = reinterpret_cast<const char*>(file_.data() + 8);
    json j;
    // nlohmann keeps the last of two equal keys; a header naming a tensor twice is refused instead,
    // so that what a reader of the file sees first is what gets loaded. Nesting is bounded too
    // (copies and conversions of a json value recurse).
    std::unordered_set<std::string> names;
    const auto refuse_duplicates = [&](int depth, const std::string& key) {
        if (depth == 1 && !names.insert(key).second) throw Error(where + ": header names tensor " + key + " twice");
    };
    try {
        j = json_sax::parse<json>(hdr, hdr + header_len, json_sax::Limits{.max_depth = 64}, refuse_duplicates);
    } catch (const json_sax::TooDeep&) {
        throw Error(where + ": header nested more than 64 levels deep");
    } catch (const json::exception& e) {
        throw Error(where + ": header is not valid JSON: " + json_error_text(e));
    }
    if (!j.is_object()) throw Error(where + ": header is not a JSON object");

    const std::uint8_t* data_start = file_.data() + 8 + header_len;
    const std::uint64_t data_size = size - 8 - header_len;

    struct Range {
        std::uint64_t begin, end;
        const std::string* name;
    };
    std::vector<Range> ranges;

    for (auto it = j.begin(); it != j.end(); ++it) {
        const std::string& name = it.key();
        if (name == "__metadata__") {
            if (it->is_object())
                for (auto m = it->begin(); m != it->end(); ++m)
                    if (m->is_string()) metadata_[m.key()] = m->get<std::string>();
            continue;
        }
        const std::string ctx = where + ": tensor " + name;
        const json& e = *it;
        if (!e.is_object()) throw Error(ctx + ": entry is not an object");
        if (!e.contains("dtype") || !e["dtype"].is_string())
            throw Error(ctx + ": missing or invalid dtype");
        if (!e.contains("shape") || !e["shape"].is_array())
            throw Error(ctx + ": missing or invalid shape");
        if (!e.contains("data_offsets") || !e["data_offsets"].is_array() ||
            e["data_offsets"].size() != 2)
            throw Error(ctx + ": missing or invalid data_offsets");

        TensorView tv;
        tv.name = name;
        tv.file = path;
        std::size_t elem_size = 0;
        bool supported = false;
        const std::string dt = e["dtype"].get<std::string>();
        if (!parse_dtype(dt, tv.dtype, elem_size, supported))
            throw Error(ctx + ": unknown dtype " + dt);

        std::uint64_t numel = 1;
        for (const auto& d : e["shape"]) {
            if (!d.is_number_integer() || d.get<std::int64_t>() < 0)
                throw Error(ctx + ": shape has an invalid dimension");
            const auto dim = d.get<std::uint64_t>();
            // Every partial product fits an int64 (TensorView::numel's type), also before a 0 dimension.
            if (dim != 0 && numel > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()) / dim)
                throw Error(ctx + ": shape overflows");
            numel *= dim;
            tv.shape.push_back(static_cast<std::int64_t>(dim));
        }
        for (const auto& o : e["data_offsets"])
            if (!o.is_number_integer() || o.get<std::int64_t>() < 0)
                throw Error(ctx + ": data_offsets must be non-negative integers");
        const auto begin = e["data_offsets"][0].get<std::uint64_t>();
        const auto end = e["data_offsets"][1].get<std::uint64_t>();
        if (begin > end)
            throw Error(ctx + ": data_offsets [" + std::to_string(begin) + ", " +
                        std::to_string(end) + "] are reversed");
        if (end > data_size)
            throw Error(ctx + ": data_offsets [" + std::to_string(begin) + ", " +
                        std::to_string(end) + "] lie outside the file's data section (" +
                        std::to_string(data_size) + " bytes)");
        if (numel > std::numeric_limits<std::uint64_t>::max() / elem_size ||
            numel * elem_size != end - begin)
            throw Error(ctx + ": size " + std::to_string(end - begin) + " bytes does not match " +
                        dt + " x " + shape_str(tv.shape) + " = " +
                        std::to_string(numel * elem_size) + " bytes");
        tv.data = data_start + begin;
        tv.bytes = static_cast<std::size_t>(end - begin);
        auto [ins, ok] = tensors_.emplace(name, std::move(tv));
        (void)ok;
        if (!supported) {
            // Keep the entry out of the usable set, but still validate its range.
            ranges.push_back({begin, end, &ins->first});
            tensors_.erase(ins);
            continue;
        }
        ranges.push_back({begin, end, &ins->first});
    }

    std::sort(ranges.begin(), ranges.end(),
              [](const Range& a, const Range& b) { return a.begin < b.begin; });
    for (std::size_t i = 1; i < ranges.size(); ++i) {
        if (ranges[i].begin < ranges[i - 1].end && ranges[i].end > ranges[i].begin)
            throw Error(where + ": tensor data ranges overlap at byte " +
                        std::to_string(ranges[i].begin));
    }
}

const TensorView* SafeTensorsFile::find(const std::string& name) const {
    auto it = tensors_.find(name);
    return it == tensors_.end() ? nullptr : &it->second;
}

WeightStore WeightStore::open_dir(const fs::path& dir) {
    WeightStore ws;
    const fs::path single = dir / "model.safetensors";
    const fs::path index = dir / "model.safetensors.index.json";
    if (fs::exists(single)) {
        ws.files_.push_back(std::make_unique<SafeTensorsFile>(single));
    } else if (fs::exists(index)) {
        const json j = parse_json<json>(read_text_file(index), "model.safetensors.index.json");
        if (!j.contains("weight_map") || !j["weight_map"].is_object())
            throw Error("model.safetensors.index.json: missing weight_map");
        std::map<std::string, std::string> wanted;  // tensor -> shard
        std::set<std::string> shards;
        for (auto it = j["weight_map"].begin(); it != j["weight_map"].end(); ++it) {
            if (!it->is_string())
                throw Error("model.safetensors.index.json: weight_map entry for " + it.key() +
                            " is not a file name");
            const std::string shard = it->get<std::string>();
            if (shard.find('/') != std::string::npos || shard.find("..") != std::string::npos)
                throw Error("model.safetensors.index.json: shard name " + shard +
                            " is not a plain file name");
            wanted[it.key()] = shard;
            shards.insert(shard);
        }
        std::map<std::string, const SafeTensorsFile*> by_name;
        for (const auto& s : shards) {
            if (!fs::exists(dir / s))
                throw Error("model.safetensors.index.json names shard " + s +
                            ", which is not in the folder");
            ws.files_.push_back(std::make_unique<SafeTensorsFile>(dir / s));
            by_name[s] = ws.files_.back().get();
        }
        for (const auto& [tensor, shard] : wanted)
            if (!by_name[shard]->contains(tensor))
                throw Error(shard + ": tensor " + tensor +
                            " is listed in model.safetensors.index.json but missing from the shard");
    } else {
        throw Error(dir.string() +
                    ": no model.safetensors or model.safetensors.index.json in the folder");
    }
    for (const auto& f : ws.files_)
        for (const auto& [name, tv] : f->tensors()) {
            if (ws.index_.count(name))
                throw Error(f->path().filename().string() + ": tensor " + name +
                            " appears in more than one shard");
            ws.index_[name] = &tv;
        }
    return ws;
}

const TensorView* WeightStore::find(const std::string& name) const {
    auto it = index_.find(name);
    return it == index_.end() ? nullptr : it->second;
}

const TensorView& WeightStore::require(const std::string& name,
                                       const std::vector<std::int64_t>& shape) const {
    const TensorView* t = find(name);
    if (t == nullptr) throw Error("missing tensor " + name + " (expected shape " + shape_str(shape) +
                                  ") in " + describe());
    if (t->shape != shape)
        throw Error(t->file.filename().string() + ": tensor " + name + ": expected shape " +
                    shape_str(shape) + ", file has " + t->shape_string());
    return *t;
}

std::vector<const TensorView*> WeightStore::all() const {
    std::vector<const TensorView*> out;
    for (const auto& [n, t] : index_) out.push_back(t);
    return out;
}

std::string WeightStore::describe() const {
    if (files_.size() == 1) return files_[0]->path().filename().string();
    return std::to_string(files_.size()) + " safetensors shards";
}

}  // namespace wp
