#include "wp/hub/model_library.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <fstream>
#include <map>
#include <set>
#include <system_error>

#include "io/gguf.h"
#include "kernels/gguf_weights.h"
#include "io/safetensors.h"
#include "model/gguf_checkpoint.h"
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

// llama.cpp's names for general.file_type (llama.h's enum llama_ftype); "" for a number it lacks.
std::string file_type_name(std::int64_t t) {
    static const std::map<std::int64_t, const char*> names = {
        {0, "F32"},      {1, "F16"},      {2, "Q4_0"},     {3, "Q4_1"},     {7, "Q8_0"},     {8, "Q5_0"},
        {9, "Q5_1"},     {10, "Q2_K"},    {11, "Q3_K_S"},  {12, "Q3_K_M"},  {13, "Q3_K_L"},  {14, "Q4_K_S"},
        {15, "Q4_K_M"},  {16, "Q5_K_S"},  {17, "Q5_K_M"},  {18, "Q6_K"},    {19, "IQ2_XXS"}, {20, "IQ2_XS"},
        {21, "Q2_K_S"},  {22, "IQ3_XS"},  {23, "IQ3_XXS"}, {24, "IQ1_S"},   {25, "IQ4_NL"},  {26, "IQ3_S"},
        {27, "IQ3_M"},   {28, "IQ2_S"},   {29, "IQ2_M"},   {30, "IQ4_XS"},  {31, "IQ1_M"},   {32, "BF16"},
        {36, "TQ1_0"},   {37, "TQ2_0"},   {38, "MXFP4_MOE"},
    };
    const auto it = names.find(t);
    return it == names.end() ? std::string() : it->second;
}

// A GGUF file from its header alone: metadata, tensor shapes and types (the tensor data is mapped
// but never touched). Supported when its config reads as Windowpane's and it carries a tokenizer
// Windowpane reads; otherwise why not.
LibraryModel describe_gguf(const fs::path& file) {
    LibraryModel m;
    m.dir = file;
    m.name = file.filename().string();
    m.gguf = true;
    std::error_code ec;
    m.bytes_on_disk = fs::file_size(file, ec);
    if (ec) m.bytes_on_disk = 0;
    try {
        const GgufFile g(file);
        m.head = "chat";  // llama.cpp's files are language models
        m.model_type = g.get_string("general.architecture").value_or("");
        std::map<std::uint32_t, std::int64_t> matrix_elems;  // per tensor type
        for (const GgufTensor& t : g.tensors()) {
            m.parameters += t.numel();
            if (t.dims.size() >= 2) matrix_elems[t.type] += t.numel();
        }
        if (auto ft = g.get_int("general.file_type")) m.dtype = file_type_name(*ft);
        if (m.dtype.empty() && !matrix_elems.empty()) {
            const auto most = std::max_element(matrix_elems.begin(), matrix_elems.end(),
                                               [](const auto& a, const auto& b) { return a.second < b.second; });
            m.dtype = ggml_type_name(most->first);
        }
        if (!m.model_type.empty())
            if (auto n = g.get_int(m.model_type + ".context_length"); n && *n > 0) m.context_length = *n;
        if (auto parts = g.get_int("split.count"); parts && *parts > 1) {
            m.why = "one of " + std::to_string(*parts) + " parts of a split GGUF model (Windowpane opens single-file GGUF)";
            return m;
        }
        const ModelConfig cfg = gguf_model_config(g);  // the family and its shapes, or why not
        m.architecture = cfg.architecture;
        const auto tokenizer = g.get_string("tokenizer.ggml.model");
        if (!tokenizer) {
            m.why = m.name + ": no tokenizer in the file (tokenizer.ggml.model is missing)";
            return m;
        }
        if (*tokenizer != "llama" && *tokenizer != "gpt2") {
            m.why = m.name + ": tokenizer.ggml.model \"" + *tokenizer + "\" is not supported (llama or gpt2)";
            return m;
        }
        // IQ and ternary types are GGUF too, but nothing Windowpane can compute with.
        for (const GgufTensor& t : g.tensors())
            if (!ggml_dequantizable(t.type)) {
                m.why = m.name + ": tensor " + t.name + " is " + ggml_type_name(t.type) + ", a type Windowpane does not read";
                return m;
            }
        m.supported = true;
    } catch (const std::exception& e) {
        m.why = e.what();
    }
    return m;
}

bool has_gguf_suffix(const fs::path& p) {
    std::string ext = p.extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
    return ext == ".gguf";
}

// Bounds on walking a folder the user added (or another app's): deep enough for
// publisher/model/file.gguf and a tree of such, short of walking a whole disk.
constexpr int kMaxScanDepth = 4;
constexpr int kMaxScanEntries = 50000;

// The model folders (with a config.json; not descended into) and .gguf files below `root`, sorted.
// Hidden folders are skipped: they are caches and version control, not a user's models.
void find_models(const fs::path& root, std::vector<fs::path>& folders, std::vector<fs::path>& ggufs) {
    std::error_code ec;
    int entries = 0;
    for (fs::recursive_directory_iterator it(root, fs::directory_options::skip_permission_denied, ec), end;
         !ec && it != end && ++entries <= kMaxScanEntries; it.increment(ec)) {
        std::error_code e2;
        const fs::path& p = it->path();
        if (it->is_directory(e2)) {
            const std::string leaf = p.filename().string();
            if (!leaf.empty() && leaf[0] == '.') {
                it.disable_recursion_pending();
            } else if (fs::is_regular_file(p / "config.json", e2)) {
                folders.push_back(p);
                it.disable_recursion_pending();
            } else if (it.depth() + 1 >= kMaxScanDepth) {
                it.disable_recursion_pending();
            }
        } else if (has_gguf_suffix(p) && it->is_regular_file(e2)) {
            ggufs.push_back(p);
        }
    }
    std::sort(folders.begin(), folders.end());
    std::sort(ggufs.begin(), ggufs.end());
}

// Ollama's models: manifests/HOST/NAMESPACE/MODEL/TAG, OCI-style JSON whose layer of media type
// application/vnd.ollama.image.model names the GGUF blob by digest (blobs/sha256-HEX).
struct OllamaModel {
    std::string name;  // "gemma2:2b", "NAMESPACE/MODEL:TAG", or "HOST/NAMESPACE/MODEL:TAG" as ollama list shows them
    fs::path blob;     // empty when the manifest names none
    std::string why;
};

std::vector<OllamaModel> ollama_models(const fs::path& root) {
    std::vector<OllamaModel> out;
    const fs::path manifests = root / "manifests";
    std::vector<fs::path> files;
    std::error_code ec;
    int entries = 0;
    for (fs::recursive_directory_iterator it(manifests, fs::directory_options::skip_permission_denied, ec), end;
         !ec && it != end && ++entries <= kMaxScanEntries; it.increment(ec)) {
        std::error_code e2;
        if (it.depth() == 3 && it->is_regular_file(e2)) files.push_back(it->path());
        if (it.depth() >= 3) it.disable_recursion_pending();
    }
    std::sort(files.begin(), files.end());
    for (const fs::path& f : files) {
        const fs::path rel = f.lexically_relative(manifests);
        std::vector<std::string> parts;
        for (const fs::path& part : rel) parts.push_back(part.string());
        if (parts.size() != 4) continue;
        OllamaModel m;
        m.name = parts[2] + ":" + parts[3];
        if (parts[0] != "registry.ollama.ai") m.name = parts[0] + "/" + parts[1] + "/" + m.name;
        else if (parts[1] != "library") m.name = parts[1] + "/" + m.name;
        try {
            JsonLimits limits;
            limits.max_bytes = 1 << 20;  // a manifest lists a handful of layers
            const nlohmann::json j = parse_json_file<nlohmann::json>(f, limits);
            const nlohmann::json* layers = j.is_object() && j.contains("layers") && j["layers"].is_array() ? &j["layers"] : nullptr;
            std::string digest;
            if (layers != nullptr)
                for (const auto& l : *layers)
                    if (l.is_object() && l.value("mediaType", "") == "application/vnd.ollama.image.model" &&
                        l.contains("digest") && l["digest"].is_string())
                        digest = l["digest"].get<std::string>();
            // The digest becomes a file name: only sha256 and hex digits, so it cannot point elsewhere.
            const bool hex = digest.size() == 71 && digest.compare(0, 7, "sha256:") == 0 &&
                             std::all_of(digest.begin() + 7, digest.end(), [](unsigned char c) { return std::isxdigit(c); });
            if (digest.empty()) m.why = "the Ollama manifest names no model layer";
            else if (!hex) m.why = "the Ollama manifest's model digest \"" + digest.substr(0, 80) + "\" is not sha256:HEX";
            else m.blob = root / "blobs" / ("sha256-" + digest.substr(7));
        } catch (const std::exception& e) {
            m.why = e.what();
        }
        out.push_back(std::move(m));
    }
    return out;
}

// The roots an environment variable names (separated by ':'), or the defaults that exist.
std::vector<fs::path> roots_from(const char* var, const std::vector<fs::path>& defaults) {
    std::vector<fs::path> out;
    std::error_code ec;
    if (const char* v = std::getenv(var); v != nullptr && *v != '\0') {
        std::string s(v);
        for (std::size_t start = 0; start <= s.size();) {
            const std::size_t colon = std::min(s.find(':', start), s.size());
            if (colon > start) out.emplace_back(s.substr(start, colon - start));
            start = colon + 1;
        }
        return out;
    }
    for (const fs::path& d : defaults)
        if (fs::is_directory(d, ec)) out.push_back(d);
    return out;
}

// The key a model is known by, so that one file reached twice (a link, two added folders) lists once.
std::string identity(const fs::path& p) {
    std::error_code ec;
    const fs::path c = fs::weakly_canonical(p, ec);
    return ec ? p.lexically_normal().string() : c.string();
}

}  // namespace

LibraryModel describe_model_folder(const fs::path& dir) {
    if (is_gguf_file(dir)) return describe_gguf(dir);
    LibraryModel m;
    m.dir = dir;
    m.name = dir.filename().string();
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) {
        m.why = fs::exists(dir, ec) ? "neither a model folder nor a GGUF file" : "the folder is gone";
        return m;
    }
    m.bytes_on_disk = bytes_under(dir);
    nlohmann::json config;
    try {
        config = parse_json_file<nlohmann::json>(dir / "config.json");
    } catch (const std::exception& e) {
        m.why = fs::exists(dir / "config.json", ec) ? e.what()
                                                    : "no config.json or GGUF file (not a model folder, or a partial download)";
        return m;
    }
    if (config.is_object()) {
        if (auto n = config.find("max_position_embeddings"); n != config.end() && n->is_number_integer())
            m.context_length = n->get<std::int64_t>();
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

OtherAppModels other_app_models() {
    std::vector<fs::path> lmstudio, ollama;
    if (const char* home = std::getenv("HOME"); home != nullptr && *home != '\0') {
        lmstudio = {fs::path(home) / ".lmstudio" / "models", fs::path(home) / ".cache" / "lm-studio" / "models"};
        ollama = {fs::path(home) / ".ollama" / "models"};
    }
    ollama.push_back("/usr/share/ollama/.ollama/models");  // the Linux install's service account
    return {roots_from("WP_LMSTUDIO_MODELS", lmstudio), roots_from("OLLAMA_MODELS", ollama)};
}

std::vector<LibraryModel> list_library(const fs::path& hub_cache, const std::vector<fs::path>& folders,
                                       const OtherAppModels& others) {
    std::vector<LibraryModel> out;
    std::set<std::string> seen;
    auto add = [&](LibraryModel m) {
        if (seen.insert(identity(m.dir)).second) out.push_back(std::move(m));
    };
    for (const CachedRepo& repo : scan_hub_cache(hub_cache))
        for (const CachedSnapshot& snap : repo.snapshots) {
            auto from_hub = [&](LibraryModel m, const std::string& name) {
                m.name = name;
                m.from_hub_cache = true;
                m.source = "hub cache";
                m.commit = snap.commit;
                m.refs = snap.refs;
                add(std::move(m));
            };
            // A repo of GGUF files (no config.json): each file is a model of its own.
            std::error_code ec;
            std::vector<fs::path> dirs, ggufs;
            if (!fs::exists(snap.dir / "config.json", ec)) find_models(snap.dir, dirs, ggufs);
            for (const fs::path& g : ggufs)
                from_hub(describe_gguf(g), repo.repo_id + "/" + g.lexically_relative(snap.dir).generic_string());
            if (ggufs.empty()) from_hub(describe_model_folder(snap.dir), repo.repo_id);
        }
    for (const fs::path& f : folders) {
        auto added = [&](LibraryModel m) {
            m.added_folder = f;
            add(std::move(m));
        };
        std::error_code ec;
        if (!fs::is_directory(f, ec) || fs::exists(f / "config.json", ec)) {
            added(describe_model_folder(f));  // a model folder, a GGUF file, or gone
            continue;
        }
        std::vector<fs::path> dirs, ggufs;
        find_models(f, dirs, ggufs);
        for (const fs::path& d : dirs) added(describe_model_folder(d));
        for (const fs::path& g : ggufs) added(describe_gguf(g));
        if (dirs.empty() && ggufs.empty()) added(describe_model_folder(f));  // says why it holds none
    }
    for (const fs::path& root : others.lmstudio) {
        std::vector<fs::path> dirs, ggufs;
        find_models(root, dirs, ggufs);
        for (const fs::path& g : ggufs) {
            LibraryModel m = describe_gguf(g);
            m.source = "LM Studio";
            add(std::move(m));
        }
    }
    for (const fs::path& root : others.ollama)
        for (const OllamaModel& o : ollama_models(root)) {
            LibraryModel m;
            std::error_code ec;
            if (!o.blob.empty() && fs::exists(o.blob, ec)) {
                m = describe_gguf(o.blob);
            } else {
                m.dir = o.blob.empty() ? root : o.blob;
                m.why = o.why.empty() ? "the model's blob " + o.blob.filename().string() + " is missing" : o.why;
            }
            m.name = o.name;
            m.source = "Ollama";
            // Two tags of one blob are two names for one model: both listed, as ollama list does.
            out.push_back(std::move(m));
            seen.insert(identity(out.back().dir));
        }
    return out;
}

std::string ollama_blob_name(const fs::path& blob) {
    if (blob.parent_path().filename() != "blobs" || blob.filename().string().rfind("sha256-", 0) != 0) return {};
    const fs::path root = blob.parent_path().parent_path();
    for (const OllamaModel& o : ollama_models(root))
        if (!o.blob.empty() && o.blob.filename() == blob.filename()) return o.name;
    return {};
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
