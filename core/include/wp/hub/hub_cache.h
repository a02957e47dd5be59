// The hub cache as huggingface_hub lays it out, read without changing it:
//   models--ORG--NAME/refs/main             the commit that "main" was when last fetched
//   models--ORG--NAME/snapshots/COMMIT/...  the repo's files at that commit, relative symlinks
//   models--ORG--NAME/blobs/ETAG            the files' bytes (ETAG: sha256 for LFS files, else the git
//                                           blob id); ETAG.incomplete while being downloaded
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace wp {

struct CachedSnapshot {
    std::string commit;
    std::filesystem::path dir;
    std::vector<std::string> refs;  // the refs naming this commit ("main", ...)
};

struct CachedRepo {
    std::string repo_id;  // "ORG/NAME"
    std::filesystem::path dir;
    std::vector<CachedSnapshot> snapshots;  // those a ref names first, then the rest by commit
};

// Every model repo in `cache` with its snapshots; a missing cache is empty. Folders that are not
// models--* repos, and snapshots that are not folders, are passed over.
std::vector<CachedRepo> scan_hub_cache(const std::filesystem::path& cache);

// The snapshot folder of `repo_id` at `revision`: a ref ("main", a branch or tag fetched before) or
// a commit (40 hex digits, or a prefix of at least 7 that names one snapshot); nullopt if the cache
// does not hold it.
std::optional<std::filesystem::path> cached_snapshot(const std::filesystem::path& cache, const std::string& repo_id,
                                                     const std::string& revision = "main");

// What a model argument names: an existing folder as it is; else "ORG/NAME" or "ORG/NAME@REVISION"
// as its snapshot in `cache`, throwing wp::Error when the cache lacks it ("... is not a folder, and
// ORG/NAME is not in the Hugging Face cache at ...: windowpane-cli pull ORG/NAME fetches it");
// anything else unchanged (opening it reports what is wrong).
std::filesystem::path resolve_model_reference(const std::string& reference, const std::filesystem::path& cache);

}  // namespace wp
