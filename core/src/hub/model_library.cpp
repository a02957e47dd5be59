#include "wp/hub/model_library.h"

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <set>
#include <system_error>

#include "io/safetensors.h"
#include "wp/error.h"
#include "wp/hub/hub_cache.h"
#include "wp/io/file_util.h"
#include "wp/io/json_file.h"
#include "wp/model/model_config.h"

namespace wp {

namespace fs = std::filesystem;

namespace {

// What transformers' architecture names end with, and what Windowpane calls the head.
std::string head_of(const std::string& architecture, const nlohmann::json& config) {
    auto ends = [&](const char* suffix) {
        const std::string s(suffix);
        return architecture.size() >= s.size() && architecture.compare(architecture.size() - s.size(), s.size(), s) == 0;
    };
    if (architecture.empty() || ends("ForCausalLM")) return "chat";
    if (ends("ForSequenceClassification")) {
        // A reward model is a sequence classifier with one output (one score).
        const auto labels = config.find("id2label");
        const bool one = config.value("num_labels", 0) == 1 || (labels != config.end() && labels->is_object() && labels->size() == 1);
        return one ? "reward" : "classification";
    }
    if (ends("ForTokenClassification")) return "token classification";
    if (ends("ForQuestionAnswering")) return "question answering";
    return "other";
}

// Bytes of the regular files under dir, each file (or blob a link points at) counted once.
std::uint64_t bytes_under(const fs::path& dir) {
    std::uint64_t total = 0;
    std::set<fs::path> seen;
    std::error_code ec;
    for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
        std::error_code e2;
        if (!it->is_regular_file(e2)) continue;  // follows links; a dangling one is not a file
        const fs::path real = fs::canonical(it->path(), e2);
        if (e2 || !seen.insert(real).second) continue;
        total += fs::file_size(real, e2);
    }
    return total;
}

bool has_tokenizer(const fs::path& dir) {
    std::error_code ec;
    return fs::is_regular_file(dir / "tokenizer.json", ec) || fs::is_regular_file(dir / "tokenizer.model", ec);
}

}  // namespace

LibraryModel describe_model_folder(const fs::path& dir) {
    LibraryModel m;
    m.dir = dir;
    m.name = dir.filename().string();
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) {
        m.why = "the folder is gone";
        return m;
    }
    m.bytes_on_disk = bytes_under(dir);
    nlohmann::json config;
    try {
        config = parse_json_file<nlohmann::json>(dir / "config.json");
    } catch (const std::exception& e) {
        m.why = fs::exists(dir / "config.json", ec) ? e.what() : "no config.json (not a model folder, or a partial download)";
        return m;
    }
    if (config.is_object()) {
        if (config.contains("model_type") && config["model_type"].is_string()) m.model_type = config["model_type"];
        if (config.contains("architectures") && config["architectures"].is_array() && !config["architectures"].empty() &&
            config["architectures"][0].is_string())
            m.architecture = config["architectures"][0];
    }
    m.head = head_of(m.architecture, config.is_object() ? config : nlohmann::json::object());
    try {
        const WeightStore store = WeightStore::open_dir(dir);
        std::set<std::string> dtypes;
        for (const TensorView* t : store.all()) {
            m.parameters += t->numel();
            dtypes.insert(dtype_name(t->dtype));
        }
        m.dtype = dtypes.size() == 1 ? *dtypes.begin() : dtypes.empty() ? "" : "mixed";
    } catch (const std::exception& e) {
        m.why = e.what();
    }
    try {
        ModelConfig::load(dir);
    } catch (const std::exception& e) {
        m.why = e.what();  // the family comes first: a weights problem matters only for a family it runs
        return m;
    }
    if (!m.why.empty()) return m;
    if (!has_tokenizer(dir)) {
        m.why = "no tokenizer.json or tokenizer.model";
        return m;
    }
    m.supported = true;
    return m;
}

std::vector<LibraryModel> list_library(const fs::path& hub_cache, const std::vector<fs::path>& folders) {
    std::vector<LibraryModel> out;
    for (const CachedRepo& repo : scan_hub_cache(hub_cache))
        for (const CachedSnapshot& snap : repo.snapshots) {
            LibraryModel m = describe_model_folder(snap.dir);
            m.name = repo.repo_id;
            m.from_hub_cache = true;
            m.commit = snap.commit;
            m.refs = snap.refs;
            out.push_back(std::move(m));
        }
    for (const fs::path& f : folders) out.push_back(describe_model_folder(f));
    return out;
}

fs::path library_folders_file() {
    const char* xdg = std::getenv("XDG_CONFIG_HOME");
    if (xdg != nullptr && *xdg == '/') return fs::path(xdg) / "windowpane" / "library.json";
    const char* home = std::getenv("HOME");
    if (home != nullptr && *home != '\0') return fs::path(home) / ".config" / "windowpane" / "library.json";
    return {};
}

std::vector<fs::path> read_library_folders(const fs::path& file) {
    std::error_code ec;
    if (file.empty() || !fs::exists(file, ec)) return {};
    const nlohmann::json j = parse_json_file<nlohmann::json>(file);
    if (!j.is_object() || !j.contains("folders") || !j["folders"].is_array())
        throw Error(file.string() + ": expected {\"folders\": [...]}");
    std::vector<fs::path> folders;
    for (const auto& f : j["folders"]) {
        if (!f.is_string()) throw Error(file.string() + ": every folder must be a string");
        folders.emplace_back(f.get<std::string>());
    }
    return folders;
}

void write_library_folders(const fs::path& file, const std::vector<fs::path>& folders) {
    if (file.empty()) throw Error("cannot tell where to keep the library: set XDG_CONFIG_HOME or HOME");
    nlohmann::json j{{"folders", nlohmann::json::array()}};
    for (const fs::path& f : folders) j["folders"].push_back(f.string());
    write_file_atomically(file, j.dump(2) + "\n");
}

}  // namespace wp
