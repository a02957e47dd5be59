#include "standard_input.h"

#include <iostream>

#include "wp/error.h"
#include "wp/io/file_util.h"

namespace wp::cli {

std::string read_standard_input() {
    // Bounded like a file: an endless producer is refused rather than read until memory runs out.
    std::string out;
    char buf[1 << 16];
    while (std::cin.read(buf, sizeof buf) || std::cin.gcount() > 0) {
        out.append(buf, static_cast<std::size_t>(std::cin.gcount()));
        if (out.size() > kMaxTextFileBytes)
            throw Error("standard input: larger than the limit of " + std::to_string(kMaxTextFileBytes >> 20) + " MB");
    }
    return out;
}

}  // namespace wp::cli
