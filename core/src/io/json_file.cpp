#include "wp/io/json_file.h"

#include <algorithm>

#include "wp/error.h"

namespace wp {

namespace {

// Thrown from the parser's callback to stop at the first level too deep.
struct TooDeep {};

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

nlohmann::ordered_json parse_json(std::string_view text, const std::string& name, const JsonLimits& limits) {
    using json = nlohmann::ordered_json;
    if (text.size() > limits.max_bytes)
        throw Error(name + ": larger than the limit of " + std::to_string(limits.max_bytes) + " bytes");
    // The callback sees the depth of every container as it opens, before its contents are parsed.
    const json::parser_callback_t check_depth = [&](int depth, json::parse_event_t event, json&) {
        if ((event == json::parse_event_t::array_start || event == json::parse_event_t::object_start) &&
            depth >= limits.max_depth)
            throw TooDeep{};
        return true;
    };
    try {
        return json::parse(text.begin(), text.end(), check_depth);
    } catch (const TooDeep&) {
        throw Error(name + ": nested more than " + std::to_string(limits.max_depth) + " levels deep");
    } catch (const json::parse_error& e) {
        throw Error(name + ": not valid JSON at " + position_of(text, e.byte));
    } catch (const json::out_of_range&) {
        throw Error(name + ": not valid JSON (a number out of range)");
    } catch (const json::exception&) {
        throw Error(name + ": not valid JSON");
    }
}

nlohmann::ordered_json parse_json_file(const std::filesystem::path& path, const JsonLimits& limits) {
    return parse_json(read_text_file(path, limits.max_bytes), path.string(), limits);
}

}  // namespace wp
