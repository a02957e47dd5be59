// What a pull takes from the hub's answer: a model's own files by default, globs otherwise, and
// never a path that leaves the snapshot or a hash that is not one (the answer comes from a server).
#include <gtest/gtest.h>

#include "wp/hub/hub_client.h"

namespace wp::test {
namespace {

HubFile file(const std::string& path, bool lfs = false) {
    HubFile f;
    f.path = path;
    f.blob_id = std::string(40, 'a');
    if (lfs) f.sha256 = std::string(64, 'b');
    return f;
}

std::vector<std::string> paths(const std::vector<HubFile>& files) {
    std::vector<std::string> out;
    for (const HubFile& f : files) out.push_back(f.path);
    return out;
}

TEST(HubClient, TakesAModelsOwnFilesByDefault) {
    HubModelInfo info;
    for (const char* p : {"config.json", "generation_config.json", "model-00001-of-00002.safetensors",
                          "model.safetensors.index.json", "tokenizer.json", "tokenizer_config.json", "README.md",
                          "pytorch_model.bin", "original/model.safetensors", "chat_template.jinja", ".gitattributes"})
        info.files.push_back(file(p, std::string(p).find(".safetensors") != std::string::npos));
    EXPECT_EQ((std::vector<std::string>{"config.json", "generation_config.json", "model-00001-of-00002.safetensors",
                                        "model.safetensors.index.json", "tokenizer.json", "tokenizer_config.json",
                                        "chat_template.jinja"}),
              paths(HubClient::selected_files(info, {})));
    EXPECT_EQ((std::vector<std::string>{"README.md", "original/model.safetensors"}),
              paths(HubClient::selected_files(info, {"README.md", "original/*"})));
}

TEST(HubClient, RefusesPathsAndHashesFromAHostileAnswer) {
    HubModelInfo info;
    for (const char* p : {"../escape.json", "a/../../x.json", "./config.json", "a//b.json", "/etc/passwd", "a\\b.json", ""})
        info.files.push_back(file(p));
    HubFile partial = file("weights.safetensors", true);
    partial.sha256 = std::string(64, 'c') + ".incomplete";  // would match a partial file's name
    info.files.push_back(partial);
    HubFile dots = file("x.json");
    dots.blob_id = "..";
    info.files.push_back(dots);
    HubFile upper = file("y.json");
    upper.blob_id = std::string(40, 'A');
    info.files.push_back(upper);
    HubFile good = file("sub/ok.json");
    info.files.push_back(good);
    EXPECT_EQ(std::vector<std::string>{"sub/ok.json"}, paths(HubClient::selected_files(info, {"*"})));
}

}  // namespace
}  // namespace wp::test
