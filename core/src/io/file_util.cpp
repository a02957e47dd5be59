#include "wp/io/file_util.h"

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <functional>
#include <system_error>
#include <thread>
#include <sys/stat.h>
#include <unistd.h>

#include "wp/error.h"

namespace wp {

namespace {

std::string limit_text(std::size_t bytes) {
    return bytes % (std::size_t{1} << 20) == 0 ? std::to_string(bytes >> 20) + " MB"
                                                : std::to_string(bytes) + " bytes";
}

struct FdCloser {
    int fd;
    ~FdCloser() { ::close(fd); }
};

}  // namespace

std::string read_text_file(const std::filesystem::path& path, std::size_t max_bytes) {
    const std::string name = path.string();
    // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer forever.
    const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) throw Error(name + ": cannot read: " + std::strerror(errno));
    const FdCloser closer{fd};
    struct stat st {};
    if (::fstat(fd, &st) != 0) throw Error(name + ": cannot read: " + std::strerror(errno));
    if (S_ISDIR(st.st_mode)) throw Error(name + ": a folder, not a file");
    if (!S_ISREG(st.st_mode)) throw Error(name + ": not a regular file");
    const std::string too_large = name + ": larger than the limit of " + limit_text(max_bytes);
    if (static_cast<std::uint64_t>(st.st_size) > max_bytes) throw Error(too_large);

    // The size may change while reading: read to the end, but never past the limit.
    std::string out(static_cast<std::size_t>(st.st_size), '\0');
    std::size_t got = 0;
    for (;;) {
        if (got == out.size()) {
            if (out.size() > max_bytes) throw Error(too_large);
            out.resize(std::min(max_bytes + 1, std::max<std::size_t>(out.size() * 2, 4096)));
        }
        const ssize_t n = ::read(fd, out.data() + got, out.size() - got);
        if (n < 0) {
            if (errno == EINTR) continue;
            throw Error(name + ": read failed: " + std::strerror(errno));
        }
        if (n == 0) break;
        got += static_cast<std::size_t>(n);
    }
    if (got > max_bytes) throw Error(too_large);
    out.resize(got);
    return out;
}

void write_file_atomically(const std::filesystem::path& path, std::string_view bytes,
                           std::optional<std::filesystem::perms> perms) {
    std::error_code ec;
    if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path(), ec);
    // One name per process and thread: two writers never share a temporary file.
    const std::filesystem::path tmp = path.string() + ".tmp-" + std::to_string(::getpid()) + "-" +
                                      std::to_string(std::hash<std::thread::id>{}(std::this_thread::get_id()));
    auto fail = [&](const std::string& why) {
        std::filesystem::remove(tmp, ec);
        throw Error(path.string() + ": cannot write: " + why);
    };
    {
        std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
        if (!out) fail(std::strerror(errno));
        if (perms) std::filesystem::permissions(tmp, *perms, std::filesystem::perm_options::replace, ec);
        if (ec) fail(ec.message());
        out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
        if (!out.flush()) fail("disk full?");
    }
    std::filesystem::rename(tmp, path, ec);
    if (ec) fail(ec.message());
}

}  // namespace wp
