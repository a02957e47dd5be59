// The Hugging Face hub over HTTP (HF_ENDPOINT): search, a model's files, and pull, which downloads
// a model into the hub cache exactly as huggingface_hub lays it out (blobs named by hash, relative
// links in snapshots/COMMIT, refs/REVISION holding the commit), so transformers and huggingface-cli
// find the same files and a second pull downloads nothing.
//
// A pull a user can trust: every file is checked against the hub's hash (SHA-256 for LFS files,
// the git blob id for others) before it counts; bytes land in blobs/ETAG.incomplete and a
// dropped connection, a cancel or a restart resumes there (HTTP Range); the disk's free space is
// checked before any byte; the snapshot's links are made only once every file is in, so a partial
// download never looks like a model. The blob locks are huggingface_hub's own
// (.locks/models--ORG--NAME/ETAG.lock, flock), so the two never write one blob at once.
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "wp/error.h"
#include "wp/hub/hub_paths.h"

namespace wp {

// A refusal or failure of the hub, with what to do about it in the message.
class HubError : public Error {
public:
    enum class Kind { NotFound, Unauthorized, Gated, Network, Hash, DiskFull, Cancelled, Other };
    HubError(Kind kind, const std::string& message) : Error(message), kind_(kind) {}
    Kind kind() const { return kind_; }

private:
    Kind kind_;
};

struct HubFile {
    std::string path;        // in the repo, '/'-separated
    std::uint64_t size = 0;
    std::string blob_id;     // git blob sha1
    std::string sha256;      // LFS files only
    bool lfs() const { return !sha256.empty(); }
    bool safetensors() const { return path.size() > 12 && path.compare(path.size() - 12, 12, ".safetensors") == 0; }
    const std::string& etag() const { return lfs() ? sha256 : blob_id; }  // its blob's name in the cache
};

struct HubModelInfo {
    std::string repo_id, commit;
    bool gated = false, is_private = false;
    std::string model_type;  // from the repo's config, may be empty
    std::vector<std::string> architectures, tags;
    std::vector<HubFile> files;
    std::int64_t parameters = 0;  // the hub's count from the safetensors headers; 0 when it gives none
    std::string weight_dtype;     // the dtype holding most of them ("BF16", "F32", ...), may be empty
};

struct HubSearch {
    std::string text;    // part of the repo id
    std::string author;
    std::string sort = "downloads";  // or "likes"
    int limit = 20;
};

struct HubSearchHit {
    std::string repo_id, pipeline_tag;
    std::int64_t downloads = 0, likes = 0;
    bool gated = false;
    std::vector<std::string> tags;
};

struct PullProgress {
    std::string file;               // the file being downloaded (empty once done)
    std::uint64_t file_done = 0, file_total = 0;
    std::uint64_t done = 0, total = 0;  // bytes of every file to download
    int files_done = 0, files_total = 0;
    double bytes_per_second = 0;    // this pull's transfer rate so far
};

struct PullOptions {
    std::string revision = "main";
    // Globs of repo paths (fnmatch, '*' crossing '/'); empty: what a model needs (config and
    // generation config, safetensors weights and their index, tokenizer and chat template files).
    std::vector<std::string> include;
    const std::atomic<bool>* cancel = nullptr;  // set: the pull ends with HubError Cancelled, resumable
    std::function<void(const PullProgress&)> progress;
    int attempts = 5;  // per file, for dropped connections (each resumes) and one hash mismatch
};

struct PullResult {
    std::filesystem::path snapshot;
    std::string commit;
    int files = 0, downloaded = 0;  // files in the snapshot, and those that needed bytes
    std::uint64_t bytes_downloaded = 0;
};

struct PartialDownload {
    std::string repo_id;
    std::uint64_t bytes = 0;  // in its .incomplete files
    int files = 0;
};
// The repos in `paths.cache` with partial files left by a pull that stopped (a cancel, a crash, a
// restart): pulling them again resumes.
std::vector<PartialDownload> partial_downloads(const HubPaths& paths);

// Deletes the partial files (blobs/*.incomplete) a cancelled pull of `repo_id` left, except those
// another process is downloading now (their lock is held). Returns how many were deleted.
int discard_partial_downloads(const HubPaths& paths, const std::string& repo_id);

class HubClient {
public:
    explicit HubClient(HubPaths paths, std::optional<std::string> token = std::nullopt);
    // hub_paths() and hub_token(): the user's cache, endpoint and login.
    static HubClient from_environment();
    const HubPaths& paths() const { return paths_; }

    std::vector<HubSearchHit> search(const HubSearch& query) const;
    // The repo at `revision` with every file's size and hash. Throws HubError.
    HubModelInfo model_info(const std::string& repo_id, const std::string& revision = "main") const;
    // The files `options.include` (or a model's own files) selects from `info`.
    static std::vector<HubFile> selected_files(const HubModelInfo& info, const std::vector<std::string>& include);
    // Downloads what the cache lacks and links the snapshot. Throws HubError.
    PullResult pull(const std::string& repo_id, const PullOptions& options = {}) const;

private:
    HubPaths paths_;
    std::optional<std::string> token_;
};

}  // namespace wp
