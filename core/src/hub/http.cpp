#include "hub/http.h"

#include <algorithm>
#include <cctype>
#include <curl/curl.h>
#include <memory>
#include <mutex>
#include <unistd.h>

#include "wp/error.h"
#include "wp/version.h"

namespace wp::http {

namespace {

void global_init() {
    static std::once_flag once;
    std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct Easy {
    CURL* h = nullptr;
    curl_slist* headers = nullptr;
    char error[CURL_ERROR_SIZE] = {};
    Easy() {
        global_init();
        h = curl_easy_init();
        if (h == nullptr) throw Error("cannot start an HTTP transfer (libcurl)");
    }
    ~Easy() {
        curl_slist_free_all(headers);
        curl_easy_cleanup(h);
    }
    Easy(const Easy&) = delete;
    Easy& operator=(const Easy&) = delete;
};

std::string host_of(const std::string& url) {
    const auto start = url.find("://");
    const auto from = start == std::string::npos ? 0 : start + 3;
    return url.substr(from, url.find('/', from) - from);
}

size_t on_header(char* data, size_t size, size_t n, void* user) {
    auto* r = static_cast<Response*>(user);
    std::string line(data, size * n);
    if (line.rfind("HTTP/", 0) == 0) {
        r->headers.clear();  // a new response (after a redirect): keep only the last one's
        return size * n;
    }
    const auto colon = line.find(':');
    if (colon != std::string::npos) {
        std::string name = line.substr(0, colon), value = line.substr(colon + 1);
        std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
        value.erase(0, value.find_first_not_of(" \t"));
        while (!value.empty() && (value.back() == '\r' || value.back() == '\n' || value.back() == ' ')) value.pop_back();
        r->headers[name] = value;
    }
    return size * n;
}

void setup(Easy& e, const Request& request, Response& response) {
    curl_easy_setopt(e.h, CURLOPT_URL, request.url.c_str());
    curl_easy_setopt(e.h, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(e.h, CURLOPT_MAXREDIRS, 10L);
    curl_easy_setopt(e.h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e.h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e.h, CURLOPT_CONNECTTIMEOUT, 30L);
    // A stalled transfer (under 1 byte/s for a minute) ends; a download resumes from there.
    curl_easy_setopt(e.h, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(e.h, CURLOPT_LOW_SPEED_TIME, 60L);
    curl_easy_setopt(e.h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e.h, CURLOPT_USERAGENT, "windowpane/" WP_VERSION);
    curl_easy_setopt(e.h, CURLOPT_ERRORBUFFER, e.error);
    curl_easy_setopt(e.h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e.h, CURLOPT_HEADERDATA, &response);
    if (request.head) curl_easy_setopt(e.h, CURLOPT_NOBODY, 1L);
    if (request.bearer) e.headers = curl_slist_append(e.headers, ("Authorization: Bearer " + *request.bearer).c_str());
    if (e.headers != nullptr) curl_easy_setopt(e.h, CURLOPT_HTTPHEADER, e.headers);
}

std::string failure(const Easy& e, CURLcode rc, const std::string& url) {
    return "cannot reach " + host_of(url) + ": " + (e.error[0] != '\0' ? std::string(e.error) : curl_easy_strerror(rc));
}

struct BodySink {
    std::string* body;
    std::size_t max;
};

size_t on_body(char* data, size_t size, size_t n, void* user) {
    auto* s = static_cast<BodySink*>(user);
    if (s->body->size() + size * n > s->max) return 0;  // ends the transfer: CURLE_WRITE_ERROR
    s->body->append(data, size * n);
    return size * n;
}

struct FileSink {
    Easy* easy;
    std::FILE* out;
    std::uint64_t offset;
    std::uint64_t written = 0;  // the file's bytes: offset + this transfer's
    bool decided = false;       // the response's status looked at
    bool error = false;         // an error status: its body goes to `body`
    std::string* body;
    const std::function<void(std::uint64_t)>* progress;
    const std::atomic<bool>* cancel;
};

size_t on_file(char* data, size_t size, size_t n, void* user) {
    auto* s = static_cast<FileSink*>(user);
    const size_t bytes = size * n;
    if (!s->decided) {
        long status = 0;
        curl_easy_getinfo(s->easy->h, CURLINFO_RESPONSE_CODE, &status);
        s->decided = true;
        s->error = status >= 400;
        if (!s->error && status != 206 && s->offset > 0) {
            // The whole file, not the range asked for: start it over.
            if (std::fflush(s->out) != 0 || ::ftruncate(fileno(s->out), 0) != 0 || std::fseek(s->out, 0, SEEK_SET) != 0) return 0;
            s->offset = 0;
        }
        s->written = s->offset;
    }
    if (s->error) {
        if (s->body->size() < 65536) s->body->append(data, std::min<size_t>(bytes, 65536 - s->body->size()));
        return bytes;
    }
    if (std::fwrite(data, 1, bytes, s->out) != bytes) return 0;
    s->written += bytes;
    if (*s->progress) (*s->progress)(s->written);
    return bytes;
}

int on_xfer(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
    auto* s = static_cast<FileSink*>(user);
    return s->cancel != nullptr && s->cancel->load() ? 1 : 0;
}

}  // namespace

std::string Response::header(const std::string& lower_name) const {
    const auto it = headers.find(lower_name);
    return it == headers.end() ? std::string() : it->second;
}

Response get(const Request& request, std::size_t max_body) {
    Easy e;
    Response r;
    setup(e, request, r);
    BodySink sink{&r.body, max_body};
    curl_easy_setopt(e.h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e.h, CURLOPT_WRITEDATA, &sink);
    const CURLcode rc = curl_easy_perform(e.h);
    if (rc == CURLE_WRITE_ERROR) throw Error(request.url + ": the answer is larger than " + std::to_string(max_body >> 20) + " MB");
    if (rc != CURLE_OK) throw Error(failure(e, rc, request.url));
    curl_easy_getinfo(e.h, CURLINFO_RESPONSE_CODE, &r.status);
    return r;
}

Download download(const Request& request, std::FILE* out, std::uint64_t offset,
                  const std::function<void(std::uint64_t)>& progress, const std::atomic<bool>* cancel) {
    Easy e;
    Download d;
    setup(e, request, d.response);
    FileSink sink{&e, out, offset, offset, false, false, &d.response.body, &progress, cancel};
    curl_easy_setopt(e.h, CURLOPT_WRITEFUNCTION, on_file);
    curl_easy_setopt(e.h, CURLOPT_WRITEDATA, &sink);
    curl_easy_setopt(e.h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(e.h, CURLOPT_XFERINFOFUNCTION, on_xfer);
    curl_easy_setopt(e.h, CURLOPT_XFERINFODATA, &sink);
    // CURLOPT_RANGE rather than RESUME_FROM: a server answering 200 is then taken (on_file starts over).
    const std::string range = std::to_string(offset) + "-";
    if (offset > 0) curl_easy_setopt(e.h, CURLOPT_RANGE, range.c_str());
    const CURLcode rc = curl_easy_perform(e.h);
    curl_easy_getinfo(e.h, CURLINFO_RESPONSE_CODE, &d.response.status);
    if (rc == CURLE_ABORTED_BY_CALLBACK) {
        d.end = DownloadEnd::Cancelled;
    } else if (rc == CURLE_WRITE_ERROR) {
        throw Error("cannot write the download: " + std::string(e.error[0] ? e.error : "disk full?"));
    } else if (rc != CURLE_OK) {
        const bool connect = rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST ||
                             rc == CURLE_COULDNT_RESOLVE_PROXY || rc == CURLE_SSL_CONNECT_ERROR;
        if (connect && sink.written == offset) throw Error(failure(e, rc, request.url));
        d.end = DownloadEnd::Cut;
        d.why = failure(e, rc, request.url);
    }
    return d;
}

}  // namespace wp::http
