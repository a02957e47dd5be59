// Malformed model folders: every defect is a clear wp::Error naming the file and tensor.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>

#include "test_support.h"
#include "wp/error.h"
#include "wp/io/safetensors.h"
#include "wp/model/model.h"

namespace wp::test {
namespace {

using testing::HasSubstr;

std::string error_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const Error& e) {
        return e.what();
    } catch (const std::exception& e) {
        return std::string("unexpected exception type: ") + e.what();
    }
    return "no error";
}

std::vector<std::uint8_t> f32_bytes(std::size_t n) {
    std::vector<float> v(n);
    for (std::size_t i = 0; i < n; ++i) v[i] = 0.25f * static_cast<float>(i);
    std::vector<std::uint8_t> b(n * 4);
    std::memcpy(b.data(), v.data(), b.size());
    return b;
}

std::string open_error(const std::vector<std::uint8_t>& bytes) {
    TempDir d;
    write_bytes(d.path() / "model.safetensors", bytes);
    return error_of([&] { SafeTensorsFile f(d.path() / "model.safetensors"); });
}

TEST(SafeTensors, ReadsAValidFile) {
    TempDir d;
    write_bytes(d.path() / "model.safetensors",
                make_safetensors({{"a", "F32", {2, 3}, f32_bytes(6)}, {"b", "BF16", {4}, std::vector<std::uint8_t>(8, 1)}}));
    SafeTensorsFile f(d.path() / "model.safetensors");
    ASSERT_NE(f.find("a"), nullptr);
    EXPECT_EQ(f.find("a")->shape, (std::vector<std::int64_t>{2, 3}));
    EXPECT_EQ(f.find("a")->bytes, 24u);
    float x;
    std::memcpy(&x, f.find("a")->data + 8, 4);
    EXPECT_EQ(x, 0.5f);
    EXPECT_EQ(f.find("b")->dtype, DType::BF16);
    EXPECT_EQ(f.metadata().at("format"), "pt");
}

TEST(SafeTensors, TruncatedFile) {
    EXPECT_THAT(open_error({1, 2, 3}), HasSubstr("truncated"));
    auto good = make_safetensors({{"a", "F32", {4, 4}, f32_bytes(16)}});
    good.resize(good.size() - 10);  // data section cut short
    EXPECT_THAT(open_error(good), HasSubstr("outside the file's data section"));
    EXPECT_THAT(open_error(good), HasSubstr("tensor a"));
}

TEST(SafeTensors, HeaderLengthLargerThanFile) {
    auto bytes = make_safetensors({{"a", "F32", {2}, f32_bytes(2)}});
    const std::uint64_t huge = bytes.size() + 100;
    std::memcpy(bytes.data(), &huge, 8);
    EXPECT_THAT(open_error(bytes), HasSubstr("larger than the file"));
    const std::uint64_t absurd = 1ull << 62;
    std::memcpy(bytes.data(), &absurd, 8);
    EXPECT_THAT(open_error(bytes), HasSubstr("exceeds the limit"));
}

TEST(SafeTensors, OffsetsOutOfRange) {
    auto e = open_error(make_raw_safetensors(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,4096]}})", 8));
    EXPECT_THAT(e, HasSubstr("model.safetensors: tensor w"));
    EXPECT_THAT(e, HasSubstr("outside the file's data section"));
    EXPECT_THAT(open_error(make_raw_safetensors(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", 8)),
                HasSubstr("reversed"));
    EXPECT_THAT(open_error(make_raw_safetensors(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[-8,0]}})", 8)),
                HasSubstr("non-negative"));
}

TEST(SafeTensors, WrongDtypeSize) {
    // 2x2 F32 needs 16 bytes; the entry claims 8 (as if it were F16).
    auto e = open_error(make_raw_safetensors(R"({"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,8]}})", 16));
    EXPECT_THAT(e, HasSubstr("tensor w"));
    EXPECT_THAT(e, HasSubstr("does not match F32 x [2, 2] = 16 bytes"));
}

TEST(SafeTensors, OverlappingTensors) {
    auto e = open_error(make_raw_safetensors(
        R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"b":{"dtype":"F32","shape":[4],"data_offsets":[8,24]}})", 24));
    EXPECT_THAT(e, HasSubstr("overlap"));
}

TEST(SafeTensors, BadHeaderJsonAndFields) {
    EXPECT_THAT(open_error(make_raw_safetensors("{\"a\": [1, 2", 0)), HasSubstr("header is not valid JSON"));
    EXPECT_THAT(open_error(make_raw_safetensors(R"({"a":{"dtype":"Q9","shape":[1],"data_offsets":[0,1]}})", 1)),
                HasSubstr("unknown dtype Q9"));
    EXPECT_THAT(open_error(make_raw_safetensors(R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", 4)),
                HasSubstr("invalid dimension"));
    EXPECT_THAT(open_error(make_raw_safetensors(R"({"a":{"dtype":"F32","data_offsets":[0,4]}})", 4)),
                HasSubstr("shape"));
    EXPECT_THAT(open_error(make_raw_safetensors(R"([1,2,3])", 0)), HasSubstr("not a JSON object"));
}

// Copies a fixture model and rewrites its weights with `edit` applied.
std::string model_error_after(const std::function<void(std::vector<StTensor>&)>& edit) {
    const fs::path src = shared_dir() / "fixtures" / "tiny-gemma2";
    TempDir d;
    d.copy_files_from(src);
    auto tensors = load_safetensors(src / "model.safetensors");
    edit(tensors);
    write_bytes(d.path() / "model.safetensors", make_safetensors(tensors));
    return error_of([&] { Model::load(d.path()); });
}

TEST(ModelFolder, MissingTensorIsNamed) {
    WP_REQUIRE_SHARED();
    auto e = model_error_after([](auto& ts) {
        std::erase_if(ts, [](const StTensor& t) { return t.name == "model.layers.3.mlp.up_proj.weight"; });
    });
    EXPECT_THAT(e, HasSubstr("missing tensor model.layers.3.mlp.up_proj.weight"));
    EXPECT_THAT(e, HasSubstr("[128, 64]"));
}

TEST(ModelFolder, WrongShapeIsNamed) {
    WP_REQUIRE_SHARED();
    auto e = model_error_after([](auto& ts) {
        for (auto& t : ts)
            if (t.name == "model.layers.1.self_attn.k_proj.weight") t.shape = {32, 128};
    });
    EXPECT_THAT(e, HasSubstr("model.safetensors: tensor model.layers.1.self_attn.k_proj.weight: expected shape [64, 64], file has [32, 128]"));
}

TEST(ModelFolder, GemmaNeedsItsSandwichNorms) {
    WP_REQUIRE_SHARED();
    auto e = model_error_after([](auto& ts) {
        std::erase_if(ts, [](const StTensor& t) { return t.name == "model.layers.0.pre_feedforward_layernorm.weight"; });
    });
    EXPECT_THAT(e, HasSubstr("missing tensor model.layers.0.pre_feedforward_layernorm.weight"));
}

TEST(ModelFolder, BadConfigJson) {
    WP_REQUIRE_SHARED();
    TempDir d;
    d.copy_files_from(shared_dir() / "fixtures" / "tiny-qwen2");
    write_text(d.path() / "config.json", "{\"model_type\": \"qwen2\", ");
    EXPECT_THAT(error_of([&] { Model::load(d.path()); }), HasSubstr("config.json: not valid JSON"));
}

TEST(ModelFolder, UnknownModelType) {
    WP_REQUIRE_SHARED();
    TempDir d;
    d.copy_files_from(shared_dir() / "fixtures" / "tiny-qwen2");
    auto cfg = nlohmann::json::parse(read_text(d.path() / "config.json"));
    cfg["model_type"] = "llama";
    write_text(d.path() / "config.json", cfg.dump());
    EXPECT_THAT(error_of([&] { Model::load(d.path()); }), HasSubstr("unknown model_type \"llama\""));
}

TEST(ModelFolder, MissingFilesAndFolders) {
    TempDir d;
    EXPECT_THAT(error_of([&] { Model::load(d.path() / "nope"); }), HasSubstr("not a folder"));
    EXPECT_THAT(error_of([&] { Model::load(d.path()); }), HasSubstr("no config.json"));
    write_text(d.path() / "config.json", R"({"model_type":"qwen2","hidden_size":8,"num_attention_heads":2,"num_key_value_heads":1,"num_hidden_layers":1,"intermediate_size":8,"vocab_size":10})");
    EXPECT_THAT(error_of([&] { Model::load(d.path()); }), HasSubstr("no model.safetensors"));
}

TEST(ModelFolder, ShardedWeightsLoadAndMatch) {
    WP_REQUIRE_SHARED();
    const fs::path src = shared_dir() / "fixtures" / "tiny-qwen2";
    TempDir d;
    d.copy_files_from(src);
    fs::remove(d.path() / "model.safetensors");
    auto tensors = load_safetensors(src / "model.safetensors");
    std::vector<StTensor> a, b;
    nlohmann::json index;
    for (auto& t : tensors) {
        const bool first = t.name < "model.layers.1";
        index["weight_map"][t.name] = first ? "model-00001-of-00002.safetensors" : "model-00002-of-00002.safetensors";
        (first ? a : b).push_back(t);
    }
    write_bytes(d.path() / "model-00001-of-00002.safetensors", make_safetensors(a));
    write_bytes(d.path() / "model-00002-of-00002.safetensors", make_safetensors(b));
    write_text(d.path() / "model.safetensors.index.json", index.dump());

    auto sharded = Model::load(d.path());
    auto single = Model::load(src);
    EXPECT_EQ(sharded->parameter_count(), single->parameter_count());
    const std::vector<int> ids = {5, 17, 300, 42};
    auto c1 = sharded->new_context();
    auto c2 = single->new_context();
    auto l1 = sharded->forward(*c1, ids, LogitsMode::All);
    std::vector<float> v1(l1.begin(), l1.end());
    auto l2 = single->forward(*c2, ids, LogitsMode::All);
    EXPECT_EQ(max_abs_diff(v1.data(), l2.data(), v1.size()), 0.0f);

    // A shard the index names but the folder lacks.
    fs::remove(d.path() / "model-00002-of-00002.safetensors");
    EXPECT_THAT(error_of([&] { Model::load(d.path()); }), HasSubstr("model-00002-of-00002.safetensors, which is not in the folder"));
    // A tensor the index places in a shard that does not hold it.
    write_bytes(d.path() / "model-00002-of-00002.safetensors", make_safetensors({b.begin(), b.end() - 1}));
    EXPECT_THAT(error_of([&] { Model::load(d.path()); }), HasSubstr("missing from the shard"));
}

}  // namespace
}  // namespace wp::test
