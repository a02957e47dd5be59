#include "wp/io/file_util.h"

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <fcntl.h>
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

}  // namespace wp
