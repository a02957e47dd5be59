// JSON from files the user or a downloaded model folder supplies, parsed within limits: nesting is
// checked while parsing, so a hostile depth is refused before any tree is built or copied (copies
// and conversions recurse), and errors are one line in the project's words, never the parser's.
#pragma once

#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "wp/io/file_util.h"

namespace wp {

struct JsonLimits {
    std::size_t max_bytes = kMaxTextFileBytes;
    int max_depth = 200;  // nested arrays and objects; the template sandbox takes no deeper context
};

// `text` as JSON, named `name` in errors: wp::Error "<name>: not valid JSON at line L, column C",
// "<name>: nested more than N levels deep" or "<name>: larger than the limit of ...".
nlohmann::ordered_json parse_json(std::string_view text, const std::string& name, const JsonLimits& limits = {});

// The file read with read_text_file (a regular file within max_bytes), then parse_json.
nlohmann::ordered_json parse_json_file(const std::filesystem::path& path, const JsonLimits& limits = {});

}  // namespace wp
