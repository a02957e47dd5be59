// Small file helpers.
#pragma once

#include <filesystem>
#include <string>

namespace wp {

// The whole file as bytes; throws wp::Error naming the file when it cannot be read.
std::string read_text_file(const std::filesystem::path& path);

}  // namespace wp
