// HTTP for the hub client, on libcurl: small JSON requests read whole, and downloads written to a
// file from an offset (HTTP Range), redirects followed. A token set as a bearer header is not sent
// on to another host after a redirect (libcurl drops custom authorization headers there), so the
// hub's token never reaches its CDN.
#pragma once

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <map>
#include <optional>
#include <string>

namespace wp::http {

struct Response {
    long status = 0;
    std::map<std::string, std::string> headers;  // of the last response, names lower-case
    std::string body;                            // whole for get(); the error text for download()
    std::string header(const std::string& lower_name) const;
};

struct Request {
    std::string url;
    std::optional<std::string> bearer;  // Authorization: Bearer ...
    bool head = false;
};

// Throws wp::Error for a transfer that fails (no connection, a dropped one, a timeout): "cannot
// reach <host>: <what libcurl says>". Any HTTP status is returned, not thrown. Bodies over
// max_body bytes are refused.
Response get(const Request& request, std::size_t max_body = std::size_t{16} << 20);

enum class DownloadEnd { Complete, Cut, Cancelled };

struct Download {
    Response response;   // an error status (>= 400) carries its body here, and nothing is written
    DownloadEnd end = DownloadEnd::Complete;
    std::string why;     // for Cut: libcurl's message
};

// Appends the body of `request` to `out`, asking for the bytes from `offset` on (a server that
// ignores the Range starts the file over: out is truncated first). progress(bytes of the file
// written so far) is called as data arrives; `cancel` set ends the transfer (Cancelled). A
// connection that drops or stalls for a minute ends it as Cut (resume from where it stopped).
Download download(const Request& request, std::FILE* out, std::uint64_t offset,
                  const std::function<void(std::uint64_t)>& progress, const std::atomic<bool>* cancel);

}  // namespace wp::http
