// The hub cache read as huggingface_hub lays it out (refs, snapshots of relative links, blobs by
// hash), the environment that says where it is, and names that open a cached model.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <map>
#include <optional>

#include "scoped_env.h"
#include "test_support.h"
#include "wp/error.h"
#include "wp/hub/hub_cache.h"
#include "wp/hub/hub_paths.h"

namespace wp::test {
namespace {


// write_text, making the folders on the way.
void put(const fs::path& p, const std::string& text) {
    fs::create_directories(p.parent_path());
    write_text(p, text);
}

// A snapshot as huggingface_hub writes one: each file's bytes in blobs/<name>, linked from
// snapshots/<commit>/<path> by a relative link.
void add_snapshot(const fs::path& repo, const std::string& commit, const std::map<std::string, std::string>& files) {
    for (const auto& [path, text] : files) {
        const std::string blob = "blob-" + std::to_string(std::hash<std::string>{}(text));
        put(repo / "blobs" / blob, text);
        const fs::path link = repo / "snapshots" / commit / path;
        fs::create_directories(link.parent_path());
        fs::path up;  // one ".." per folder between the link and snapshots/<commit>
        const fs::path rel = fs::path(path).parent_path();
        for (const auto& part : rel) up /= "..", (void)part;
        fs::create_symlink(up / ".." / ".." / "blobs" / blob, link);
    }
}

TEST(HubPaths, FollowHuggingfaceHubsVariables) {
    ScopedEnv env;
    for (const char* v : {"HF_HOME", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_TOKEN_PATH", "HF_ENDPOINT", "XDG_CACHE_HOME"})
        env.set(v, std::nullopt);
    env.set("HOME", "/home/someone");
    HubPaths p = hub_paths();
    EXPECT_EQ(fs::path("/home/someone/.cache/huggingface"), p.home);
    EXPECT_EQ(fs::path("/home/someone/.cache/huggingface/hub"), p.cache);
    EXPECT_EQ(fs::path("/home/someone/.cache/huggingface/token"), p.token_file);
    EXPECT_EQ("https://huggingface.co", p.endpoint);

    env.set("XDG_CACHE_HOME", "/xdg");
    EXPECT_EQ(fs::path("/xdg/huggingface/hub"), hub_paths().cache);
    env.set("HF_HOME", "~/hf");
    p = hub_paths();
    EXPECT_EQ(fs::path("/home/someone/hf/hub"), p.cache);
    EXPECT_EQ(fs::path("/home/someone/hf/token"), p.token_file);
    env.set("HUGGINGFACE_HUB_CACHE", "/old-cache");
    EXPECT_EQ(fs::path("/old-cache"), hub_paths().cache);
    env.set("HF_HUB_CACHE", "/new-cache");
    env.set("HF_TOKEN_PATH", "/secrets/token");
    env.set("HF_ENDPOINT", "http://127.0.0.1:8080/");
    p = hub_paths();
    EXPECT_EQ(fs::path("/new-cache"), p.cache);
    EXPECT_EQ(fs::path("/secrets/token"), p.token_file);
    EXPECT_EQ("http://127.0.0.1:8080", p.endpoint);
}

TEST(HubPaths, TokenFromTheVariableThenTheFile) {
    ScopedEnv env;
    TempDir dir;
    env.set("HF_TOKEN", std::nullopt);
    HubPaths p;
    p.token_file = dir.path() / "hf" / "token";
    EXPECT_FALSE(hub_token(p).has_value());
    save_hub_token(p, "hf_filetoken");
    EXPECT_EQ("hf_filetoken", hub_token(p).value_or(""));
    EXPECT_EQ(fs::perms::owner_read | fs::perms::owner_write, fs::status(p.token_file).permissions() & fs::perms::all);
    write_text(p.token_file, "hf_withnewline\n");
    EXPECT_EQ("hf_withnewline", hub_token(p).value_or(""));
    env.set("HF_TOKEN", "hf_vartoken");
    EXPECT_EQ("hf_vartoken", hub_token(p).value_or(""));
    EXPECT_THROW(save_hub_token(p, "two\nlines"), Error);
}

TEST(HubPaths, RepoIds) {
    for (const char* ok : {"Qwen/Qwen2-1.5B-Instruct", "google/gemma-2-2b-it", "gpt2", "a_b/c.d"}) EXPECT_TRUE(is_repo_id(ok)) << ok;
    for (const char* bad : {"", "/x", "x/", "a/b/c", "a--b/c", "a/b..c", "-a/b", "a/b.", "a b/c", "../etc"})
        EXPECT_FALSE(is_repo_id(bad)) << bad;
    EXPECT_EQ("models--google--gemma-2-2b-it", repo_folder_name("google/gemma-2-2b-it"));
    EXPECT_EQ("models--gpt2", repo_folder_name("gpt2"));
    EXPECT_EQ("google/gemma-2-2b-it", repo_id_of_folder("models--google--gemma-2-2b-it").value_or(""));
    EXPECT_EQ("gpt2", repo_id_of_folder("models--gpt2").value_or(""));
    EXPECT_FALSE(repo_id_of_folder("datasets--a--b"));
    EXPECT_FALSE(repo_id_of_folder("models--a--b--c"));
}

TEST(HubCache, ScansReposSnapshotsAndRefs) {
    TempDir dir;
    const fs::path cache = dir.path();
    const fs::path repo = cache / "models--acme--tiny";
    add_snapshot(repo, "1111111111111111111111111111111111111111", {{"config.json", "{}"}});
    add_snapshot(repo, "2222222222222222222222222222222222222222", {{"config.json", "{ }"}, {"sub/x.json", "[]"}});
    put(repo / "refs" / "main", "2222222222222222222222222222222222222222");
    put(repo / "refs" / "pr" / "3", "1111111111111111111111111111111111111111\n");
    fs::create_directories(cache / "datasets--acme--data" / "snapshots" / "x");  // not a model
    fs::create_directories(cache / "models--bad..name" / "snapshots" / "x");
    fs::create_directories(cache / ".locks");
    put(cache / "version.txt", "1");

    const std::vector<CachedRepo> repos = scan_hub_cache(cache);
    ASSERT_EQ(1u, repos.size());
    EXPECT_EQ("acme/tiny", repos[0].repo_id);
    ASSERT_EQ(2u, repos[0].snapshots.size());
    EXPECT_EQ("1111111111111111111111111111111111111111", repos[0].snapshots[0].commit);
    EXPECT_EQ(std::vector<std::string>{"pr/3"}, repos[0].snapshots[0].refs);
    EXPECT_EQ(std::vector<std::string>{"main"}, repos[0].snapshots[1].refs);
    EXPECT_EQ("[]", read_text(repos[0].snapshots[1].dir / "sub" / "x.json"));  // the links resolve
    EXPECT_TRUE(scan_hub_cache(cache / "missing").empty());

    EXPECT_EQ(repo / "snapshots" / "2222222222222222222222222222222222222222", cached_snapshot(cache, "acme/tiny"));
    EXPECT_EQ(repo / "snapshots" / "1111111111111111111111111111111111111111", cached_snapshot(cache, "acme/tiny", "pr/3"));
    EXPECT_EQ(repo / "snapshots" / "1111111111111111111111111111111111111111", cached_snapshot(cache, "acme/tiny", "1111111"));
    EXPECT_FALSE(cached_snapshot(cache, "acme/tiny", "111111"));  // shorter than 7
    EXPECT_FALSE(cached_snapshot(cache, "acme/tiny", "v1.0"));
    EXPECT_FALSE(cached_snapshot(cache, "acme/other"));
    EXPECT_FALSE(cached_snapshot(cache, "acme/tiny", "../../x"));
    add_snapshot(repo, "1111111999999999999999999999999999999999", {{"config.json", "{}"}});
    EXPECT_FALSE(cached_snapshot(cache, "acme/tiny", "1111111"));  // now two commits start so
}

TEST(HubCache, ModelReferences) {
    TempDir dir;
    const fs::path cache = dir.path() / "cache";
    const fs::path repo = cache / "models--acme--tiny";
    add_snapshot(repo, "3333333333333333333333333333333333333333", {{"config.json", "{}"}});
    put(repo / "refs" / "main", "3333333333333333333333333333333333333333");
    EXPECT_EQ(repo / "snapshots" / "3333333333333333333333333333333333333333", resolve_model_reference("acme/tiny", cache));
    EXPECT_EQ(repo / "snapshots" / "3333333333333333333333333333333333333333",
              resolve_model_reference("acme/tiny@3333333", cache));
    // A folder wins over a cached name, and anything not a hub name passes through unchanged.
    fs::create_directories(dir.path() / "acme" / "tiny");
    const fs::path cwd = fs::current_path();
    fs::current_path(dir.path());
    EXPECT_EQ(fs::path("acme/tiny"), resolve_model_reference("acme/tiny", cache));
    fs::current_path(cwd);
    EXPECT_EQ(fs::path("/no/such/dir"), resolve_model_reference("/no/such/dir", cache));
    EXPECT_EQ(fs::path("gpt2"), resolve_model_reference("gpt2", cache));
    EXPECT_THAT(error_of([&] { resolve_model_reference("acme/other", cache); }),
                testing::AllOf(testing::HasSubstr("acme/other is not a folder"), testing::HasSubstr(cache.string()),
                               testing::HasSubstr("windowpane-cli pull acme/other")));
    EXPECT_THAT(error_of([&] { resolve_model_reference("acme/tiny@v2", cache); }),
                testing::AllOf(testing::HasSubstr("acme/tiny at v2 is not in the Hugging Face cache"),
                               testing::HasSubstr("--revision v2")));
}

}  // namespace
}  // namespace wp::test
