// Malformed model folders: a missing tensor, a wrong shape, a bad config.json, an unknown
// model_type or missing files are clear wp::Errors naming what is wrong; sharded weights load.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>

#include "test_support.h"
#include "wp/error.h"
#include "io/safetensors.h"
#include "wp/model/model.h"
#include "wp/model/threads.h"

namespace wp::test {
namespace {

using testing::HasSubstr;

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
    EXPECT_THAT(error_of([&] { Model::load(d.path() / "nope"); }), HasSubstr("not a model folder or a GGUF file"));
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

TEST(ModelFolder, ThreadsOutOfRangeAreRefused) {
    WP_REQUIRE_SHARED();
    const fs::path dir = shared_dir() / "fixtures" / "tiny-gemma2";
    for (int threads : {-1, kMaxThreads + 1, 100000}) {
        LoadOptions o;
        o.threads = threads;
        EXPECT_THAT(error_of([&] { Model::load(dir, {}, o); }), HasSubstr("threads must be between 0 and 256"));
    }
}

}  // namespace
}  // namespace wp::test
