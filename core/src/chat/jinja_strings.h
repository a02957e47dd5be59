// Python's str semantics on UTF-8 text, for the chat-template interpreter: strings are UTF-8 bytes,
// and Python counts, indexes, classifies and case-maps code points.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "chat/jinja_value.h"

namespace wp::jinja {

// ---- Code points ----

bool is_py_space(char32_t cp);                    // str.isspace()
bool is_cased(char32_t cp);                       // upper, lower or title case letter
std::size_t rstrip_py_space(std::string_view s);  // length of s without trailing whitespace
std::size_t skip_py_space(std::string_view s, std::size_t pos);
// Byte offset of every code point, plus s.size() at the end.
std::vector<std::size_t> code_point_starts(std::string_view s);
std::size_t code_point_count(std::string_view s);
std::string py_lower(std::string_view s);
std::string py_upper(std::string_view s);
bool py_islower(std::string_view s);  // str.islower(): has cased characters, none upper or title case
bool py_isupper(std::string_view s);  // str.isupper(): has cased characters, none lower case

// Appends `prefix`, then `value` in `digits` lowercase hex digits: the hex escapes of repr() and
// json.dumps.
void append_hex(std::string& out, const char* prefix, unsigned value, int digits);

// ---- str algorithms (methods and filters both use them) ----

// str.strip / lstrip / rstrip: `chars` (when given) lists the code points to remove, else whitespace.
std::string strip(Runtime& rt, const std::string& s, const Value* chars, bool left, bool right);
// str.splitlines(keepends), with Python's line boundaries.
std::vector<std::string> splitlines(const std::string& s, bool keepends);
// str.replace(old, new, count); a negative count replaces all.
std::string replace(Runtime& rt, const std::string& s, const std::string& old, const std::string& repl,
                    std::int64_t count);
std::string py_title(const std::string& s);       // str.title()
std::string py_capitalize(const std::string& s);  // str.capitalize()
std::string jinja_title(const std::string& s);    // jinja2's title filter, which differs from str.title()

}  // namespace wp::jinja
