#pragma once

#include <string>

namespace wp::cli {

// All of standard input, byte for byte.
std::string read_standard_input();

}  // namespace wp::cli
