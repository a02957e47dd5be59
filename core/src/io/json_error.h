// nlohmann's exception text without its "[json.exception.parse_error.101] " prefix, for messages
// in the project's own words ("config.json: not valid JSON: parse error at line 1, column 2: ...").
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace wp {

inline std::string json_error_text(const nlohmann::json::exception& e) {
    const std::string what = e.what();
    const std::size_t end = what.find("] ");
    return what.rfind("[json.exception.", 0) == 0 && end != std::string::npos ? what.substr(end + 2) : what;
}

}  // namespace wp
