#include "wp/io/json_file.h"

#include <algorithm>
#include <type_traits>

#include "io/json_sax.h"
#include "wp/error.h"

namespace wp {

namespace {

std::string position_of(std::string_view text, std::size_t byte) {
    // nlohmann reports the byte after the one it stopped on (1-based); lines and columns from it.
    const std::size_t end = std::min(byte > 0 ? byte - 1 : 0, text.size());
    std::size_t line = 1, column = 1;
    for (std::size_t i = 0; i < end; ++i) {
        if (text[i] == '\n') {
            ++line;
            column = 1;
        } else {
            ++column;
        }
    }
    return "line " + std::to_string(line) + ", column " + std::to_string(column);
}

}  // namespace

template <class Json>
Json parse_json(std::string_view text, const std::string& name, const JsonLimits& limits) {
    using json = Json;
    if (text.size() > limits.max_bytes)
        throw Error(name + ": larger than the limit of " + std::to_string(limits.max_bytes) + " bytes");
    try {
        // The depth of every container is checked as it opens, before its contents are parsed.
        json_sax::Limits sax{.max_depth = limits.max_depth};
        if constexpr (std::is_same_v<Json, nlohmann::ordered_json>) sax.max_keys = limits.max_ordered_keys;
        return json_sax::parse<json>(text.begin(), text.end(), sax);
    } catch (const json_sax::TooDeep&) {
        throw Error(name + ": nested more than " + std::to_string(limits.max_depth) + " levels deep");
    } catch (const json_sax::TooManyKeys&) {
        throw Error(name + ": an object with more than " + std::to_string(limits.max_ordered_keys) + " keys");
    } catch (const nlohmann::json::parse_error& e) {
        throw Error(name + ": not valid JSON at " + position_of(text, e.byte));
    } catch (const nlohmann::json::out_of_range&) {
        throw Error(name + ": not valid JSON (a number out of range)");
    } catch (const nlohmann::json::exception&) {
        throw Error(name + ": not valid JSON");
    }
}

template <class Json>
Json parse_json_file(const std::filesystem::path& path, const JsonLimits& limits) {
    return parse_json<Json>(read_text_file(path, limits.max_bytes), path.string(), limits);
}

template nlohmann::json parse_json<nlohmann::json>(std::string_view, const std::string&, const JsonLimits&);
template nlohmann::ordered_json parse_json<nlohmann::ordered_json>(std::string_view, const std::string&,
                                                                   const JsonLimits&);
template nlohmann::json parse_json_file<nlohmann::json>(const std::filesystem::path&, const JsonLimits&);
template nlohmann::ordered_json parse_json_file<nlohmann::ordered_json>(const std::filesystem::path&,
                                                                        const JsonLimits&);

}  // namespace wp
