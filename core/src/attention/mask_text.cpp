// Text rendering of attention masks after transformers' AttentionMaskVisualizer
// (src/transformers/utils/attention_visualizer.py, generate_attention_matrix_from_mask).
//
// What is kept from transformers:
//  - the glyphs ■ (seen) and ⬚ (masked), cells separated by one space;
//  - row labels repr(piece) left-justified to the widest label, then ": ", the query index
//    right-justified to 2, one space, the grid ("{word_repr}: {str(i).rjust(2)} {row}");
//  - panels side by side separated by "    |    ", the model's full mask ("Attention Matrix")
//    left of the "Sliding Window Mask";
//  - a legend line starting with one space, then the title line, then the column indices written
//    vertically (one line per digit, right-justified), all indented to the first grid column;
//  - with colour: the diagonal drawn as a green ■ (\033[92m ... \033[0m), the legend's green ■.
//
// Differences (deliberate):
//  - one panel per distinct (causal, window) kind of `layers`, each decided by MaskSpec::allows,
//    instead of the model's mask plus a sliding-window mask recomputed by the visualizer; titles
//    name the layers each panel covers and the window ("Sliding Window Mask (window 3; layers
//    0,2)"); a title is placed over its own panel (transformers puts "Sliding Window Mask" at
//    len(row_with_ansi_codes)//2, i.e. inside the first panel). When a title would run into the
//    next panel, each title gets its own line, still starting at its panel's column;
//  - plain text by default: no ANSI codes, and the legend reads "■: attended   ⬚: masked"
//    (transformers' legend is "■: i == j (diagonal)   ■: token_type_ids", distinguishable only
//    by colour; there are no image tokens / token_type_ids here). With colour the legend is
//    "■: i == j (diagonal)   ■: attended   ⬚: masked" and only allowed diagonal cells are green
//    (transformers paints i == j green even where masked);
//  - the column-index lines are always printed (transformers prints empty lines instead when the
//    config has no sliding window, an operator-precedence slip) and use the digits of n - 1
//    (transformers: len(str(n)), which adds a blank line at n = 10, 100, ...);
//  - the query index is right-justified to max(2, digits of n - 1) and the indent follows it, so
//    rows stay aligned past 99 tokens; no trailing "    |    " after the last panel;
//  - labels are measured in terminal columns (wide CJK = 2, combining marks = 0) rather than
//    code points, and truncated to kMaxLabelWidth columns with "…" before the closing quote
//    (transformers does not truncate: one long piece would push every grid right);
//  - invalid UTF-8 bytes in a piece are shown as \xNN (a Python str cannot hold them);
//  - no "## Attention visualization for ... ##" banner (the caller knows the model, not us);
//    every line ends with '\n'.
#include "wp/attention/mask_text.h"
#include "tokenizer/text_util.h"
#include "wp/error.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <tuple>
#include <utf8proc.h>

namespace wp {

namespace {

constexpr const char* kSeen = "\u25A0";    // ■ BLACK_SQUARE
constexpr const char* kMasked = "\u2B1A";  // ⬚ WHITE_SQUARE
constexpr const char* kGreen = "\033[92m";
constexpr const char* kReset = "\033[0m";
constexpr const char* kSep = "    |    ";
constexpr int kSepWidth = 9;
constexpr int kMaxLabelWidth = 24;
// The printout grows with the square of the prompt (a row of n cells per token and panel, 4 bytes a
// cell): a few thousand tokens already make tens of MB, which no terminal shows usefully.
constexpr double kMaxTextBytes = 64.0 * 1024 * 1024;
constexpr const char* kEllipsis = "\u2026";  // …

// One source character of a label as displayed: its text and terminal width.
struct Unit {
    std::string text;
    int width = 0;
};


Unit hex_unit(const char* prefix, unsigned value, int digits) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "%s%0*x", prefix, digits, value);
    Unit u{buf, 0};
    u.width = static_cast<int>(u.text.size());
    return u;
}

Unit ascii_unit(std::string s) {
    const int w = static_cast<int>(s.size());
    return Unit{std::move(s), w};
}

// Python's repr() of the piece, split per source character.
std::vector<Unit> repr_units(std::string_view s, char& quote) {
    const bool has_single = s.find('\'') != std::string_view::npos;
    quote = has_single && s.find('"') == std::string_view::npos ? '"' : '\'';
    std::vector<Unit> out;
    out.reserve(s.size());
    const auto* bytes = reinterpret_cast<const utf8proc_uint8_t*>(s.data());
    for (std::size_t i = 0; i < s.size();) {
        utf8proc_int32_t cp = -1;
        const utf8proc_ssize_t n =
            utf8proc_iterate(bytes + i, static_cast<utf8proc_ssize_t>(s.size() - i), &cp);
        if (n <= 0 || cp < 0) {  // invalid UTF-8: one byte at a time
            out.push_back(hex_unit("\\x", static_cast<unsigned char>(s[i]), 2));
            ++i;
            continue;
        }
        const std::size_t start = i;
        i += static_cast<std::size_t>(n);
        if (cp == quote || cp == '\\') {
            out.push_back(ascii_unit(std::string{'\\', static_cast<char>(cp)}));
        } else if (cp == '\n') {
            out.push_back(ascii_unit("\\n"));
        } else if (cp == '\r') {
            out.push_back(ascii_unit("\\r"));
        } else if (cp == '\t') {
            out.push_back(ascii_unit("\\t"));
        } else if (text::is_printable(static_cast<char32_t>(cp))) {
            out.push_back(Unit{std::string(s.substr(start, i - start)), std::max(0, utf8proc_charwidth(cp))});
        } else if (cp < 0x100) {
            out.push_back(hex_unit("\\x", static_cast<unsigned>(cp), 2));
        } else if (cp < 0x10000) {
            out.push_back(hex_unit("\\u", static_cast<unsigned>(cp), 4));
        } else {
            out.push_back(hex_unit("\\U", static_cast<unsigned>(cp), 8));
        }
    }
    return out;
}

struct Label {
    std::string text;
    int width = 0;
};

Label make_label(std::string_view piece) {
    char quote = '\'';
    const std::vector<Unit> units = repr_units(piece, quote);
    int total = 2;
    for (const Unit& u : units) total += u.width;
    Label l;
    l.text += quote;
    if (total <= kMaxLabelWidth) {
        for (const Unit& u : units) l.text += u.text;
        l.width = total;
    } else {
        int w = 3;  // quotes and the ellipsis
        for (const Unit& u : units) {
            if (w + u.width > kMaxLabelWidth) break;
            l.text += u.text;
            w += u.width;
        }
        l.text += kEllipsis;
        l.width = w;
    }
    l.text += quote;
    return l;
}

int digits(std::size_t v) {
    int d = 1;
    while (v >= 10) {
        v /= 10;
        ++d;
    }
    return d;
}

// Layer indices, consecutive runs of three or more as "a-b": "0,2,4", "0-4,6-10", "7".
std::string layer_list(const std::vector<int>& layers) {
    std::string out;
    for (std::size_t i = 0; i < layers.size();) {
        std::size_t j = i;
        while (j + 1 < layers.size() && layers[j + 1] == layers[j] + 1) ++j;
        auto add = [&](int v) {
            if (!out.empty()) out += ',';
            out += std::to_string(v);
        };
        if (j - i >= 2) {
            add(layers[i]);
            out += '-';
            out += std::to_string(layers[j]);
            i = j + 1;
        } else {
            add(layers[i]);
            ++i;
        }
    }
    return out;
}

struct Kind {
    MaskSpec spec;
    std::vector<int> layers;
    std::string title;
};

std::string kind_title(const Kind& k) {
    std::string detail;
    if (k.spec.sliding()) detail = "window " + std::to_string(k.spec.window);
    if (!k.spec.causal) detail += detail.empty() ? "bidirectional" : ", bidirectional";
    if (!detail.empty()) detail += "; ";
    detail += (k.layers.size() == 1 ? "layer " : "layers ") + layer_list(k.layers);
    return std::string(k.spec.sliding() ? "Sliding Window Mask" : "Attention Matrix") + " (" + detail + ")";
}

std::vector<Kind> group_kinds(const std::vector<MaskSpec>& layers) {
    std::vector<Kind> kinds;
    for (std::size_t l = 0; l < layers.size(); ++l) {
        const MaskSpec& s = layers[l];
        auto it = std::find_if(kinds.begin(), kinds.end(), [&](const Kind& k) {
            return k.spec.causal == s.causal && k.spec.window == s.window;
        });
        if (it == kinds.end()) {
            kinds.push_back(Kind{s, {}, {}});
            it = kinds.end() - 1;
        }
        it->layers.push_back(static_cast<int>(l));
    }
    // The model's full mask first (transformers' left panel), then sliding kinds by window.
    std::stable_sort(kinds.begin(), kinds.end(), [](const Kind& a, const Kind& b) {
        return std::make_tuple(a.spec.sliding(), a.spec.window, !a.spec.causal) <
               std::make_tuple(b.spec.sliding(), b.spec.window, !b.spec.causal);
    });
    for (Kind& k : kinds) k.title = kind_title(k);
    return kinds;
}

// Terminal width of a title (ASCII only).
int text_width(const std::string& s) { return static_cast<int>(s.size()); }

}  // namespace

int mask_text_label_max_width() { return kMaxLabelWidth; }

std::string mask_text_label(std::string_view piece) { return make_label(piece).text; }

std::string render_mask_text(const std::vector<std::string>& pieces, const std::vector<MaskSpec>& layers,
                             bool color, int context_length) {
    if (pieces.empty() || layers.empty()) return {};
    const std::size_t n = pieces.size();
    if (context_length > 0 && n > static_cast<std::size_t>(context_length))
        throw Error("the prompt needs " + std::to_string(n) + " tokens but the model's context holds " +
                    std::to_string(context_length) + "; shorten the prompt");
    const std::vector<Kind> kinds = group_kinds(layers);
    // Rows (tokens, index digits, titles) times the widest row in bytes, labels at 4 bytes a column.
    const double rows = static_cast<double>(n) + 8 + static_cast<double>(kinds.size());
    const double row_bytes = 4.0 * (kMaxLabelWidth + 16) +
                             static_cast<double>(kinds.size()) * (4.0 * static_cast<double>(n) + 32);
    if (rows * row_bytes > kMaxTextBytes)
        throw Error("the mask printout of " + std::to_string(n) + " tokens would take about " +
                    std::to_string(static_cast<long long>(rows * row_bytes / (1024 * 1024))) + " MB (at most " +
                    std::to_string(static_cast<int>(kMaxTextBytes / (1024 * 1024))) + " MB); shorten the prompt");

    std::vector<Label> labels;
    labels.reserve(n);
    int label_w = 0;
    for (const std::string& p : pieces) {
        labels.push_back(make_label(p));
        label_w = std::max(label_w, labels.back().width);
    }
    const int idx_w = std::max(2, digits(n - 1));
    const int indent = label_w + 2 + idx_w + 1;  // "{label}: {idx} "
    const int panel_w = static_cast<int>(2 * n - 1);

    std::string out;
    // Legend.
    if (color)
        out += std::string(" ") + kGreen + kSeen + kReset + ": i == j (diagonal)   " + kSeen + ": attended   " +
               kMasked + ": masked\n";
    else
        out += std::string(" ") + kSeen + ": attended   " + kMasked + ": masked\n";

    // Titles: on one line when each fits before the next panel, else one line per panel.
    bool one_line = true;
    for (std::size_t p = 0; p + 1 < kinds.size(); ++p)
        if (text_width(kinds[p].title) > panel_w + kSepWidth - 1) one_line = false;
    if (one_line) {
        std::string line(static_cast<std::size_t>(indent), ' ');
        for (std::size_t p = 0; p < kinds.size(); ++p) {
            line += kinds[p].title;
            if (p + 1 < kinds.size())
                line.append(static_cast<std::size_t>(panel_w + kSepWidth - text_width(kinds[p].title)), ' ');
        }
        out += line + '\n';
    } else {
        for (std::size_t p = 0; p < kinds.size(); ++p) {
            out.append(static_cast<std::size_t>(indent + static_cast<int>(p) * (panel_w + kSepWidth)), ' ');
            out += kinds[p].title + '\n';
        }
    }

    // Column indices, written vertically.
    const int col_digits = digits(n - 1);
    for (int d = 0; d < col_digits; ++d) {
        std::string row;
        for (std::size_t j = 0; j < n; ++j) {
            const std::string num = std::to_string(j);
            const int pad = col_digits - static_cast<int>(num.size());
            if (j > 0) row += ' ';
            row += d < pad ? ' ' : num[static_cast<std::size_t>(d - pad)];
        }
        std::string line(static_cast<std::size_t>(indent), ' ');
        for (std::size_t p = 0; p < kinds.size(); ++p) {
            if (p > 0) line += kSep;
            line += row;
        }
        out += line + '\n';
    }

    // One row per query.
    for (std::size_t q = 0; q < n; ++q) {
        out += labels[q].text;
        out.append(static_cast<std::size_t>(label_w - labels[q].width), ' ');
        out += ": ";
        const std::string idx = std::to_string(q);
        out.append(static_cast<std::size_t>(idx_w - static_cast<int>(idx.size())), ' ');
        out += idx;
        out += ' ';
        for (std::size_t p = 0; p < kinds.size(); ++p) {
            if (p > 0) out += kSep;
            const MaskSpec& spec = kinds[p].spec;
            for (std::size_t k = 0; k < n; ++k) {
                if (k > 0) out += ' ';
                const bool seen = spec.allows(static_cast<std::int64_t>(q), static_cast<std::int64_t>(k));
                if (!seen) {
                    out += kMasked;
                } else if (color && q == k) {
                    out += kGreen;
                    out += kSeen;
                    out += kReset;
                } else {
                    out += kSeen;
                }
            }
        }
        out += '\n';
    }
    return out;
}

}  // namespace wp
