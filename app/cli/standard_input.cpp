#include "standard_input.h"

#include <iostream>
#include <sstream>

namespace wp::cli {

std::string read_standard_input() {
    std::ostringstream ss;
    ss << std::cin.rdbuf();
    return ss.str();
}

}  // namespace wp::cli
