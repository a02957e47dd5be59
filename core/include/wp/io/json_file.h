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
    // Keys of one object when parsed as ordered_json, whose every insert scans the object.
    std::size_t max_ordered_keys = 20000;
};

// `text` as JSON, named `name` in errors: wp::Error "<name>: not valid JSON at line L, column C",
// "<name>: nested more than N levels deep" or "<name>: larger than the limit of ...".
// Json: nlohmann::ordered_json (keys in file order) or nlohmann::json.
template <class Json = nlohmann::ordered_json>
Json parse_json(std::string_view text, const std::string& name, const JsonLimits& limits = {});

// The file read with read_text_file (a regular file within max_bytes), then parse_json.
template <class Json = nlohmann::ordered_json>
Json parse_json_file(const std::filesystem::path& path, const JsonLimits& limits = {});

extern template nlohmann::json parse_json<nlohmann::json>(std::string_view, const std::string&, const JsonLimits&);
extern template nlohmann::ordered_json parse_json<nlohmann::ordered_json>(std::string_view, const std::string&,
                                                                          const JsonLimits&);
extern template nlohmann::json parse_json_file<nlohmann::json>(const std::filesystem::path&, const JsonLimits&);
extern template nlohmann::ordered_json parse_json_file<nlohmann::ordered_json>(const std::filesystem::path&,
                                                                               const JsonLimits&);

}  // namespace wp
