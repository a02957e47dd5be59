// The model library: each folder described from its config and safetensors headers, each GGUF
// file from its header, the hub cache's snapshots under their repo names, the user's added folders
// (and the GGUF files in them) kept in their file, and LM Studio's and Ollama's GGUF models.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <optional>

#include "gguf_writer.h"
#include "scoped_env.h"
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

// A complete tiny gemma2 GGUF file (Q8_0 matrices, F32 norms, a SentencePiece vocabulary).
const fs::path kTinyGguf = fs::path(WP_GGUF_SEED_DIR) / "tiny-gemma2.gguf";

// A llama-architecture file: a family Windowpane does not run.
void write_llama_gguf(const fs::path& p) {
    GgufWriter()
        .string("general.architecture", "llama")
        .u32("general.file_type", 15)
        .u32("llama.context_length", 4096)
        .string("tokenizer.ggml.model", "llama")
        .f32_tensor("token_embd.weight", {64, 10})
        .f32_tensor("output_norm.weight", {64})
        .write(p);
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
    const auto models = list_library(dir.path() / "hub", {fixture("fixtures/tiny-qwen2"), dir.path() / "gone"}, {});
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

TEST(ModelLibrary, DescribesAGgufFileFromItsHeader) {
    TempDir dir;
    const fs::path file = dir.path() / "tiny.gguf";
    fs::copy_file(kTinyGguf, file);
    const LibraryModel m = describe_model_folder(file);
    EXPECT_TRUE(m.supported) << m.why;
    EXPECT_TRUE(m.gguf);
    EXPECT_EQ("tiny.gguf", m.name);
    EXPECT_EQ(file, m.dir);
    EXPECT_EQ("gemma2", m.model_type);
    EXPECT_EQ("Gemma2ForCausalLM", m.architecture);
    EXPECT_EQ("chat", m.head);
    EXPECT_EQ("Q8_0", m.dtype);  // no general.file_type: the matrices' type
    EXPECT_EQ(64, m.context_length);
    // Every tensor's elements: the embedding 32x8, seven matrices, five norms of 32.
    EXPECT_EQ(32 * 8 + 5 * 32 * 32 + 2 * 32 * 16 + 5 * 32, m.parameters);
    EXPECT_EQ(fs::file_size(file), m.bytes_on_disk);
    // An Ollama blob has no suffix: the magic tells it.
    fs::copy_file(kTinyGguf, dir.path() / "sha256-0123");
    EXPECT_TRUE(describe_model_folder(dir.path() / "sha256-0123").supported);
}

TEST(ModelLibrary, UnsupportedAndBrokenGgufFiles) {
    TempDir dir;
    write_llama_gguf(dir.path() / "llama.gguf");
    LibraryModel m = describe_model_folder(dir.path() / "llama.gguf");
    EXPECT_FALSE(m.supported);
    EXPECT_TRUE(m.gguf);
    EXPECT_EQ("llama", m.model_type);
    EXPECT_EQ("Q4_K_M", m.dtype);  // general.file_type 15
    EXPECT_EQ(4096, m.context_length);
    EXPECT_EQ(64 * 10 + 64, m.parameters);
    EXPECT_THAT(m.why, testing::HasSubstr("general.architecture \"llama\" is not one Windowpane runs"));
    // One part of a split model.
    GgufWriter()
        .string("general.architecture", "gemma2")
        .u32("split.count", 3)
        .f32_tensor("token_embd.weight", {32, 8})
        .write(dir.path() / "m-00001-of-00003.gguf");
    m = describe_model_folder(dir.path() / "m-00001-of-00003.gguf");
    EXPECT_FALSE(m.supported);
    EXPECT_THAT(m.why, testing::HasSubstr("one of 3 parts"));
    // A download cut short: the header names tensors beyond the end of the file.
    const std::vector<std::uint8_t> bytes = read_bytes(kTinyGguf);
    write_bytes(dir.path() / "cut.gguf", std::vector<std::uint8_t>(bytes.begin(), bytes.begin() + bytes.size() / 2));
    m = describe_model_folder(dir.path() / "cut.gguf");
    EXPECT_FALSE(m.supported);
    EXPECT_THAT(m.why, testing::HasSubstr("cut.gguf"));
    // No tokenizer in the file.
    GgufWriter()
        .string("general.architecture", "gemma2")
        .u32("gemma2.embedding_length", 32)
        .u32("gemma2.block_count", 1)
        .u32("gemma2.attention.head_count", 2)
        .u32("gemma2.feed_forward_length", 32)
        .u32("gemma2.context_length", 64)
        .f32_tensor("token_embd.weight", {32, 8})
        .write(dir.path() / "notok.gguf");
    m = describe_model_folder(dir.path() / "notok.gguf");
    EXPECT_FALSE(m.supported);
    EXPECT_THAT(m.why, testing::HasSubstr("no tokenizer"));
}

TEST(ModelLibrary, FindsGgufFilesAndModelFoldersInAddedFolders) {
    TempDir dir;
    const fs::path root = dir.path() / "models";
    fs::create_directories(root / "a");
    fs::copy_file(kTinyGguf, root / "a" / "tiny.gguf");
    write_llama_gguf(root / "b" / "c" / "llama.GGUF");
    put(root / "hf-llama" / "config.json", R"({"model_type": "llama", "architectures": ["LlamaForCausalLM"]})");
    fs::create_directories(root / "hf-llama" / "inner");
    fs::copy_file(kTinyGguf, root / "hf-llama" / "inner" / "not-scanned.gguf");  // inside a model folder
    fs::create_directories(root / ".cache");
    fs::copy_file(kTinyGguf, root / ".cache" / "hidden.gguf");
    fs::create_directories(root / "1" / "2" / "3" / "4");
    fs::copy_file(kTinyGguf, root / "1" / "2" / "3" / "4" / "too-deep.gguf");
    put(root / "notes.txt", "not a model");
    fs::create_directories(dir.path() / "empty");

    // The same file added by itself too, an empty folder, and a folder that went away.
    const auto models = list_library(dir.path() / "no-hub",
                                     {root, root / "a" / "tiny.gguf", dir.path() / "empty", dir.path() / "gone"}, {});
    std::vector<std::string> names;
    for (const LibraryModel& m : models) names.push_back(m.name);
    // Model folders first, then the GGUF files, each in path order.
    EXPECT_EQ((std::vector<std::string>{"hf-llama", "tiny.gguf", "llama.GGUF", "empty", "gone"}), names);
    ASSERT_EQ(5u, models.size());
    EXPECT_FALSE(models[0].gguf);
    EXPECT_FALSE(models[0].supported);
    EXPECT_TRUE(models[1].supported) << models[1].why;
    EXPECT_TRUE(models[1].gguf);
    EXPECT_EQ(root / "a" / "tiny.gguf", models[1].dir);
    EXPECT_TRUE(models[2].gguf);
    EXPECT_FALSE(models[2].supported);
    EXPECT_THAT(models[2].why, testing::HasSubstr("llama"));
    for (int i = 0; i < 3; ++i) {
        EXPECT_EQ(root, models[i].added_folder) << i;  // what Remove Folder removes
        EXPECT_EQ("folder", models[i].source);
    }
    EXPECT_THAT(models[3].why, testing::HasSubstr("no config.json or GGUF file"));
    EXPECT_EQ(dir.path() / "empty", models[3].added_folder);
    EXPECT_EQ("the folder is gone", models[4].why);
}

TEST(ModelLibrary, ListsGgufRepositoriesOfTheHubCache) {
    TempDir dir;
    const fs::path repo = dir.path() / "hub" / "models--acme--tiny-GGUF";
    const fs::path snap = repo / "snapshots" / "abcdef1234";
    fs::create_directories(snap);
    fs::create_directories(repo / "blobs");
    fs::copy_file(kTinyGguf, repo / "blobs" / "b1");
    fs::create_symlink("../../blobs/b1", snap / "tiny.Q8_0.gguf");
    put(snap / "README.md", "# tiny");
    put(repo / "refs" / "main", "abcdef1234");
    const auto models = list_library(dir.path() / "hub", {}, {});
    ASSERT_EQ(1u, models.size());
    EXPECT_EQ("acme/tiny-GGUF/tiny.Q8_0.gguf", models[0].name);
    EXPECT_TRUE(models[0].supported) << models[0].why;
    EXPECT_TRUE(models[0].from_hub_cache);
    EXPECT_EQ("hub cache", models[0].source);
    EXPECT_EQ(snap / "tiny.Q8_0.gguf", models[0].dir);
    EXPECT_EQ(fs::file_size(kTinyGguf), models[0].bytes_on_disk);
}

TEST(ModelLibrary, ListsLmStudioAndOllamaModels) {
    TempDir dir;
    const fs::path lms = dir.path() / "lmstudio";
    fs::create_directories(lms / "acme" / "tiny-GGUF");
    fs::copy_file(kTinyGguf, lms / "acme" / "tiny-GGUF" / "tiny-Q8_0.gguf");
    write_llama_gguf(lms / "acme" / "llama-GGUF" / "llama-Q4_K_M.gguf");

    const fs::path ollama = dir.path() / "ollama";
    const std::string hex(64, 'a'), other(64, 'b');
    fs::create_directories(ollama / "blobs");
    fs::copy_file(kTinyGguf, ollama / "blobs" / ("sha256-" + hex));
    auto manifest = [&](const fs::path& rel, const std::string& digest) {
        put(ollama / "manifests" / rel,
            R"({"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": "sha256:)" + other +
                R"(", "size": 10},
                "layers": [{"mediaType": "application/vnd.ollama.image.model", "digest": ")" + digest + R"(", "size": 9312},
                           {"mediaType": "application/vnd.ollama.image.template", "digest": "sha256:)" + other + R"(", "size": 5}]})");
    };
    manifest("registry.ollama.ai/library/tiny/latest", "sha256:" + hex);
    manifest("registry.ollama.ai/library/tiny/q8", "sha256:" + hex);  // two tags, one blob
    manifest("registry.ollama.ai/someone/thing/v1", "sha256:" + other);  // its blob is not there
    manifest("hf.co/acme/evil/x", "sha256:../../../etc/passwd");
    put(ollama / "manifests" / "registry.ollama.ai" / "library" / "broken" / "latest", "{not json");

    const auto models = list_library(dir.path() / "no-hub", {}, {{lms}, {ollama}});
    std::vector<std::string> names;
    for (const LibraryModel& m : models) names.push_back(m.name);
    EXPECT_EQ((std::vector<std::string>{"llama-Q4_K_M.gguf", "tiny-Q8_0.gguf", "hf.co/acme/evil:x", "broken:latest",
                                        "tiny:latest", "tiny:q8", "someone/thing:v1"}),
              names);
    ASSERT_EQ(7u, models.size());
    EXPECT_EQ("LM Studio", models[0].source);
    EXPECT_FALSE(models[0].supported);
    EXPECT_TRUE(models[1].supported) << models[1].why;
    EXPECT_EQ(lms / "acme" / "tiny-GGUF" / "tiny-Q8_0.gguf", models[1].dir);
    EXPECT_TRUE(models[1].added_folder.empty());
    for (std::size_t i = 2; i < models.size(); ++i) EXPECT_EQ("Ollama", models[i].source) << i;
    EXPECT_THAT(models[2].why, testing::HasSubstr("not sha256:HEX"));
    EXPECT_THAT(models[3].why, testing::HasSubstr("JSON"));
    for (std::size_t i : {4u, 5u}) {
        EXPECT_TRUE(models[i].supported) << models[i].why;
        EXPECT_TRUE(models[i].gguf);
        EXPECT_EQ(ollama / "blobs" / ("sha256-" + hex), models[i].dir);
        EXPECT_EQ("gemma2", models[i].model_type);
    }
    EXPECT_FALSE(models[6].supported);
    EXPECT_THAT(models[6].why, testing::HasSubstr("is missing"));
    // The app names an opened blob as Ollama does.
    EXPECT_EQ("tiny:latest", ollama_blob_name(ollama / "blobs" / ("sha256-" + hex)));
    EXPECT_EQ("", ollama_blob_name(lms / "acme" / "tiny-GGUF" / "tiny-Q8_0.gguf"));
}

TEST(ModelLibrary, OtherAppsFoldersFromTheEnvironment) {
    TempDir dir;
    ScopedEnv env;
    env.set("WP_LMSTUDIO_MODELS", (dir.path() / "a").string() + ":" + (dir.path() / "b").string());
    env.set("OLLAMA_MODELS", (dir.path() / "o").string());
    OtherAppModels o = other_app_models();
    EXPECT_EQ((std::vector<fs::path>{dir.path() / "a", dir.path() / "b"}), o.lmstudio);
    EXPECT_EQ((std::vector<fs::path>{dir.path() / "o"}), o.ollama);
    // Unset: the defaults under HOME that exist.
    env.set("WP_LMSTUDIO_MODELS", std::nullopt);
    env.set("OLLAMA_MODELS", std::nullopt);
    env.set("HOME", dir.path().string());
    fs::create_directories(dir.path() / ".lmstudio" / "models");
    fs::create_directories(dir.path() / ".ollama" / "models");
    o = other_app_models();
    EXPECT_EQ((std::vector<fs::path>{dir.path() / ".lmstudio" / "models"}), o.lmstudio);
    ASSERT_FALSE(o.ollama.empty());
    EXPECT_EQ(dir.path() / ".ollama" / "models", o.ollama.front());
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
