// Text rendering of attention masks (transformers' AttentionMaskVisualizer layout): the exact
// layout on a small example, the label rules, and every cell of the rendered grids against the
// reference masks of the fixtures (read back by parsing the text).
#include <chrono>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "test_support.h"
#include "wp/attention/mask.h"
#include "wp/attention/mask_text.h"
#include "wp/model/model_config.h"

namespace {

using wp::MaskSpec;
using wp::render_mask_text;

constexpr const char* kSeen = "\u25A0";
constexpr const char* kMasked = "\u2B1A";

std::vector<std::string> split_lines(const std::string& s) {
    std::vector<std::string> out;
    std::size_t start = 0;
    while (start < s.size()) {
        std::size_t nl = s.find('\n', start);
        if (nl == std::string::npos) nl = s.size();
        out.push_back(s.substr(start, nl - start));
        start = nl + 1;
    }
    return out;
}

// "0,2,4-6" -> {0,2,4,5,6}
std::vector<int> parse_layer_list(const std::string& s) {
    std::vector<int> out;
    std::size_t i = 0;
    while (i < s.size()) {
        std::size_t end = s.find(',', i);
        if (end == std::string::npos) end = s.size();
        const std::string item = s.substr(i, end - i);
        const std::size_t dash = item.find('-');
        if (dash == std::string::npos) {
            out.push_back(std::stoi(item));
        } else {
            for (int v = std::stoi(item.substr(0, dash)); v <= std::stoi(item.substr(dash + 1)); ++v) out.push_back(v);
        }
        i = end + 1;
    }
    return out;
}

struct Panel {
    std::vector<int> layers;
    int window = 0;
    std::vector<std::vector<int>> cells;  // [q][k]: 1 seen, 0 masked
};

// Reads the panels back from the rendered text: titles (in panel order) give the layers, the
// last n lines are the rows, split into panels at "    |    ", cells in order of appearance.
std::vector<Panel> parse_render(const std::string& text, std::size_t n) {
    const std::vector<std::string> lines = split_lines(text);
    // Titles, in panel order: left to right on one line, or one line per panel top to bottom.
    std::map<std::pair<std::size_t, std::size_t>, Panel> titled;  // (line, column) -> panel
    for (std::size_t li = 0; li < lines.size(); ++li) {
        const std::string& line = lines[li];
        for (const std::string& kind : {std::string("Attention Matrix ("), std::string("Sliding Window Mask (")}) {
            for (std::size_t at = line.find(kind); at != std::string::npos; at = line.find(kind, at + 1)) {
                const std::size_t open = at + kind.size();
                const std::size_t close = line.find(')', open);
                const std::string inside = line.substr(open, close - open);
                Panel p;
                const std::size_t w = inside.find("window ");
                if (w != std::string::npos) p.window = std::stoi(inside.substr(w + 7));
                std::size_t l = inside.find("layers ");
                l = l != std::string::npos ? l + 7 : inside.find("layer ") + 6;
                p.layers = parse_layer_list(inside.substr(l));
                p.cells.assign(n, {});
                titled[{li, at}] = p;
            }
        }
    }
    std::vector<Panel> panels;
    for (auto& [where, p] : titled) panels.push_back(std::move(p));
    EXPECT_GE(lines.size(), n);
    if (lines.size() < n) return panels;
    for (std::size_t q = 0; q < n; ++q) {
        const std::string& row = lines[lines.size() - n + q];
        std::size_t panel = 0, pos = 0;
        while (pos < row.size()) {
            if (row.compare(pos, 9, "    |    ") == 0) {
                ++panel;
                pos += 9;
            } else if (row.compare(pos, 3, kSeen) == 0 || row.compare(pos, 3, kMasked) == 0) {
                EXPECT_LT(panel, panels.size()) << row;
                if (panel < panels.size()) panels[panel].cells[q].push_back(row.compare(pos, 3, kSeen) == 0 ? 1 : 0);
                pos += 3;
            } else {
                ++pos;
            }
        }
        EXPECT_EQ(panel + 1, panels.size()) << row;
    }
    return panels;
}

TEST(MaskText, GoldenLayoutSlidingAndGlobal) {
    const std::vector<std::string> pieces = {"<bos>", "\xE2\x96\x81The", "\xE2\x96\x81" "cat", "\n", "'s", "\xE2\x96\x81sat"};
    const std::vector<MaskSpec> layers = {MaskSpec{true, 3}, MaskSpec{true, 0}};
    const std::string expected =
        " ■: attended   ⬚: masked\n"
        "            Attention Matrix (layer 1)\n"
        "                                Sliding Window Mask (window 3; layer 0)\n"
        "            0 1 2 3 4 5    |    0 1 2 3 4 5\n"
        "'<bos>':  0 ■ ⬚ ⬚ ⬚ ⬚ ⬚    |    ■ ⬚ ⬚ ⬚ ⬚ ⬚\n"
        "'▁The' :  1 ■ ■ ⬚ ⬚ ⬚ ⬚    |    ■ ■ ⬚ ⬚ ⬚ ⬚\n"
        "'▁cat' :  2 ■ ■ ■ ⬚ ⬚ ⬚    |    ■ ■ ■ ⬚ ⬚ ⬚\n"
        "'\\n'   :  3 ■ ■ ■ ■ ⬚ ⬚    |    ⬚ ■ ■ ■ ⬚ ⬚\n"
        "\"'s\"   :  4 ■ ■ ■ ■ ■ ⬚    |    ⬚ ⬚ ■ ■ ■ ⬚\n"
        "'▁sat' :  5 ■ ■ ■ ■ ■ ■    |    ⬚ ⬚ ⬚ ■ ■ ■\n";
    EXPECT_EQ(render_mask_text(pieces, layers), expected);
}

TEST(MaskText, GoldenLayoutSingleKindTitlesOnOneLine) {
    // Qwen2/Gemma: one kind. Two kinds whose titles fit: one title line.
    const std::vector<std::string> one = {"a", "b", "c"};
    EXPECT_EQ(render_mask_text(one, {MaskSpec{}, MaskSpec{}, MaskSpec{}, MaskSpec{}, MaskSpec{}}),
              " ■: attended   ⬚: masked\n"
              "        Attention Matrix (layers 0-4)\n"
              "        0 1 2\n"
              "'a':  0 ■ ⬚ ⬚\n"
              "'b':  1 ■ ■ ⬚\n"
              "'c':  2 ■ ■ ■\n");

    std::vector<std::string> many;
    for (int i = 0; i < 24; ++i) many.push_back(std::string(1, static_cast<char>('a' + i)));
    const std::string text = render_mask_text(many, {MaskSpec{true, 4}, MaskSpec{true, 0}, MaskSpec{true, 4}});
    const auto lines = split_lines(text);
    ASSERT_EQ(lines.size(), 1u + 1u + 2u + 24u);
    const std::string title = std::string(8, ' ') + "Attention Matrix (layer 1)" + std::string(47 + 9 - 26, ' ') +
                              "Sliding Window Mask (window 4; layers 0,2)";
    EXPECT_EQ(lines[1], title);
    // Indices right-justified like str(j).rjust(2): the tens line is blank over 0-9.
    const std::string tens = "                    1 1 1 1 1 1 1 1 1 1 2 2 2 2";
    const std::string ones = "0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3";
    EXPECT_EQ(lines[2], std::string(8, ' ') + tens + "    |    " + tens);
    EXPECT_EQ(lines[3], std::string(8, ' ') + ones + "    |    " + ones);
    EXPECT_EQ(lines[4].substr(0, 8), "'a':  0 ");
    EXPECT_EQ(lines[27].substr(0, 8), "'x': 23 ");
}

TEST(MaskText, PlainHasNoAnsiColorHasGreenDiagonal) {
    const std::vector<std::string> pieces = {"x", "y", "z"};
    const std::vector<MaskSpec> layers = {MaskSpec{true, 2}, MaskSpec{true, 0}};
    const std::string plain = render_mask_text(pieces, layers);
    EXPECT_EQ(plain.find('\033'), std::string::npos);
    const std::string colored = render_mask_text(pieces, layers, true);
    const std::string green = std::string("\033[92m") + kSeen + "\033[0m";
    // Legend + 3 diagonal cells in each of 2 panels.
    std::size_t count = 0;
    for (std::size_t at = colored.find(green); at != std::string::npos; at = colored.find(green, at + 1)) ++count;
    EXPECT_EQ(count, 1u + 3u * 2u);
    EXPECT_NE(colored.find("i == j (diagonal)"), std::string::npos);
    // Removing the colour codes gives the same cells as the plain text.
    std::string stripped = colored;
    for (const std::string& code : {std::string("\033[92m"), std::string("\033[0m")})
        for (std::size_t at = stripped.find(code); at != std::string::npos; at = stripped.find(code))
            stripped.erase(at, code.size());
    EXPECT_EQ(split_lines(stripped).back(), split_lines(plain).back());
}

TEST(MaskText, LabelsFollowPythonRepr) {
    using wp::mask_text_label;
    EXPECT_EQ(mask_text_label("hello"), "'hello'");
    EXPECT_EQ(mask_text_label("\xC4\xA0world"), "'\xC4\xA0world'");  // Ġworld kept as is
    EXPECT_EQ(mask_text_label("\n"), "'\\n'");
    EXPECT_EQ(mask_text_label("\t\r"), "'\\t\\r'");
    EXPECT_EQ(mask_text_label("a\\b"), "'a\\\\b'");
    EXPECT_EQ(mask_text_label("it's"), "\"it's\"");
    EXPECT_EQ(mask_text_label("'\""), "'\\'\"'");
    EXPECT_EQ(mask_text_label(" "), "' '");
    EXPECT_EQ(mask_text_label(std::string("\0", 1)), "'\\x00'");
    EXPECT_EQ(mask_text_label("\x7f"), "'\\x7f'");
    EXPECT_EQ(mask_text_label("\xC2\xA0"), "'\\xa0'");          // NBSP: not printable
    EXPECT_EQ(mask_text_label("\xE2\x80\x8B"), "'\\u200b'");    // zero-width space (Cf)
    EXPECT_EQ(mask_text_label("\xF3\xA0\x80\x81"), "'\\U000e0001'");  // language tag (Cf)
    EXPECT_EQ(mask_text_label("\xFF" "a"), "'\\xffa'");         // invalid UTF-8 byte
    EXPECT_EQ(mask_text_label(""), "''");
    // Long pieces are cut to the maximum width, "…" before the closing quote.
    const std::string long_piece(100, 'x');
    const int max_w = wp::mask_text_label_max_width();
    std::string want_long(1, '\'');
    want_long.append(static_cast<std::size_t>(max_w - 3), 'x');
    want_long += "\u2026'";
    EXPECT_EQ(mask_text_label(long_piece), want_long);
    // Escapes are never cut in half.
    const std::string nl_piece(50, '\n');
    const std::string cut = mask_text_label(nl_piece);
    std::string want = "'";
    for (int w = 3; w + 2 <= max_w; w += 2) want += "\\n";
    EXPECT_EQ(cut, want + "\u2026'");
}

TEST(MaskText, WideLabelsAlignByColumns) {
    // "日本" is 4 columns wide: the narrower labels are padded by columns, not code points.
    const std::string text = render_mask_text({"\xE6\x97\xA5\xE6\x9C\xAC", "ab"}, {MaskSpec{}});
    const auto lines = split_lines(text);
    ASSERT_EQ(lines.size(), 5u);
    EXPECT_EQ(lines[3], "'\xE6\x97\xA5\xE6\x9C\xAC':  0 ■ ⬚");
    EXPECT_EQ(lines[4], "'ab'  :  1 ■ ■");
    EXPECT_EQ(lines[2], std::string(11, ' ') + "0 1");
}

TEST(MaskText, LongPromptsStayAligned) {
    const std::size_t n = 120;
    std::vector<std::string> pieces(n, "t");
    const std::string text = render_mask_text(pieces, {MaskSpec{true, 50}, MaskSpec{}});
    const auto lines = split_lines(text);
    ASSERT_EQ(lines.size(), 1u + 1u + 3u + n);  // legend, one title line (the titles fit), 3 index lines
    // Query indices right-justified to 3 columns; every grid starts at the same column.
    EXPECT_EQ(lines.back().substr(0, 9), "'t': 119 ");
    EXPECT_EQ(lines[lines.size() - n].substr(0, 9), "'t':   0 ");
    EXPECT_EQ(lines[2].substr(0, 9), std::string(9, ' '));
    EXPECT_EQ(lines[4].substr(9, 5), "0 1 2");
    const auto panels = parse_render(text, n);
    ASSERT_EQ(panels.size(), 2u);
    EXPECT_EQ(panels[1].window, 50);
    for (std::size_t q = 0; q < n; ++q) {
        ASSERT_EQ(panels[0].cells[q].size(), n);
        ASSERT_EQ(panels[1].cells[q].size(), n);
        for (std::size_t k = 0; k < n; ++k) {
            EXPECT_EQ(panels[0].cells[q][k], k <= q ? 1 : 0);
            EXPECT_EQ(panels[1].cells[q][k], (MaskSpec{true, 50}.allows(q, k) ? 1 : 0));
        }
    }
}

TEST(MaskText, EmptyInputs) {
    EXPECT_EQ(render_mask_text({}, {MaskSpec{}}), "");
    EXPECT_EQ(render_mask_text({"a"}, {}), "");
}

// Prompts past the model's context are refused in the words of other too-long prompts, and a
// printout past 64 MB is refused before it is built (20,000 tokens would take about 3 GB).
TEST(MaskText, LongPromptsAreRefusedBeforeRendering) {
    const std::vector<std::string> seventeen(17, "a");
    EXPECT_EQ(wp::test::error_of([&] { render_mask_text(seventeen, {MaskSpec{}}, false, 16); }),
              "the prompt needs 17 tokens but the model's context holds 16; shorten the prompt");
    EXPECT_NE(render_mask_text(std::vector<std::string>(16, "a"), {MaskSpec{}}, false, 16), "");
    const auto t0 = std::chrono::steady_clock::now();
    const std::vector<std::string> many(20000, "a");
    EXPECT_EQ(wp::test::error_of([&] { render_mask_text(many, {MaskSpec{true, 4}, MaskSpec{}}, false, 32768); }),
              "the mask printout of 20000 tokens would take about 3057 MB (at most 64 MB); shorten the prompt");
    EXPECT_LT(std::chrono::steady_clock::now() - t0, ::wp::test::time_bound(std::chrono::seconds(1)));
    // A thousand tokens in two panels (about 8 MB) still print.
    const std::string text = render_mask_text(std::vector<std::string>(1000, "a"), {MaskSpec{true, 4}, MaskSpec{}});
    EXPECT_LT(text.size(), 16u * 1024 * 1024);
}

// Every ■/⬚ of the rendered grids equals the reference mask of every layer its panel covers.
void check_against_reference(const wp::test::RefCase& rc) {
    const wp::ModelConfig cfg = wp::ModelConfig::load(rc.model_dir);
    const auto ids = rc.input_ids();
    const auto masks = rc.bytes("masks_file");
    const auto shape = rc.meta.at("masks_shape").get<std::vector<int>>();
    ASSERT_EQ(shape.size(), 3u);
    const std::size_t L = static_cast<std::size_t>(shape[0]), T = static_cast<std::size_t>(shape[1]);
    ASSERT_EQ(T, ids.size());
    ASSERT_EQ(L, cfg.layer_masks.size());
    ASSERT_EQ(masks.size(), L * T * T);

    std::vector<std::string> pieces;
    for (int id : ids) pieces.push_back(std::to_string(id));
    const std::string text = render_mask_text(pieces, cfg.layer_masks);
    const std::vector<Panel> panels = parse_render(text, T);

    std::set<std::pair<bool, int>> kinds;
    for (const MaskSpec& s : cfg.layer_masks) kinds.insert({s.causal, s.window});
    ASSERT_EQ(panels.size(), kinds.size()) << text;

    std::multiset<int> covered;
    for (const Panel& p : panels) {
        ASSERT_FALSE(p.layers.empty());
        for (int l : p.layers) {
            covered.insert(l);
            ASSERT_LT(static_cast<std::size_t>(l), L);
            EXPECT_EQ(p.window, cfg.layer_masks[l].window) << "layer " << l;
            for (std::size_t q = 0; q < T; ++q) {
                ASSERT_EQ(p.cells[q].size(), T) << rc.name << " row " << q;
                for (std::size_t k = 0; k < T; ++k)
                    ASSERT_EQ(p.cells[q][k], masks[(static_cast<std::size_t>(l) * T + q) * T + k] != 0 ? 1 : 0)
                        << rc.name << " layer " << l << " query " << q << " key " << k << "\n"
                        << text;
            }
        }
    }
    std::multiset<int> all;
    for (std::size_t l = 0; l < L; ++l) all.insert(static_cast<int>(l));
    EXPECT_EQ(covered, all) << "every layer in exactly one panel";
}

TEST(MaskText, Gemma2Seq12MatchesReferenceMasks) {
    WP_REQUIRE_SHARED();
    const auto cases = wp::test::all_cases();
    const wp::test::RefCase* seq12 = nullptr;
    for (const auto& c : cases)
        if (c.name == "tiny-gemma2/seq12") seq12 = &c;
    ASSERT_NE(seq12, nullptr) << "tiny-gemma2/seq12 not found";
    check_against_reference(*seq12);

    // Two panels: the global layers 1,3 and the sliding layers 0,2 with window 8 — and at 12
    // tokens the window really masks something.
    const wp::ModelConfig cfg = wp::ModelConfig::load(seq12->model_dir);
    std::vector<std::string> pieces;
    for (int id : seq12->input_ids()) pieces.push_back(std::to_string(id));
    const std::string text = render_mask_text(pieces, cfg.layer_masks);
    EXPECT_NE(text.find("Attention Matrix (layers 1,3)"), std::string::npos) << text;
    EXPECT_NE(text.find("Sliding Window Mask (window 8; layers 0,2)"), std::string::npos) << text;
    const auto panels = parse_render(text, pieces.size());
    ASSERT_EQ(panels.size(), 2u);
    EXPECT_NE(panels[0].cells, panels[1].cells);
}

TEST(MaskText, AllReferenceCasesMatchMasks) {
    WP_REQUIRE_SHARED();
    int checked = 0;
    for (const auto& rc : wp::test::all_cases()) {
        if (!rc.meta.contains("masks_file")) continue;
        SCOPED_TRACE(rc.name);
        check_against_reference(rc);
        ++checked;
    }
    EXPECT_GT(checked, 0);
}

}  // namespace
