#pragma once

#include <string>

namespace wp::cli {

// All of standard input, byte for byte; wp::Error past kMaxTextFileBytes (64 MB).
std::string read_standard_input();

}  // namespace wp::cli
