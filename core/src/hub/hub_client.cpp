#include "wp/hub/hub_client.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fcntl.h>
#include <fnmatch.h>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sys/file.h>
#include <system_error>
#include <thread>
#include <unistd.h>

#include "hub/file_hashes.h"
#include "hub/http.h"
#include "wp/io/file_util.h"

namespace wp {

namespace fs = std::filesystem;

namespace {

using Kind = HubError::Kind;

// Percent-encoding of one URL part; '/' kept when `keep_slash` (file paths), not in revisions.
std::string encode(const std::string& s, bool keep_slash) {
    static const char* hex = "0123456789ABCDEF";
    std::string out;
    for (unsigned char c : s) {
        if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || (keep_slash && c == '/'))
            out += static_cast<char>(c);
        else
            out += {'%', hex[c >> 4], hex[c & 15]};
    }
    return out;
}

// j[key] when it is a string (the hub writes null for what it does not know), else "".
std::string text(const nlohmann::json& j, const char* key) {
    const auto it = j.find(key);
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::int64_t count(const nlohmann::json& j, const char* key) {
    const auto it = j.find(key);
    return it != j.end() && it->is_number_integer() ? it->get<std::int64_t>() : 0;
}

std::string human(std::uint64_t b) {
    char buf[32];
    std::snprintf(buf, sizeof buf, b >= (1ull << 30) ? "%.2f GB" : "%.1f MB", b >= (1ull << 30) ? b / 1073741824.0 : b / 1048576.0);
    return buf;
}

// The hub's error text: X-Error-Message, else the JSON body's "error".
std::string hub_message(const http::Response& r) {
    std::string m = r.header("x-error-message");
    if (m.empty()) {
        try {
            const auto j = nlohmann::json::parse(r.body);
            if (j.is_object() && j.contains("error") && j["error"].is_string()) m = j["error"];
        } catch (const std::exception&) {
        }
    }
    return m;
}

[[noreturn]] void throw_for(const http::Response& r, const HubPaths& paths, const std::string& repo,
                            const std::string& revision, const std::string& what, bool had_token) {
    const std::string code = r.header("x-error-code");
    const std::string page = paths.endpoint + "/" + repo;
    if (code == "GatedRepo") {
        if (r.status == 401 && !had_token)
            throw HubError(Kind::Gated, repo + " is gated: it needs a Hugging Face token with access. Log in "
                                        "(windowpane-cli login, or set HF_TOKEN), accept the model's license at " +
                                            page + ", then pull again");
        throw HubError(Kind::Gated, repo + " is gated and this token has no access to it yet: accept the model's license at " +
                                        page + " (signed in as the token's owner), then pull again");
    }
    if (code == "RepoNotFound" || (r.status == 404 && code.empty() && what.empty()))
        throw HubError(Kind::NotFound, repo + ": no such model on " + paths.endpoint +
                                           (had_token ? "" : " (or a private one: log in to see it)"));
    if (code == "RevisionNotFound") throw HubError(Kind::NotFound, repo + " has no revision \"" + revision + "\"");
    if (code == "EntryNotFound" || r.status == 404) throw HubError(Kind::NotFound, repo + ": no file " + what + " at " + revision);
    if (r.status == 403)
        throw HubError(Kind::Unauthorized, repo + ": access refused" + (what.empty() ? "" : " to " + what) + " (HTTP 403" +
                                               (hub_message(r).empty() ? "" : ": " + hub_message(r)) +
                                               "); a proxy or an expired link can do this too: pull again");
    if (r.status == 401)
        throw HubError(Kind::Unauthorized, repo + ": the hub refused the token (" + hub_message(r) +
                                               "); log in again with windowpane-cli login");
    const std::string m = hub_message(r);
    throw HubError(r.status >= 500 ? Kind::Network : Kind::Other,
                   repo + ": the hub answered " + std::to_string(r.status) + (m.empty() ? "" : " (" + m + ")"));
}

// A repo path made of ordinary names: no empty, "." or ".." part, not absolute, no backslash.
bool safe_repo_path(const std::string& path) {
    if (path.empty() || path.front() == '/' || path.find('\\') != std::string::npos) return false;
    for (std::size_t at = 0;;) {
        const std::size_t slash = path.find('/', at);
        const std::string part = path.substr(at, slash - at);
        if (part.empty() || part == "." || part == "..") return false;
        if (slash == std::string::npos) return true;
        at = slash + 1;
    }
}

bool is_hex_hash(const std::string& s, std::size_t digits) {
    return s.size() == digits && s.find_first_not_of("0123456789abcdef") == std::string::npos;
}

bool default_file(const std::string& path) {
    if (path.find('/') != std::string::npos) return false;
    static const char* names[] = {"config.json",           "generation_config.json", "model.safetensors.index.json",
                                  "tokenizer.json",        "tokenizer.model",        "tokenizer_config.json",
                                  "special_tokens_map.json", "added_tokens.json",    "vocab.json",
                                  "merges.txt",            "chat_template.jinja",    "chat_template.json"};
    for (const char* n : names)
        if (path == n) return true;
    HubFile file;
    file.path = path;
    return file.safetensors();
}

// An exclusive flock on `file`, released when this object dies: huggingface_hub's filelock takes
// the same lock on the same path.
class FileLock {
public:
    FileLock(const fs::path& file, const std::atomic<bool>* cancel) {
        std::error_code ec;
        fs::create_directories(file.parent_path(), ec);
        fd_ = ::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (fd_ < 0) throw HubError(Kind::Other, file.string() + ": cannot create the lock file");
        // Polled, so that a cancel ends the wait for another process's download of the same blob.
        while (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
            const int err = errno;
            if ((err != EWOULDBLOCK && err != EINTR) || (cancel != nullptr && cancel->load())) {
                ::close(fd_);
                if (err != EWOULDBLOCK && err != EINTR) throw HubError(Kind::Other, file.string() + ": cannot lock");
                throw HubError(Kind::Cancelled, "cancelled while another download of the same file was running");
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
    }
    ~FileLock() { ::close(fd_); }  // closing releases the lock
    FileLock(const FileLock&) = delete;
    FileLock& operator=(const FileLock&) = delete;

private:
    int fd_ = -1;
};

void write_ref(const fs::path& file, const std::string& commit) {
    try {
        write_file_atomically(file, commit);  // no newline, as huggingface_hub writes it
    } catch (const std::exception& e) {
        throw HubError(Kind::Other, e.what());
    }
}

// snapshots/COMMIT/PATH -> ../../blobs/ETAG, one more ".." per folder in PATH.
void link_file(const fs::path& snapshot, const HubFile& f) {
    const fs::path link = snapshot / f.path;
    fs::path target;
    for (const auto& part : fs::path(f.path).parent_path()) target /= "..", (void)part;
    target = target / ".." / ".." / "blobs" / f.etag();
    std::error_code ec;
    fs::create_directories(link.parent_path(), ec);
    if (fs::is_symlink(link, ec) && fs::read_symlink(link, ec) == target) return;
    fs::remove(link, ec);
    fs::create_symlink(target, link, ec);
    if (ec) throw HubError(Kind::Other, link.string() + ": cannot link: " + ec.message());
}

std::uint64_t size_or_zero(const fs::path& p) {
    std::error_code ec;
    const auto s = fs::file_size(p, ec);
    return ec ? 0 : s;
}

}  // namespace

std::vector<PartialDownload> partial_downloads(const HubPaths& paths) {
    std::vector<PartialDownload> out;
    std::error_code ec;
    for (fs::directory_iterator it(paths.cache, ec), end; !ec && it != end; it.increment(ec)) {
        const auto id = repo_id_of_folder(it->path().filename().string());
        if (!id) continue;
        PartialDownload p{*id, 0, 0};
        std::error_code e2;
        for (fs::directory_iterator b(it->path() / "blobs", e2), bend; !e2 && b != bend; b.increment(e2))
            if (b->path().extension() == ".incomplete") {
                p.bytes += size_or_zero(b->path());
                ++p.files;
            }
        if (p.files > 0) out.push_back(std::move(p));
    }
    std::sort(out.begin(), out.end(), [](const PartialDownload& a, const PartialDownload& b) { return a.repo_id < b.repo_id; });
    return out;
}

int discard_partial_downloads(const HubPaths& paths, const std::string& repo_id) {
    if (!is_repo_id(repo_id)) return 0;
    const fs::path blobs = paths.cache / repo_folder_name(repo_id) / "blobs";
    const fs::path locks = paths.cache / ".locks" / repo_folder_name(repo_id);
    std::error_code ec;
    std::vector<fs::path> parts;
    for (fs::directory_iterator it(blobs, ec), end; !ec && it != end; it.increment(ec))
        if (it->path().extension() == ".incomplete") parts.push_back(it->path());
    int removed = 0;
    for (const fs::path& part : parts) {
        const fs::path lock = locks / (part.stem().string() + ".lock");
        const int fd = ::open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0) continue;
        if (::flock(fd, LOCK_EX | LOCK_NB) == 0 && fs::remove(part, ec)) ++removed;  // else being downloaded
        ::close(fd);
    }
    return removed;
}

HubClient HubClient::from_environment() {
    HubPaths paths = hub_paths();
    auto token = hub_token(paths);
    return HubClient(std::move(paths), std::move(token));
}

HubClient::HubClient(HubPaths paths, std::optional<std::string> token) : paths_(std::move(paths)), token_(std::move(token)) {}

std::vector<HubSearchHit> HubClient::search(const HubSearch& q) const {
    std::string url = paths_.endpoint + "/api/models?limit=" + std::to_string(q.limit) + "&sort=" + encode(q.sort, false) +
                      "&direction=-1";
    if (!q.text.empty()) url += "&search=" + encode(q.text, false);
    if (!q.author.empty()) url += "&author=" + encode(q.author, false);
    const http::Response r = http::get({url, token_});
    if (r.status != 200) throw_for(r, paths_, "search", "", "", token_.has_value());
    std::vector<HubSearchHit> hits;
    try {
        const nlohmann::json list = nlohmann::json::parse(r.body);
        if (!list.is_array()) throw std::runtime_error("not a list");
        for (const auto& m : list) {
            if (!m.is_object()) continue;
            HubSearchHit h;
            h.repo_id = text(m, "id").empty() ? text(m, "modelId") : text(m, "id");
            h.downloads = count(m, "downloads");
            h.likes = count(m, "likes");
            h.pipeline_tag = text(m, "pipeline_tag");
            h.gated = m.contains("gated") && !(m["gated"].is_boolean() && !m["gated"].get<bool>());
            if (m.contains("tags") && m["tags"].is_array())
                for (const auto& t : m["tags"])
                    if (t.is_string()) h.tags.push_back(t);
            if (!h.repo_id.empty()) hits.push_back(std::move(h));
        }
    } catch (const std::exception& e) {
        throw HubError(Kind::Other, "the hub's search answer is not what was expected: " + std::string(e.what()));
    }
    return hits;
}

HubModelInfo HubClient::model_info(const std::string& repo_id, const std::string& revision) const {
    if (!is_repo_id(repo_id)) throw HubError(Kind::NotFound, repo_id + ": not a model name (ORG/NAME)");
    const http::Response r =
        http::get({paths_.endpoint + "/api/models/" + repo_id + "/revision/" + encode(revision, false) + "?blobs=true", token_});
    if (r.status != 200) throw_for(r, paths_, repo_id, revision, "", token_.has_value());
    HubModelInfo info;
    info.repo_id = repo_id;
    try {
        const nlohmann::json j = nlohmann::json::parse(r.body);
        info.commit = j.at("sha").get<std::string>();
        info.gated = j.contains("gated") && !(j["gated"].is_boolean() && !j["gated"].get<bool>());
        info.is_private = j.contains("private") && j["private"].is_boolean() && j["private"].get<bool>();
        if (j.contains("config") && j["config"].is_object()) {
            info.model_type = text(j["config"], "model_type");
            if (j["config"].contains("architectures") && j["config"]["architectures"].is_array())
                for (const auto& a : j["config"]["architectures"])
                    if (a.is_string()) info.architectures.push_back(a);
        }
        if (j.contains("tags") && j["tags"].is_array())
            for (const auto& t : j["tags"])
                if (t.is_string()) info.tags.push_back(t);
        if (j.contains("safetensors") && j["safetensors"].is_object()) {
            const auto& st = j["safetensors"];
            info.parameters = count(st, "total");
            std::int64_t most = 0;
            if (st.contains("parameters") && st["parameters"].is_object())
                for (const auto& [dtype, n] : st["parameters"].items())
                    if (n.is_number_integer() && n.get<std::int64_t>() > most) {
                        most = n.get<std::int64_t>();
                        info.weight_dtype = dtype;
                    }
        }
        for (const auto& s : j.at("siblings")) {
            HubFile f;
            f.path = s.at("rfilename").get<std::string>();
            f.size = static_cast<std::uint64_t>(std::max<std::int64_t>(0, count(s, "size")));
            f.blob_id = text(s, "blobId");
            if (s.contains("lfs") && s["lfs"].is_object()) {
                f.sha256 = text(s["lfs"], "sha256");
                if (count(s["lfs"], "size") > 0) f.size = static_cast<std::uint64_t>(count(s["lfs"], "size"));
            }
            info.files.push_back(std::move(f));
        }
    } catch (const std::exception& e) {
        throw HubError(Kind::Other, repo_id + ": the hub's answer is not what was expected: " + e.what());
    }
    const bool hex40 = info.commit.size() == 40 && info.commit.find_first_not_of("0123456789abcdef") == std::string::npos;
    if (!hex40) throw HubError(Kind::Other, repo_id + ": the hub named no commit for " + revision);
    return info;
}

std::vector<HubFile> HubClient::selected_files(const HubModelInfo& info, const std::vector<std::string>& include) {
    std::vector<HubFile> out;
    for (const HubFile& f : info.files) {
        bool take = include.empty() && default_file(f.path);
        for (const std::string& g : include) take = take || ::fnmatch(g.c_str(), f.path.c_str(), 0) == 0;
        // Only names that stay inside the snapshot, and hashes that name a blob and nothing else.
        if (take && safe_repo_path(f.path) && is_hex_hash(f.etag(), f.lfs() ? 64 : 40)) out.push_back(f);
    }
    return out;
}

PullResult HubClient::pull(const std::string& repo_id, const PullOptions& o) const {
    const HubModelInfo info = model_info(repo_id, o.revision);
    const std::vector<HubFile> files = selected_files(info, o.include);
    if (files.empty())
        throw HubError(Kind::NotFound, repo_id + ": no file matches " + (o.include.empty() ? "a model's files" : "--include"));
    if (o.include.empty()) {
        bool weights = false;
        for (const HubFile& f : files) weights = weights || f.path.find(".safetensors") != std::string::npos;
        if (!weights)
            throw HubError(Kind::NotFound, repo_id + " has no .safetensors weights at " + o.revision +
                                               " (Windowpane reads safetensors; pytorch .bin files are not downloaded)");
    }
    const fs::path repo = paths_.cache / repo_folder_name(repo_id);
    const fs::path blobs = repo / "blobs", locks = paths_.cache / ".locks" / repo_folder_name(repo_id);
    std::error_code ec;
    fs::create_directories(blobs, ec);
    if (ec) throw HubError(Kind::Other, blobs.string() + ": cannot create: " + ec.message());

    PullProgress p;
    struct Todo {
        const HubFile* file;
        std::uint64_t had;  // bytes already in its .incomplete when the pull began
    };
    std::vector<Todo> todo;
    for (const HubFile& f : files)
        if (!fs::exists(blobs / f.etag(), ec)) {
            const std::uint64_t had = std::min(size_or_zero(blobs / (f.etag() + ".incomplete")), f.size);
            todo.push_back({&f, had});
            p.total += f.size - had;
        }
    p.files_total = static_cast<int>(todo.size());
    const fs::space_info space = fs::space(blobs, ec);
    const std::uint64_t margin = std::uint64_t{64} << 20;
    if (!ec && p.total > 0 && space.available < p.total + margin)
        throw HubError(Kind::DiskFull, repo_id + " needs " + human(p.total) + " more, and " + blobs.string() + " has " +
                                           human(space.available) + " free: make room, or set HF_HUB_CACHE to a larger disk");

    PullResult result;
    const auto start = std::chrono::steady_clock::now();
    std::uint64_t finished = 0;  // p.total's share of the files done
    auto report = [&] {
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        p.bytes_per_second = s > 0 ? result.bytes_downloaded / s : 0;
        if (o.progress) o.progress(p);
    };
    if (!todo.empty()) {  // the first file from the start: the report before any byte is not the end
        p.file = todo.front().file->path;
        p.file_total = todo.front().file->size;
    }
    report();
    for (const Todo& t : todo) {
        const HubFile* f = t.file;
        const fs::path blob = blobs / f->etag(), part = blobs / (f->etag() + ".incomplete");
        FileLock lock(locks / (f->etag() + ".lock"), o.cancel);
        if (!fs::exists(blob, ec)) {  // else another process finished it meanwhile
            p.file = f->path;
            p.file_total = f->size;
            const std::string url = paths_.endpoint + "/" + repo_id + "/resolve/" + info.commit + "/" + encode(f->path, true);
            int hash_failures = 0, cuts = 0;
            for (;;) {
                if (size_or_zero(part) > f->size) fs::remove(part, ec);  // not this file: start over
                std::uint64_t have = size_or_zero(part);
                // A complete partial file (the last pull stopped while checking it) needs no request.
                if (have < f->size) {
                    std::unique_ptr<std::FILE, int (*)(std::FILE*)> out(std::fopen(part.c_str(), have > 0 ? "r+b" : "wb"),
                                                                       &std::fclose);
                    if (!out || std::fseek(out.get(), static_cast<long>(have), SEEK_SET) != 0)
                        throw HubError(Kind::Other, part.string() + ": cannot write");
                    std::uint64_t last = have;
                    auto on_bytes = [&](std::uint64_t written) {
                        if (written > last) result.bytes_downloaded += written - last;
                        last = written;
                        p.file_done = written;
                        p.done = finished + std::min(f->size - t.had, written > t.had ? written - t.had : 0);
                        report();
                    };
                    p.file_done = have;
                    const http::Download d = http::download({url, token_}, out.get(), have, on_bytes, o.cancel);
                    if (std::fflush(out.get()) != 0) throw HubError(Kind::DiskFull, part.string() + ": cannot write (disk full?)");
                    out.reset();
                    if (d.end == http::DownloadEnd::Cancelled)
                        throw HubError(Kind::Cancelled, repo_id + ": cancelled; pull again to resume from " +
                                                            human(size_or_zero(part)) + " of " + f->path);
                    const long status = d.response.status;
                    // Worth another try: a busy or failing server, a range it could not serve.
                    const bool transient = status == 416 || status == 429 || status >= 500;
                    if (status >= 400 && !transient) {
                        if (size_or_zero(part) == 0) fs::remove(part, ec);  // refused before any byte: leave nothing
                        throw_for(d.response, paths_, repo_id, o.revision, f->path, token_.has_value());
                    }
                    if (status == 416) fs::remove(part, ec);
                    have = size_or_zero(part);
                    if (transient || d.end == http::DownloadEnd::Cut || have < f->size) {
                        if (++cuts >= o.attempts)
                            throw HubError(Kind::Network, repo_id + ": " +
                                                              (status >= 400 ? "the hub kept answering " + std::to_string(status)
                                                                             : std::string("the connection kept dropping")) +
                                                              " during " + f->path + (d.why.empty() ? "" : " (" + d.why + ")") +
                                                              "; pull again to resume from " + human(have));
                        if (transient) std::this_thread::sleep_for(std::chrono::milliseconds(500 * cuts));
                        continue;
                    }
                }
                const std::string got = f->lfs() ? sha256_file(part) : git_blob_sha1_file(part);
                if (got == f->etag()) break;
                fs::remove(part, ec);
                if (++hash_failures >= 2)
                    throw HubError(Kind::Hash, repo_id + ": " + f->path + " did not match the hub's " +
                                                   (f->lfs() ? "SHA-256 " : "git hash ") + f->etag() + " (got " + got +
                                                   ") twice; nothing of it was kept");
            }
            fs::rename(part, blob, ec);
            if (ec) throw HubError(Kind::Other, blob.string() + ": cannot write: " + ec.message());
            ++result.downloaded;
        }
        ++p.files_done;
        finished += f->size - t.had;
        p.done = finished;
        report();
    }
    const fs::path snapshot = repo / "snapshots" / info.commit;
    for (const HubFile& f : files) link_file(snapshot, f);
    if (o.revision != info.commit) write_ref(repo / "refs" / o.revision, info.commit);
    p.file.clear();
    report();
    result.snapshot = snapshot;
    result.commit = info.commit;
    result.files = static_cast<int>(files.size());
    return result;
}

}  // namespace wp
