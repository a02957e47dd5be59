// Python's str semantics on UTF-8 text, as chat templates see them: whitespace and case per code
// point (through utf8proc), code point counts and offsets, and the str algorithms that both methods
// and filters use (strip, splitlines, replace, title, capitalize).
#include "chat/jinja_strings.h"

#include <utf8proc.h>

#include <algorithm>
#include <cstdio>

#include "chat/jinja_args.h"
#include "tokenizer/text_util.h"

namespace wp::jinja {

namespace {

const utf8proc_property_t* property(char32_t cp) { return utf8proc_get_property(static_cast<utf8proc_int32_t>(cp)); }

// Python's line boundaries: \n, \r, \r\n, \v, \f, \x1c-\x1e, \x85, U+2028, U+2029.
bool is_line_break(char32_t cp) {
    return cp == '\n' || cp == '\r' || cp == 0x0b || cp == 0x0c || (cp >= 0x1c && cp <= 0x1e) || cp == 0x85 ||
           cp == 0x2028 || cp == 0x2029;
}

std::string cp_string(char32_t cp) {
    std::string s;
    text::append_utf8(s, cp);
    return s;
}

char32_t title_cp(char32_t cp) { return static_cast<char32_t>(utf8proc_totitle(static_cast<utf8proc_int32_t>(cp))); }

}  // namespace

// ---- Code points ----

bool is_py_space(char32_t cp) {
    if (cp < 0x80) return cp == ' ' || (cp >= 0x09 && cp <= 0x0d) || (cp >= 0x1c && cp <= 0x1f);
    const utf8proc_property_t* p = property(cp);
    return p->category == UTF8PROC_CATEGORY_ZS || p->bidi_class == UTF8PROC_BIDI_CLASS_WS ||
           p->bidi_class == UTF8PROC_BIDI_CLASS_B || p->bidi_class == UTF8PROC_BIDI_CLASS_S;
}

bool is_cased(char32_t cp) {
    const auto c = property(cp)->category;
    return c == UTF8PROC_CATEGORY_LU || c == UTF8PROC_CATEGORY_LL || c == UTF8PROC_CATEGORY_LT;
}

std::size_t rstrip_py_space(std::string_view s) {
    std::size_t end = 0;
    for (std::size_t i = 0; i < s.size();)
        if (!is_py_space(text::next_cp(s, i))) end = i;
    return end;
}

std::size_t skip_py_space(std::string_view s, std::size_t pos) {
    while (pos < s.size()) {
        std::size_t next = pos;
        if (!is_py_space(text::next_cp(s, next))) break;
        pos = next;
    }
    return pos;
}

std::vector<std::size_t> code_point_starts(std::string_view s) {
    std::vector<std::size_t> out;
    out.reserve(s.size() + 1);
    for (std::size_t i = 0; i < s.size();) {
        out.push_back(i);
        text::next_cp(s, i);
    }
    out.push_back(s.size());
    return out;
}

std::size_t code_point_count(std::string_view s) {
    std::size_t n = 0;
    for (std::size_t i = 0; i < s.size(); ++n) text::next_cp(s, i);
    return n;
}

namespace {
template <typename Map1>
std::string map_case(std::string_view s, Map1 map_cp, char (*map_ascii)(char)) {
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size();) {
        if (static_cast<unsigned char>(s[i]) < 0x80) {
            out += map_ascii(s[i++]);
            continue;
        }
        const std::size_t start = i;
        const char32_t cp = text::next_cp(s, i);
        const char32_t mapped = static_cast<char32_t>(map_cp(static_cast<utf8proc_int32_t>(cp)));
        if (mapped == cp)
            out.append(s, start, i - start);  // keeps invalid bytes as they were
        else
            text::append_utf8(out, mapped);
    }
    return out;
}
char ascii_lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; }
char ascii_upper(char c) { return c >= 'a' && c <= 'z' ? static_cast<char>(c - 32) : c; }
}  // namespace

// Simple (one-to-one) case mappings: Python's full mappings differ only for a few characters
// such as 'ß'.upper() == 'SS'.
std::string py_lower(std::string_view s) { return map_case(s, utf8proc_tolower, ascii_lower); }
std::string py_upper(std::string_view s) { return map_case(s, utf8proc_toupper, ascii_upper); }

namespace {
// Cased characters, all of one case: str.isupper() (`upper`) or str.islower().
bool all_cased_as(std::string_view s, bool upper) {
    bool any = false;
    for (std::size_t i = 0; i < s.size();) {
        const char32_t cp = text::next_cp(s, i);
        if (!is_cased(cp)) continue;
        const auto c = property(cp)->category;
        if ((upper && c == UTF8PROC_CATEGORY_LL) ||
            (!upper && (c == UTF8PROC_CATEGORY_LU || c == UTF8PROC_CATEGORY_LT)))
            return false;
        any = true;
    }
    return any;
}
}  // namespace

bool py_islower(std::string_view s) { return all_cased_as(s, false); }
bool py_isupper(std::string_view s) { return all_cased_as(s, true); }

void append_hex(std::string& out, const char* prefix, unsigned value, int digits) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "%s%0*x", prefix, digits, value);
    out += buf;
}

// ---- str algorithms ----

// str.strip / lstrip / rstrip: `chars` (when given) lists the code points to remove, else whitespace.
std::string strip(Runtime& rt, const std::string& s, const Value* chars, bool left, bool right) {
    const bool custom = present(chars) && !chars->is_none();
    std::vector<char32_t> set;  // sorted, for a lookup in log time however long `chars` is
    if (custom) {
        const std::string& c = string_arg(chars, "strip");
        rt.chars(c.size());
        for (std::size_t i = 0; i < c.size();) set.push_back(text::next_cp(c, i));
        std::sort(set.begin(), set.end());
    }
    auto removable = [&](char32_t cp) {
        return custom ? std::binary_search(set.begin(), set.end(), cp) : is_py_space(cp);
    };
    rt.chars(s.size());
    std::size_t begin = 0, end = s.size();
    if (left)
        while (begin < end) {
            std::size_t next = begin;
            if (!removable(text::next_cp(s, next))) break;
            begin = next;
        }
    if (right) {
        std::size_t kept_end = begin;
        for (std::size_t i = begin; i < end;)
            if (!removable(text::next_cp(s, i))) kept_end = i;
        end = kept_end;
    }
    return s.substr(begin, end - begin);
}

std::vector<std::string> splitlines(const std::string& s, bool keepends) {
    std::vector<std::string> lines;
    std::size_t start = 0;
    for (std::size_t i = 0; i < s.size();) {
        const std::size_t at = i;
        const char32_t cp = text::next_cp(s, i);
        if (!is_line_break(cp)) continue;
        if (cp == '\r' && i < s.size() && s[i] == '\n') ++i;
        lines.push_back(s.substr(start, (keepends ? i : at) - start));
        start = i;
    }
    if (start < s.size()) lines.push_back(s.substr(start));
    return lines;
}

std::string replace(Runtime& rt, const std::string& s, const std::string& old, const std::string& repl,
                    std::int64_t count) {
    rt.chars(s.size());
    std::string out;
    if (old.empty()) {  // Python inserts `repl` before every character and at the end
        const auto starts = code_point_starts(s);
        for (std::size_t i = 0; i < starts.size(); ++i) {
            const std::size_t before = out.size();
            if (count < 0 || static_cast<std::int64_t>(i) < count) out += repl;
            if (i + 1 < starts.size()) out.append(s, starts[i], starts[i + 1] - starts[i]);
            rt.grew(out, out.size() - before);
        }
        return out;
    }
    rt.search(s.size(), old.size());
    std::size_t start = 0;
    for (std::int64_t n = 0; count < 0 || n < count; ++n) {
        const std::size_t at = s.find(old, start);
        if (at == std::string::npos) break;
        const std::size_t before = out.size();
        out.append(s, start, at - start);
        out += repl;
        start = at + old.size();
        rt.grew(out, out.size() - before);
    }
    out.append(s, start);
    rt.check_string(out.size());
    return out;
}

// str.title(): a cased character after an uncased one starts a word.
std::string py_title(const std::string& s) {
    std::string out;
    bool prev_cased = false;
    for (std::size_t i = 0; i < s.size();) {
        const std::size_t start = i;
        const char32_t cp = text::next_cp(s, i);
        const std::string ch = s.substr(start, i - start);
        if (is_cased(cp)) {
            out += prev_cased ? py_lower(ch) : cp_string(title_cp(cp));
            prev_cased = true;
        } else {
            out += ch;
            prev_cased = false;
        }
    }
    return out;
}

// str.capitalize(): the first character in title case, the rest lowercase.
std::string py_capitalize(const std::string& s) {
    if (s.empty()) return s;
    std::size_t i = 0;
    const char32_t cp = text::next_cp(s, i);
    return cp_string(title_cp(cp)) + py_lower(std::string_view(s).substr(i));
}

// jinja2's title filter (not str.title): uppercase after '-', whitespace or one of "({[<".
std::string jinja_title(const std::string& s) {
    std::string out;
    bool word_start = true;
    for (std::size_t i = 0; i < s.size();) {
        const std::size_t start = i;
        const char32_t cp = text::next_cp(s, i);
        const std::string_view ch(s.data() + start, i - start);
        if (cp == '-' || cp == '(' || cp == '{' || cp == '[' || cp == '<' || is_py_space(cp)) {
            out += ch;
            word_start = true;
        } else {
            out += word_start ? py_upper(ch) : py_lower(ch);
            word_start = false;
        }
    }
    return out;
}

}  // namespace wp::jinja
