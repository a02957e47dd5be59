// Model library commands: models (what this machine has: the Hugging Face cache and added folders).
// The hub's cache and its names: core's wp/hub.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <unistd.h>

#include "command.h"
#include "model_argument.h"
#include "wp/error.h"
#include "wp/hub/hub_client.h"
#include "wp/hub/hub_paths.h"
#include "wp/hub/model_library.h"
#include "wp/model/model_config.h"

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

std::atomic<bool> g_cancel{false};
void on_sigint(int) { g_cancel = true; }

std::string duration(double s) {
    char buf[32];
    if (s >= 3600)
        std::snprintf(buf, sizeof buf, "%dh%02dm", static_cast<int>(s / 3600), static_cast<int>(s / 60) % 60);
    else
        std::snprintf(buf, sizeof buf, "%dm%02ds", static_cast<int>(s / 60), static_cast<int>(s) % 60);
    return buf;
}

int run_pull(const Args& a) {
    if (a.positional().size() != 1) throw UsageError("pull takes one model name: windowpane-cli pull ORG/NAME");
    const std::string repo = a.positional()[0];
    if (!is_repo_id(repo)) throw UsageError(repo + ": not a model name (ORG/NAME, as on huggingface.co)");
    PullOptions o;
    o.revision = a.str("revision", "main");
    if (a.has("include"))
        for (std::size_t at = 0, comma;; at = comma + 1) {
            comma = a.str("include").find(',', at);
            const std::string g = a.str("include").substr(at, comma - at);
            if (!g.empty()) o.include.push_back(g);
            if (comma == std::string::npos) break;
        }
    const bool tty = isatty(2);
    auto last = std::chrono::steady_clock::now() - std::chrono::seconds(1);
    std::string shown_file;
    o.progress = [&](const PullProgress& p) {
        const auto now = std::chrono::steady_clock::now();
        const bool file_done = p.file.empty() || p.file_done >= p.file_total;
        if (!tty) {
            if (!p.file.empty() && p.file != shown_file) {
                std::fprintf(stderr, "downloading %s (%s)\n", p.file.c_str(), human_bytes(p.file_total).c_str());
                shown_file = p.file;
            }
            return;
        }
        if (now - last < std::chrono::milliseconds(200) && !file_done) return;
        last = now;
        const double left = p.bytes_per_second > 0 ? (p.total - std::min(p.done, p.total)) / p.bytes_per_second : 0;
        std::fprintf(stderr, "\r\033[K[%d/%d] %s  %s / %s  %.1f MB/s  %s left", std::min(p.files_done + 1, p.files_total),
                     p.files_total, p.file.c_str(), human_bytes(p.done).c_str(), human_bytes(p.total).c_str(),
                     p.bytes_per_second / 1e6, duration(left).c_str());
    };
    o.cancel = &g_cancel;
    std::signal(SIGINT, on_sigint);
    const HubClient hub = HubClient::from_environment();
    PullResult r;
    try {
        r = hub.pull(repo, o);
    } catch (const std::exception&) {
        if (tty) std::fprintf(stderr, "\r\033[K");  // the error's line replaces the progress line
        throw;
    }
    if (tty) std::fprintf(stderr, "\r\033[K");
    std::fprintf(stderr, "%s at %s: %d files, %d downloaded (%s), %d already in the cache\n", repo.c_str(),
                 r.commit.substr(0, 10).c_str(), r.files, r.downloaded, human_bytes(r.bytes_downloaded).c_str(),
                 r.files - r.downloaded);
    std::printf("%s\n", r.snapshot.string().c_str());
    const LibraryModel m = describe_model_folder(r.snapshot);
    if (m.supported)
        std::fprintf(stderr, "open it with: windowpane-cli chat --model %s%s\n", repo.c_str(),
                     o.revision == "main" ? "" : ("@" + o.revision).c_str());
    else if (o.include.empty())
        std::fprintf(stderr, "Windowpane cannot open it: %s\n", m.why.c_str());
    return 0;
}

int run_search(const Args& a) {
    HubSearch q;
    if (!a.positional().empty()) q.text = a.positional()[0];
    q.author = a.str("author", "");
    q.sort = a.str("sort", "downloads");
    if (q.sort != "downloads" && q.sort != "likes") throw UsageError("--sort takes downloads or likes");
    const long long limit = a.integer("limit", 20);
    if (limit < 1 || limit > 1000) throw UsageError("--limit must be between 1 and 1000");
    const bool all = a.flag("all");
    // Asks for more than shown: hits of other families are dropped here.
    q.limit = all ? static_cast<int>(limit) : static_cast<int>(std::min(1000ll, limit * 5));
    std::vector<HubSearchHit> hits = HubClient::from_environment().search(q);
    const std::vector<std::string> families = {"gemma", "gemma2", "qwen2"};
    if (!all)
        hits.erase(std::remove_if(hits.begin(), hits.end(),
                                  [&](const HubSearchHit& h) {
                                      return std::none_of(families.begin(), families.end(), [&](const std::string& f) {
                                          return std::find(h.tags.begin(), h.tags.end(), f) != h.tags.end();
                                      });
                                  }),
                   hits.end());
    if (hits.size() > static_cast<std::size_t>(limit)) hits.resize(static_cast<std::size_t>(limit));
    if (a.flag("json")) {
        nlohmann::ordered_json out = nlohmann::ordered_json::array();
        for (const HubSearchHit& h : hits)
            out.push_back({{"id", h.repo_id}, {"downloads", h.downloads}, {"likes", h.likes}, {"gated", h.gated},
                           {"pipeline_tag", h.pipeline_tag}, {"tags", h.tags}});
        std::printf("%s\n", out.dump(2).c_str());
        return 0;
    }
    if (hits.empty()) {
        std::printf("No models found%s.\n", all ? "" : " of the families Windowpane runs (gemma, gemma2, qwen2; --all shows every one)");
        return 0;
    }
    std::printf("%-50s %12s %8s  %s\n", "MODEL", "DOWNLOADS", "LIKES", "");
    for (const HubSearchHit& h : hits)
        std::printf("%-50s %12lld %8lld  %s\n", h.repo_id.c_str(), static_cast<long long>(h.downloads),
                    static_cast<long long>(h.likes), h.gated ? "gated: accept its license on the hub, then log in" : "");
    return 0;
}

int run_login(const Args& a) {
    const HubPaths paths = hub_paths();
    std::string token = a.str("token", "");
    if (token.empty()) {
        std::fprintf(stderr, "Paste a Hugging Face access token (huggingface.co/settings/tokens, read access): ");
        std::getline(std::cin, token);
    }
    while (!token.empty() && (token.back() == '\n' || token.back() == '\r' || token.back() == ' ')) token.pop_back();
    if (token.empty()) throw UsageError("no token given");
    save_hub_token(paths, token);
    std::fprintf(stderr, "Token saved to %s (shared with huggingface-cli and transformers).\n", paths.token_file.string().c_str());
    return 0;
}

int run_models(const Args& a) {
    const fs::path file = library_folders_file();
    std::vector<fs::path> folders = read_library_folders(file);
    if (a.has("add") || a.has("remove")) {
        if (a.has("add")) {
            const fs::path dir = fs::absolute(a.str("add")).lexically_normal();
            std::error_code ec;
            if (!fs::is_directory(dir, ec) && !is_gguf_file(dir)) throw Error(dir.string() + ": not a folder or a GGUF file");
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
    const std::vector<PartialDownload> partial = partial_downloads(hub);
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
        out["unfinished_downloads"] = nlohmann::ordered_json::array();
        for (const PartialDownload& p : partial)
            out["unfinished_downloads"].push_back({{"name", p.repo_id}, {"bytes", p.bytes}, {"files", p.files}});
        std::printf("%s\n", out.dump(2).c_str());
        return 0;
    }
    std::printf("Hugging Face cache: %s\n", hub.cache.string().c_str());
    for (const PartialDownload& p : partial)
        std::printf("Unfinished download: %s (%s so far): windowpane-cli pull %s resumes it\n", p.repo_id.c_str(),
                    human_bytes(p.bytes).c_str(), p.repo_id.c_str());
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
        "Model library (PATH: a model folder, a GGUF file, or ORG/NAME[@REVISION] from the Hugging Face cache)",
        {
            {"models", "The models on this machine: the Hugging Face cache and added folders",
             {"[--json] [--add DIR] [--remove DIR]"},
             "Every model in the Hugging Face cache (HF_HUB_CACHE, else HF_HOME/hub, else\n"
             "~/.cache/huggingface/hub, shared with transformers), every folder or GGUF file added with\n"
             "--add (and the model folders and GGUF files inside it), and LM Studio's and Ollama's\n"
             "GGUF models (WP_LMSTUDIO_MODELS, OLLAMA_MODELS, else their usual folders),\n"
             "with family, head, parameters, dtype, size on disk and where it is. Models Windowpane\n"
             "cannot open are listed with the reason. A cached model opens by its name:\n"
             "  windowpane-cli chat --model ORG/NAME\n",
             {{"json"}, {"add", "remove"}},
             run_models},
            {"pull", "Download a model from the Hugging Face hub into its cache",
             {"ORG/NAME [--revision main] [--include GLOB[,GLOB...]]"},
             "Downloads what a model needs (config, safetensors weights, tokenizer, chat template)\n"
             "into the Hugging Face cache, laid out as huggingface_hub does, so transformers uses the\n"
             "same files. Every file is checked against the hub's SHA-256 (or git hash); an interrupted\n"
             "pull (Ctrl-C, a dropped connection) resumes where it stopped; a second pull downloads\n"
             "nothing. --include takes other files (fnmatch globs). Gated models (Gemma) need a token:\n"
             "accept the license on the model's page, then windowpane-cli login (or set HF_TOKEN).\n"
             "HF_ENDPOINT selects another hub (a mirror). Prints the snapshot folder.\n",
             {{}, {"revision", "include"}, 1},
             run_pull},
            {"search", "Search the Hugging Face hub for models Windowpane runs",
             {"[TEXT] [--author ORG] [--sort downloads|likes] [--limit 20] [--all] [--json]"},
             "Models on the hub whose name contains TEXT, most downloaded (or liked) first, of the\n"
             "families Windowpane runs (gemma, gemma2, qwen2; --all: every family).\n",
             {{"all", "json"}, {"author", "sort", "limit"}, 1},
             run_search},
            {"login", "Keep a Hugging Face access token (for gated and private models)",
             {"[--token TOKEN]"},
             "Saves the token where huggingface-cli keeps it (HF_TOKEN_PATH, else HF_HOME/token), readable\n"
             "by you only; without --token it is read from standard input. HF_TOKEN, when set, wins.\n",
             {{}, {"token"}},
             run_login},
        }};
    return group;
}

}  // namespace wp::cli
