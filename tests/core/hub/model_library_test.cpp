// The model library: each folder described from its config and safetensors headers, the hub
// cache's snapshots under their repo names, and the user's added folders kept in their file.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "test_support.h"
#include "wp/error.h"
#include "wp/hub/model_library.h"

namespace wp::test {
namespace {

fs::path fixture(const std::string& rel) {
    const fs::path p = shared_dir() / rel;
    return p;
}

// write_text, making the folders on the way.
void put(const fs::path& p, const std::string& text) {
    fs::create_directories(p.parent_path());
    write_text(p, text);
}

#define REQUIRE_SHARED(p)                                                         \
    do {                                                                          \
        if (!fs::exists(p)) {                                                     \
            if (in_ci()) FAIL() << "missing fixture " << (p);                     \
            GTEST_SKIP() << "shared fixtures not found";                          \
        }                                                                         \
    } while (0)

TEST(ModelLibrary, DescribesACausalLmFromItsHeaders) {
    const fs::path dir = fixture("fixtures/tiny-gemma2");
    REQUIRE_SHARED(dir / "config.json");
    const LibraryModel m = describe_model_folder(dir);
    EXPECT_TRUE(m.supported) << m.why;
    EXPECT_EQ("gemma2", m.model_type);
    EXPECT_EQ("chat", m.head);
    EXPECT_EQ("F32", m.dtype);
    // The parameters are the sum of the header's shapes: compare with the file itself.
    std::int64_t want = 0;
    for (const StTensor& t : load_safetensors(dir / "model.safetensors")) {
        std::int64_t n = 1;
        for (auto d : t.shape) n *= d;
        want += n;
    }
    EXPECT_EQ(want, m.parameters);
    EXPECT_GE(m.bytes_on_disk, fs::file_size(dir / "model.safetensors"));
}

TEST(ModelLibrary, NamesEachHeadAndOpensIt) {
    REQUIRE_SHARED(fixture("heads/tiny-qwen2-seqcls/config.json"));
    const std::map<std::string, std::string> heads = {{"heads/tiny-qwen2-seqcls", "classification"},
                                                      {"heads/tiny-gemma2-reward", "reward"},
                                                      {"heads/tiny-gemma2-tokcls", "token classification"},
                                                      {"heads/tiny-qwen2-qa", "question answering"}};
    for (const auto& [rel, head] : heads) {
        const LibraryModel m = describe_model_folder(fixture(rel));
        EXPECT_EQ(head, m.head) << rel;
        EXPECT_TRUE(m.supported) << rel << ": " << m.why;  // the app's Classify tab opens them
        EXPECT_EQ("", m.why) << rel;
        EXPECT_GT(m.parameters, 0) << rel;
    }
}

TEST(ModelLibrary, UnsupportedAndBrokenFolders) {
    REQUIRE_SHARED(fixture("fixtures/tiny-qwen2/config.json"));
    TempDir dir;
    // A family Windowpane does not run.
    const fs::path llama = dir.path() / "llama";
    fs::create_directories(llama);
    write_text(llama / "config.json", R"({"model_type": "llama", "architectures": ["LlamaForCausalLM"]})");
    LibraryModel m = describe_model_folder(llama);
    EXPECT_FALSE(m.supported);
    EXPECT_EQ("llama", m.model_type);
    EXPECT_THAT(m.why, testing::HasSubstr("unknown model_type \"llama\""));
    // A partial download: config without its weights.
    const fs::path partial = dir.path() / "partial";
    fs::create_directories(partial);
    fs::copy_file(fixture("fixtures/tiny-qwen2/config.json"), partial / "config.json");
    m = describe_model_folder(partial);
    EXPECT_FALSE(m.supported);
    EXPECT_THAT(m.why, testing::HasSubstr("safetensors"));
    // Weights but no tokenizer.
    fs::copy_file(fixture("fixtures/tiny-qwen2/model.safetensors"), partial / "model.safetensors");
    m = describe_model_folder(partial);
    EXPECT_FALSE(m.supported);
    EXPECT_THAT(m.why, testing::HasSubstr("tokenizer"));
    // Not a model folder at all, and a folder that went away.
    m = describe_model_folder(dir.path());
    EXPECT_THAT(m.why, testing::HasSubstr("no config.json"));
    m = describe_model_folder(dir.path() / "gone");
    EXPECT_EQ("the folder is gone", m.why);
    write_text(llama / "config.json", "{not json");
    EXPECT_THAT(describe_model_folder(llama).why, testing::HasSubstr("not valid JSON"));
}

TEST(ModelLibrary, ListsHubSnapshotsThenFolders) {
    const fs::path src = fixture("fixtures/tiny-gemma2");
    REQUIRE_SHARED(src / "config.json");
    TempDir dir;
    const fs::path snap = dir.path() / "hub" / "models--acme--tiny-gemma2" / "snapshots" / "abcdef1234";
    fs::create_directories(snap);
    for (const auto& e : fs::directory_iterator(src))
        if (e.is_regular_file()) {
            const fs::path blob = dir.path() / "hub" / "models--acme--tiny-gemma2" / "blobs" / e.path().filename();
            fs::create_directories(blob.parent_path());
            fs::copy_file(e.path(), blob);
            fs::create_symlink(fs::path("../../blobs") / e.path().filename(), snap / e.path().filename());
        }
    put(dir.path() / "hub" / "models--acme--tiny-gemma2" / "refs" / "main", "abcdef1234");
    const auto models = list_library(dir.path() / "hub", {fixture("fixtures/tiny-qwen2"), dir.path() / "gone"});
    ASSERT_EQ(3u, models.size());
    EXPECT_EQ("acme/tiny-gemma2", models[0].name);
    EXPECT_TRUE(models[0].from_hub_cache);
    EXPECT_TRUE(models[0].supported) << models[0].why;
    EXPECT_EQ("abcdef1234", models[0].commit);
    EXPECT_EQ(std::vector<std::string>{"main"}, models[0].refs);
    // Size on disk: the blobs the links point at.
    EXPECT_GE(models[0].bytes_on_disk, fs::file_size(src / "model.safetensors"));
    EXPECT_EQ("tiny-qwen2", models[1].name);
    EXPECT_FALSE(models[1].from_hub_cache);
    EXPECT_FALSE(models[2].supported);
}

TEST(ModelLibrary, AddedFoldersFile) {
    TempDir dir;
    const fs::path file = dir.path() / "cfg" / "windowpane" / "library.json";
    EXPECT_TRUE(read_library_folders(file).empty());
    write_library_folders(file, {"/a/b", "/c d/e"});
    EXPECT_EQ((std::vector<fs::path>{"/a/b", "/c d/e"}), read_library_folders(file));
    write_text(file, R"({"folders": [3]})");
    EXPECT_THAT(error_of([&] { read_library_folders(file); }), testing::HasSubstr("every folder must be a string"));
    write_text(file, "[]");
    EXPECT_THAT(error_of([&] { read_library_folders(file); }), testing::HasSubstr("expected {\"folders\""));
}

}  // namespace
}  // namespace wp::test
