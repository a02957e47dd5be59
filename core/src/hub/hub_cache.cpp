#include "wp/hub/hub_cache.h"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <map>
#include <system_error>

#include "wp/error.h"
#include "wp/hub/hub_paths.h"

namespace wp {

namespace fs = std::filesystem;

namespace {

std::string read_ref(const fs::path& file) {
    std::ifstream in(file);
    std::string commit;
    std::getline(in, commit);
    while (!commit.empty() && (commit.back() == '\r' || commit.back() == ' ')) commit.pop_back();
    return commit;
}

// refs/NAME files, NAME possibly with '/' (refs/pr/1): name -> commit.
std::map<std::string, std::string> read_refs(const fs::path& repo) {
    std::map<std::string, std::string> refs;
    std::error_code ec;
    const fs::path dir = repo / "refs";
    if (!fs::is_directory(dir, ec)) return refs;
    for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
        if (it->is_regular_file(ec)) refs[it->path().lexically_relative(dir).generic_string()] = read_ref(it->path());
    return refs;
}

}  // namespace

std::vector<CachedRepo> scan_hub_cache(const fs::path& cache) {
    std::vector<CachedRepo> repos;
    std::error_code ec;
    if (!fs::is_directory(cache, ec)) return repos;
    for (fs::directory_iterator it(cache, ec), end; !ec && it != end; it.increment(ec)) {
        const auto id = repo_id_of_folder(it->path().filename().string());
        if (!id || !it->is_directory(ec)) continue;
        CachedRepo repo{*id, it->path(), {}};
        const auto refs = read_refs(it->path());
        const fs::path snaps = it->path() / "snapshots";
        for (fs::directory_iterator s(snaps, ec), send; !ec && s != send; s.increment(ec)) {
            if (!s->is_directory(ec)) continue;
            CachedSnapshot snap{s->path().filename().string(), s->path(), {}};
            for (const auto& [ref, commit] : refs)
                if (commit == snap.commit) snap.refs.push_back(ref);
            repo.snapshots.push_back(std::move(snap));
        }
        ec.clear();
        std::sort(repo.snapshots.begin(), repo.snapshots.end(), [](const CachedSnapshot& a, const CachedSnapshot& b) {
            if (a.refs.empty() != b.refs.empty()) return !a.refs.empty();
            return a.commit < b.commit;
        });
        repos.push_back(std::move(repo));
    }
    std::sort(repos.begin(), repos.end(), [](const CachedRepo& a, const CachedRepo& b) { return a.repo_id < b.repo_id; });
    return repos;
}

std::optional<fs::path> cached_snapshot(const fs::path& cache, const std::string& repo_id, const std::string& revision) {
    if (!is_repo_id(repo_id) || revision.empty() || revision.find("..") != std::string::npos) return std::nullopt;
    const fs::path repo = cache / repo_folder_name(repo_id);
    std::error_code ec;
    const fs::path ref = repo / "refs" / revision;
    if (fs::is_regular_file(ref, ec)) {
        const std::string commit = read_ref(ref);
        if (!commit.empty() && commit.find('/') == std::string::npos && fs::is_directory(repo / "snapshots" / commit, ec))
            return repo / "snapshots" / commit;
        return std::nullopt;
    }
    const bool hex = revision.size() >= 7 && revision.size() <= 40 &&
                     std::all_of(revision.begin(), revision.end(), [](char c) { return std::isxdigit(static_cast<unsigned char>(c)); });
    if (!hex) return std::nullopt;
    std::optional<fs::path> found;
    for (fs::directory_iterator s(repo / "snapshots", ec), end; !ec && s != end; s.increment(ec)) {
        if (s->path().filename().string().rfind(revision, 0) != 0 || !s->is_directory(ec)) continue;
        if (found) return std::nullopt;  // the prefix names more than one
        found = s->path();
    }
    return found;
}

fs::path resolve_model_reference(const std::string& reference, const fs::path& cache) {
    std::error_code ec;
    if (fs::is_directory(reference, ec) || fs::is_regular_file(reference, ec)) return reference;  // a folder or a GGUF file
    const auto at = reference.find('@');
    const std::string id = reference.substr(0, at);
    const std::string revision = at == std::string::npos ? "main" : reference.substr(at + 1);
    // A name with a slash, or any name the cache holds: a bare "gpt2" may be a mistyped folder.
    if (is_repo_id(id) && !revision.empty()) {
        if (auto snap = cached_snapshot(cache, id, revision)) return *snap;
        if (id.find('/') != std::string::npos) {
            const bool known = fs::is_directory(cache / repo_folder_name(id), ec);
            throw Error(reference + " is not a folder, and " +
                        (known ? id + " at " + revision + " is not" : id + " is not") + " in the Hugging Face cache at " +
                        cache.string() + ": windowpane-cli pull " + id +
                        (at == std::string::npos ? "" : " --revision " + revision) + " fetches it");
        }
    }
    return reference;  // not a hub name: opening it says what is wrong with it as a folder
}

}  // namespace wp
