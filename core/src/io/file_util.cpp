#include "wp/io/file_util.h"

#include <fstream>
#include <sstream>

#include "wp/error.h"

namespace wp {

std::string read_text_file(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw Error(path.string() + ": cannot read");
    std::ostringstream ss;
    ss << in.rdbuf();
    if (in.bad()) throw Error(path.string() + ": read failed");
    return ss.str();
}

}  // namespace wp
