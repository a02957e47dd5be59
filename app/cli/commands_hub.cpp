// Model library commands: models (what this machine has: the Hugging Face cache and added folders).
// The hub's cache and its names: core's wp/hub.
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

#include "command.h"
#include "model_argument.h"
#include "wp/error.h"
#include "wp/hub/hub_paths.h"
#include "wp/hub/model_library.h"

namespace wp::cli {

namespace {

namespace fs = std::filesystem;

std::string human_bytes(std::uint64_t b) {
    char buf[32];
    if (b >= (1ull << 30))
        std::snprintf(buf, sizeof buf, "%.1f GB", b / 1073741824.0);
    else if (b >= (1ull << 20))
        std::snprintf(buf, sizeof buf, "%.1f MB", b / 1048576.0);
    else
        std::snprintf(buf, sizeof buf, "%.0f KB", b / 1024.0);
    return buf;
}

std::string human_count(std::int64_t n) {
    char buf[32];
    if (n >= 1000000000)
        std::snprintf(buf, sizeof buf, "%.2fB", n / 1e9);
    else if (n >= 1000000)
        std::snprintf(buf, sizeof buf, "%.1fM", n / 1e6);
    else if (n >= 1000)
        std::snprintf(buf, sizeof buf, "%.1fK", n / 1e3);
    else
        std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(n));
    return buf;
}

int run_models(const Args& a) {
    const fs::path file = library_folders_file();
    std::vector<fs::path> folders = read_library_folders(file);
    if (a.has("add") || a.has("remove")) {
        if (a.has("add")) {
            const fs::path dir = fs::absolute(a.str("add")).lexically_normal();
            std::error_code ec;
            if (!fs::is_directory(dir, ec)) throw Error(dir.string() + ": not a folder");
            if (std::find(folders.begin(), folders.end(), dir) == folders.end()) folders.push_back(dir);
        }
        if (a.has("remove")) {
            const fs::path dir = fs::absolute(a.str("remove")).lexically_normal();
            const auto it = std::find(folders.begin(), folders.end(), dir);
            if (it == folders.end()) throw Error(dir.string() + ": not in the library (" + file.string() + ")");
            folders.erase(it);
        }
        write_library_folders(file, folders);
    }
    const HubPaths hub = hub_paths();
    const std::vector<LibraryModel> models = list_library(hub.cache, folders);
    if (a.flag("json")) {
        nlohmann::ordered_json out{{"hub_cache", hub.cache.string()}, {"library_file", file.string()},
                                   {"models", nlohmann::ordered_json::array()}};
        for (const LibraryModel& m : models)
            out["models"].push_back({{"name", m.name},
                                     {"dir", m.dir.string()},
                                     {"source", m.from_hub_cache ? "hub cache" : "folder"},
                                     {"commit", m.commit},
                                     {"refs", m.refs},
                                     {"model_type", m.model_type},
                                     {"architecture", m.architecture},
                                     {"head", m.head},
                                     {"parameters", m.parameters},
                                     {"dtype", m.dtype},
                                     {"bytes_on_disk", m.bytes_on_disk},
                                     {"supported", m.supported},
                                     {"why", m.why}});
        std::printf("%s\n", out.dump(2).c_str());
        return 0;
    }
    std::printf("Hugging Face cache: %s\n", hub.cache.string().c_str());
    if (!folders.empty()) std::printf("Added folders: %s\n", file.string().c_str());
    if (models.empty()) {
        std::printf("No models yet. windowpane-cli pull ORG/NAME downloads one (for example Qwen/Qwen2-0.5B-Instruct);\n"
                    "windowpane-cli models --add DIR adds a folder.\n");
        return 0;
    }
    std::printf("\n%-40s %-8s %-13s %9s %-6s %9s  %s\n", "MODEL", "FAMILY", "HEAD", "PARAMS", "DTYPE", "SIZE", "WHERE");
    for (const LibraryModel& m : models) {
        std::string name = m.name;
        if (m.from_hub_cache && (m.refs.empty() || m.refs.front() != "main")) name += "@" + m.commit.substr(0, 10);
        std::printf("%-40s %-8s %-13s %9s %-6s %9s  %s\n", name.c_str(), m.model_type.empty() ? "?" : m.model_type.c_str(),
                    m.head.empty() ? "?" : m.head.c_str(), m.parameters > 0 ? human_count(m.parameters).c_str() : "?",
                    m.dtype.empty() ? "?" : m.dtype.c_str(), human_bytes(m.bytes_on_disk).c_str(), m.dir.string().c_str());
        if (!m.supported) std::printf("%-40s not supported: %s\n", "", m.why.c_str());
    }
    return 0;
}

}  // namespace

const CommandGroup& hub_commands() {
    static const CommandGroup group{
        "Model library (DIR may also be ORG/NAME[@REVISION] from the Hugging Face cache)",
        {
            {"models", "The models on this machine: the Hugging Face cache and added folders",
             {"[--json] [--add DIR] [--remove DIR]"},
             "Every model in the Hugging Face cache (HF_HUB_CACHE, else HF_HOME/hub, else\n"
             "~/.cache/huggingface/hub, shared with transformers) and every folder added with --add,\n"
             "with family, head, parameters, dtype, size on disk and where it is. Models Windowpane\n"
             "cannot open are listed with the reason. A cached model opens by its name:\n"
             "  windowpane-cli chat --model ORG/NAME\n",
             {{"json"}, {"add", "remove"}},
             run_models},
        }};
    return group;
}

}  // namespace wp::cli
