// tokenizer.json with a BPE model, in both flavours real checkpoints use: byte-level BPE (Qwen2:
// NFC, regex split, GPT-2 byte map) and SentencePiece-style BPE (Gemma: space -> "▁", byte
// fallback). The pipeline follows Hugging Face `tokenizers`: added tokens are split out first,
// then normalizer, pre-tokenizer, BPE model; post-processor for the special tokens; decoder.
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <queue>
#include <sstream>
#include <unordered_map>
#include <utf8proc.h>

#include "bpe_tokenizer.h"
#include "tokenizer/text_util.h"
#include "wp/error.h"
#include "wp/io/json_file.h"
#include "wp/io/file_util.h"

namespace wp {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

std::string replace_all(std::string_view s, std::string_view from, std::string_view to) {
    if (from.empty()) return std::string(s);
    std::string out;
    out.reserve(s.size());
    std::size_t i = 0;
    for (;;) {
        const std::size_t j = s.find(from, i);
        if (j == std::string_view::npos) break;
        out.append(s.substr(i, j - i));
        out.append(to);
        i = j + from.size();
    }
    out.append(s.substr(i));
    return out;
}

// A compiled PCRE2 pattern (UTF, Unicode properties, JIT).
class Regex {
public:
    explicit Regex(const std::string& pattern) {
        int err = 0;
        PCRE2_SIZE off = 0;
        code_ = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                              PCRE2_UTF | PCRE2_UCP | PCRE2_NO_UTF_CHECK, &err, &off, nullptr);
        if (code_ == nullptr) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(err, msg, sizeof msg);
            throw Error("tokenizer.json: cannot compile the split regex at offset " + std::to_string(off) +
                        ": " + reinterpret_cast<const char*>(msg));
        }
        pcre2_jit_compile(code_, PCRE2_JIT_COMPLETE);
    }
    ~Regex() { pcre2_code_free(code_); }
    Regex(const Regex&) = delete;
    Regex& operator=(const Regex&) = delete;

    // Calls f(begin, end) for every non-overlapping match, left to right.
    template <typename F>
    void for_each_match(std::string_view s, F&& f) const {
        pcre2_match_data* md = pcre2_match_data_create_from_pattern(code_, nullptr);
        std::size_t off = 0;
        while (off <= s.size()) {
            const int rc = pcre2_match(code_, reinterpret_cast<PCRE2_SPTR>(s.data()), s.size(), off,
                                       PCRE2_NO_UTF_CHECK, md, nullptr);
            if (rc < 0) break;
            const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
            const std::size_t b = ov[0], e = ov[1];
            if (e == b) {  // empty match: step over one character
                if (b >= s.size()) break;
                off = b + text::utf8_len(static_cast<unsigned char>(s[b]));
                continue;
            }
            f(b, e);
            off = e;
        }
        pcre2_match_data_free(md);
    }

private:
    pcre2_code* code_ = nullptr;
};

enum class SplitBehavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous };

SplitBehavior parse_behavior(const std::string& s) {
    if (s == "Removed") return SplitBehavior::Removed;
    if (s == "Isolated") return SplitBehavior::Isolated;
    if (s == "MergedWithPrevious") return SplitBehavior::MergedWithPrevious;
    if (s == "MergedWithNext") return SplitBehavior::MergedWithNext;
    if (s == "Contiguous") return SplitBehavior::Contiguous;
    throw Error("tokenizer.json: unknown split behavior \"" + s + "\"");
}

std::string regex_escape(const std::string& s) {
    std::string out;
    for (char c : s) {
        if (std::strchr("\\^$.|?*+()[]{}", c) != nullptr) out += '\\';
        out += c;
    }
    return out;
}

}  // namespace

// ---- pipeline steps -----------------------------------------------------------------------

struct BpeTokenizer::Normalizer {
    enum Kind { NFC, NFKC, NFD, NFKD, Replace, Prepend, Lowercase } kind = NFC;
    std::string from, to;
    std::unique_ptr<Regex> regex;

    std::string apply(std::string s) const {
        switch (kind) {
            case NFC: return text::nfc(s);
            case NFKC:
            case NFD:
            case NFKD: {
                if (text::is_ascii(s)) return s;
                int opt = UTF8PROC_STABLE;
                if (kind == NFKC || kind == NFKD) opt |= UTF8PROC_COMPAT;
                opt |= (kind == NFKC) ? UTF8PROC_COMPOSE : UTF8PROC_DECOMPOSE;
                utf8proc_uint8_t* out = nullptr;
                const auto n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(s.data()),
                                            static_cast<utf8proc_ssize_t>(s.size()), &out,
                                            static_cast<utf8proc_option_t>(opt));
                if (n < 0) return s;
                std::string r(reinterpret_cast<const char*>(out), static_cast<std::size_t>(n));
                std::free(out);
                return r;
            }
            case Replace: {
                if (!regex) return replace_all(s, from, to);
                std::string out;
                std::size_t last = 0;
                regex->for_each_match(s, [&](std::size_t b, std::size_t e) {
                    out.append(s, last, b - last);
                    out += to;
                    last = e;
                });
                out.append(s, last, std::string::npos);
                return out;
            }
            case Prepend: return s.empty() ? s : to + s;
            case Lowercase: {
                std::string out;
                for (std::size_t i = 0; i < s.size();) text::append_utf8(out, static_cast<char32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(text::next_cp(s, i)))));
                return out;
            }
        }
        return s;
    }
};

struct BpeTokenizer::PreTokenizer {
    enum Kind { Split, ByteLevel, Metaspace, Digits } kind = Split;
    std::unique_ptr<Regex> regex;
    SplitBehavior behavior = SplitBehavior::Isolated;
    bool invert = false;
    bool add_prefix_space = false;
    bool use_regex = false;
    std::string replacement = "\xe2\x96\x81";
    std::string prepend_scheme = "always";
    bool split = true;
    bool individual_digits = false;

    // Splits every piece of `in`, appending to `out`.
    void apply(const std::vector<std::string>& in, std::vector<std::string>& out, bool first_segment) const {
        for (std::size_t p = 0; p < in.size(); ++p) apply_one(in[p], out, first_segment && p == 0);
    }

    void split_by(const Regex& re, SplitBehavior beh, bool inv, const std::string& s, std::vector<std::string>& out) const {
        // Pieces as (begin, end, is_match).
        struct Span { std::size_t b, e; bool match; };
        std::vector<Span> spans;
        std::size_t last = 0;
        re.for_each_match(s, [&](std::size_t b, std::size_t e) {
            if (b > last) spans.push_back({last, b, false});
            spans.push_back({b, e, true});
            last = e;
        });
        if (last < s.size()) spans.push_back({last, s.size(), false});
        if (inv)
            for (auto& sp : spans) sp.match = !sp.match;
        switch (beh) {
            case SplitBehavior::Removed:
                for (const auto& sp : spans)
                    if (!sp.match) out.push_back(s.substr(sp.b, sp.e - sp.b));
                break;
            case SplitBehavior::Isolated:
                for (const auto& sp : spans) out.push_back(s.substr(sp.b, sp.e - sp.b));
                break;
            case SplitBehavior::MergedWithPrevious: {
                std::size_t start = 0;
                bool pending = false;
                for (const auto& sp : spans) {
                    if (sp.match) {
                        out.push_back(s.substr(start, sp.e - start));
                        start = sp.e;
                        pending = false;
                    } else {
                        pending = true;
                    }
                }
                if (pending && start < s.size()) out.push_back(s.substr(start));
                break;
            }
            case SplitBehavior::MergedWithNext: {
                std::size_t start = 0;
                for (std::size_t k = 0; k < spans.size(); ++k) {
                    if (spans[k].match && spans[k].b > start) {
                        out.push_back(s.substr(start, spans[k].b - start));
                        start = spans[k].b;
                    }
                }
                if (start < s.size()) out.push_back(s.substr(start));
                break;
            }
            case SplitBehavior::Contiguous: {
                std::size_t k = 0;
                while (k < spans.size()) {
                    std::size_t j = k;
                    while (j + 1 < spans.size() && spans[j + 1].match == spans[k].match) ++j;
                    out.push_back(s.substr(spans[k].b, spans[j].e - spans[k].b));
                    k = j + 1;
                }
                break;
            }
        }
    }

    void apply_one(const std::string& s, std::vector<std::string>& out, bool first) const {
        switch (kind) {
            case Split: split_by(*regex, behavior, invert, s, out); return;
            case Digits: {
                static const Regex digits("\\p{N}+");
                static const Regex digit("\\p{N}");
                split_by(individual_digits ? digit : digits, SplitBehavior::Isolated, false, s, out);
                return;
            }
            case ByteLevel: {
                std::string src = s;
                if (add_prefix_space && !src.empty() && src[0] != ' ') src.insert(src.begin(), ' ');
                std::vector<std::string> parts;
                if (use_regex) {
                    static const Regex gpt2("'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+");
                    split_by(gpt2, SplitBehavior::Isolated, false, src, parts);
                } else {
                    parts.push_back(std::move(src));
                }
                for (const auto& part : parts) {
                    std::string mapped;
                    mapped.reserve(part.size() * 2);
                    for (unsigned char b : part) mapped += text::byte_to_unicode(b);
                    out.push_back(std::move(mapped));
                }
                return;
            }
            case Metaspace: {
                std::string r = replace_all(s, " ", replacement);
                if ((prepend_scheme == "always" || (prepend_scheme == "first" && first)) &&
                    r.rfind(replacement, 0) != 0)
                    r = replacement + r;
                if (!split) {
                    out.push_back(std::move(r));
                    return;
                }
                static const Regex none("(?!)");
                const Regex re(regex_escape(replacement));
                split_by(re, SplitBehavior::MergedWithNext, false, r, out);
                return;
            }
        }
    }
};

struct BpeTokenizer::Decoder {
    enum Kind { Replace, ByteFallback, Fuse, Strip, ByteLevel, Metaspace } kind = Fuse;
    std::string from, to;
    std::string content;
    int start = 0, stop = 0;
    std::string prepend_scheme = "always";

    void apply(std::vector<std::string>& tokens) const {
        switch (kind) {
            case Replace:
                for (auto& t : tokens) t = replace_all(t, from, to);
                return;
            case ByteFallback: {
                std::vector<std::string> out;
                std::string bytes;
                int nbytes = 0;
                auto flush = [&] {
                    if (nbytes == 0) return;
                    const std::string lossy = text::utf8_lossy(bytes);
                    if (lossy == bytes) {
                        out.push_back(bytes);
                    } else {
                        std::string rep;
                        for (int i = 0; i < nbytes; ++i) rep += "\xef\xbf\xbd";
                        out.push_back(rep);
                    }
                    bytes.clear();
                    nbytes = 0;
                };
                for (auto& t : tokens) {
                    if (t.size() == 6 && t.compare(0, 3, "<0x") == 0 && t[5] == '>' && std::isxdigit(static_cast<unsigned char>(t[3])) &&
                        std::isxdigit(static_cast<unsigned char>(t[4]))) {
                        bytes += static_cast<char>(std::stoi(t.substr(3, 2), nullptr, 16));
                        ++nbytes;
                    } else {
                        flush();
                        out.push_back(std::move(t));
                    }
                }
                flush();
                tokens = std::move(out);
                return;
            }
            case Fuse: {
                std::string all;
                for (const auto& t : tokens) all += t;
                tokens.assign(1, all);
                return;
            }
            case Strip:
                for (auto& t : tokens) {
                    int a = 0;
                    while (a < start && t.compare(0, content.size(), content) == 0 && !t.empty()) {
                        t.erase(0, content.size());
                        ++a;
                    }
                    int b = 0;
                    while (b < stop && t.size() >= content.size() &&
                           t.compare(t.size() - content.size(), content.size(), content) == 0 && !t.empty()) {
                        t.erase(t.size() - content.size());
                        ++b;
                    }
                }
                return;
            case ByteLevel: {
                std::string bytes;
                for (const auto& t : tokens) {
                    std::string tb;
                    bool ok = true;
                    for (std::size_t i = 0; i < t.size();) {
                        const int b = text::unicode_to_byte(text::next_cp(t, i));
                        if (b < 0) {
                            ok = false;
                            break;
                        }
                        tb += static_cast<char>(b);
                    }
                    bytes += ok ? tb : t;
                }
                tokens.assign(1, text::utf8_lossy(bytes));
                return;
            }
            case Metaspace:
                for (std::size_t i = 0; i < tokens.size(); ++i) {
                    tokens[i] = replace_all(tokens[i], "\xe2\x96\x81", " ");
                    if (i == 0 && prepend_scheme != "never" && !tokens[i].empty() && tokens[i][0] == ' ')
                        tokens[i].erase(0, 1);
                }
                return;
        }
    }
};

// ---- loading ------------------------------------------------------------------------------

namespace {

}  // namespace

BpeTokenizer::BpeTokenizer(const fs::path& file)
    : BpeTokenizer(parse_json<json>(read_text_file(file), file.filename().string()), file.filename().string()) {}

BpeTokenizer::BpeTokenizer(const json& j, const std::string& where) {
    if (!j.contains("model") || !j["model"].is_object()) throw Error(where + ": no \"model\" section");
    const json& m = j["model"];
    const std::string type = m.value("type", std::string("BPE"));
    if (type != "BPE")
        throw Error(where + ": tokenizer model \"" + type + "\" is not supported (only BPE)");
    if (!m.contains("vocab") || !m["vocab"].is_object()) throw Error(where + ": model has no vocab");
    if (m.contains("continuing_subword_prefix") && m["continuing_subword_prefix"].is_string() &&
        !m["continuing_subword_prefix"].get<std::string>().empty())
        throw Error(where + ": continuing_subword_prefix is not supported");

    // Ids index pieces_, so they are bounded before it is sized: a real tokenizer numbers its
    // vocabulary and added tokens densely from 0, so every id is below their count together.
    const json* added_json = nullptr;
    if (j.contains("added_tokens") && !j["added_tokens"].is_null()) {
        if (!j["added_tokens"].is_array()) throw Error(where + ": added_tokens must be a list");
        added_json = &j["added_tokens"];
    }
    const std::size_t id_limit = m["vocab"].size() + (added_json ? added_json->size() : 0);
    auto read_id = [&](const json& v, const std::string& what) {
        if (!v.is_number_integer()) throw Error(where + ": " + what + " has no integer id");
        const bool outside = v.is_number_unsigned() ? v.get<std::uint64_t>() >= id_limit
                                                    : v.get<std::int64_t>() < 0 ||
                                                          static_cast<std::uint64_t>(v.get<std::int64_t>()) >= id_limit;
        if (outside)
            throw Error(where + ": " + what + " has id " + v.dump() + ", outside 0.." + std::to_string(id_limit - 1) +
                        " (the vocabulary and added tokens number " + std::to_string(id_limit) + ")");
        return static_cast<int>(v.get<std::int64_t>());
    };

    int max_id = -1;
    std::vector<bool> id_used(id_limit, false);
    vocab_.reserve(m["vocab"].size() * 2);
    for (auto it = m["vocab"].begin(); it != m["vocab"].end(); ++it) {
        const int id = read_id(*it, "vocab entry \"" + it.key() + "\"");
        if (id_used[id]) throw Error(where + ": vocab entry \"" + it.key() + "\" repeats id " + std::to_string(id));
        id_used[id] = true;
        vocab_.emplace(it.key(), id);
        max_id = std::max(max_id, id);
    }
    byte_fallback_ = m.value("byte_fallback", false);
    fuse_unk_ = m.value("fuse_unk", false);
    ignore_merges_ = m.value("ignore_merges", false);
    if (m.contains("unk_token") && m["unk_token"].is_string()) {
        auto it = vocab_.find(m["unk_token"].get<std::string>());
        if (it != vocab_.end()) unk_ = it->second;
    }

    // Added tokens (ids may extend the vocabulary, or name one of its entries again).
    if (added_json)
        for (const auto& a : *added_json) {
            if (!a.is_object() || !a.contains("content") || !a["content"].is_string() || !a.contains("id"))
                throw Error(where + ": added_tokens entries must be objects with an id and a content string");
            AddedToken t;
            t.content = a["content"].get<std::string>();
            t.id = read_id(a["id"], "added token \"" + t.content + "\"");
            if (t.content.empty()) throw Error(where + ": added token " + std::to_string(t.id) + " has no content");
            t.special = a.value("special", false);
            t.lstrip = a.value("lstrip", false);
            t.rstrip = a.value("rstrip", false);
            t.single_word = a.value("single_word", false);
            t.normalized = a.value("normalized", false);
            added_.push_back(t);
            max_id = std::max(max_id, t.id);
        }
    pieces_.assign(static_cast<std::size_t>(max_id + 1), std::string());
    for (const auto& [piece, id] : vocab_) pieces_[id] = piece;
    for (const auto& t : added_) pieces_[t.id] = t.content;

    // Merges: "a b" strings or ["a", "b"] pairs; rank = position in the file.
    if (m.contains("merges") && m["merges"].is_array()) {
        const json& ms = m["merges"];
        merges_.reserve(ms.size() * 2);
        int rank = 0;
        for (const auto& e : ms) {
            std::string a, b;
            if (e.is_string()) {
                const std::string s = e.get<std::string>();
                const std::size_t sp = s.find(' ', 1);
                if (sp == std::string::npos) throw Error(where + ": merge \"" + s + "\" is not \"a b\"");
                a = s.substr(0, sp);
                b = s.substr(sp + 1);
            } else if (e.is_array() && e.size() == 2 && e[0].is_string() && e[1].is_string()) {
                a = e[0].get<std::string>();
                b = e[1].get<std::string>();
            } else {
                throw Error(where + ": merge " + std::to_string(rank) + " is neither \"a b\" nor [\"a\", \"b\"]");
            }
            const auto ia = vocab_.find(a), ib = vocab_.find(b), ic = vocab_.find(a + b);
            if (ia == vocab_.end() || ib == vocab_.end() || ic == vocab_.end())
                throw Error(where + ": merge \"" + a + " " + b + "\" uses a piece missing from the vocab");
            merges_.emplace(pair_key(ia->second, ib->second), Merge{rank, ic->second});
            ++rank;
        }
    }

    if (byte_fallback_) {
        byte_ids_.assign(256, -1);
        char buf[8];
        for (int b = 0; b < 256; ++b) {
            std::snprintf(buf, sizeof buf, "<0x%02X>", b);
            auto it = vocab_.find(buf);
            if (it != vocab_.end()) byte_ids_[b] = it->second;
        }
    }

    parse_normalizer(j.value("normalizer", json()));
    parse_pre_tokenizer(j.value("pre_tokenizer", json()));
    parse_decoder(j.value("decoder", json()));
    const json& post = j.value("post_processor", json());
    if (post.is_object() && post.value("type", std::string()) == "TemplateProcessing" && post.contains("single")) {
        for (const auto& item : post["single"]) {
            if (item.contains("Sequence")) {
                template_.push_back(-1);
            } else if (item.contains("SpecialToken")) {
                const std::string name = item["SpecialToken"].value("id", std::string());
                int id = -1;
                if (post.contains("special_tokens") && post["special_tokens"].contains(name) &&
                    !post["special_tokens"][name]["ids"].empty())
                    id = read_id(post["special_tokens"][name]["ids"][0], "post_processor special token " + name);
                if (id < 0) throw Error(where + ": post_processor names unknown special token " + name);
                template_.push_back(id);
            }
        }
    } else if (post.is_object() && post.value("type", std::string()) == "Sequence" && post.contains("processors")) {
        for (const auto& p : post["processors"])
            if (p.value("type", std::string()) == "TemplateProcessing")
                throw Error(where + ": nested TemplateProcessing post-processors are not supported");
    }

    if (!pre_.empty() && pre_[0]->kind == PreTokenizer::Split && pre_[0]->behavior == SplitBehavior::Isolated &&
        !pre_[0]->invert) {
        if (pre_.size() == 1) {
            fast_split_ = true;
        } else if (pre_.size() == 2 && pre_[1]->kind == PreTokenizer::ByteLevel && !pre_[1]->use_regex &&
                   !pre_[1]->add_prefix_space) {
            fast_split_ = true;
            fast_byte_level_ = true;
        }
    }
    std::string kind = "BPE";
    for (const auto& p : pre_)
        if (p->kind == PreTokenizer::ByteLevel) kind = "byte-level BPE";
    if (byte_fallback_) kind = "BPE with byte fallback";
    describe_ = where + ", " + kind + ", " + std::to_string(pieces_.size()) + " ids";
    splitter_.build(added_);
}

BpeTokenizer::~BpeTokenizer() = default;

void BpeTokenizer::parse_normalizer(const json& n) {
    if (n.is_null()) return;
    const std::string type = n.value("type", std::string());
    if (type == "Sequence") {
        for (const auto& x : n["normalizers"]) parse_normalizer(x);
        return;
    }
    auto norm = std::make_unique<Normalizer>();
    if (type == "NFC") norm->kind = Normalizer::NFC;
    else if (type == "NFKC") norm->kind = Normalizer::NFKC;
    else if (type == "NFD") norm->kind = Normalizer::NFD;
    else if (type == "NFKD") norm->kind = Normalizer::NFKD;
    else if (type == "Lowercase") norm->kind = Normalizer::Lowercase;
    else if (type == "Prepend") {
        norm->kind = Normalizer::Prepend;
        norm->to = n.value("prepend", std::string());
    } else if (type == "Replace") {
        norm->kind = Normalizer::Replace;
        norm->to = n.value("content", std::string());
        const json& pat = n["pattern"];
        if (pat.contains("String")) norm->from = pat["String"].get<std::string>();
        else if (pat.contains("Regex")) norm->regex = std::make_unique<Regex>(pat["Regex"].get<std::string>());
    } else {
        throw Error("tokenizer.json: normalizer \"" + type + "\" is not supported");
    }
    normalizers_.push_back(std::move(norm));
}

void BpeTokenizer::parse_pre_tokenizer(const json& p) {
    if (p.is_null()) return;
    const std::string type = p.value("type", std::string());
    if (type == "Sequence") {
        for (const auto& x : p["pretokenizers"]) parse_pre_tokenizer(x);
        return;
    }
    auto pt = std::make_unique<PreTokenizer>();
    if (type == "Split") {
        pt->kind = PreTokenizer::Split;
        const json& pat = p["pattern"];
        if (pat.contains("String")) pt->regex = std::make_unique<Regex>(regex_escape(pat["String"].get<std::string>()));
        else if (pat.contains("Regex")) pt->regex = std::make_unique<Regex>(pat["Regex"].get<std::string>());
        else throw Error("tokenizer.json: Split pre-tokenizer without a pattern");
        pt->behavior = parse_behavior(p.value("behavior", std::string("Isolated")));
        pt->invert = p.value("invert", false);
    } else if (type == "ByteLevel") {
        pt->kind = PreTokenizer::ByteLevel;
        pt->add_prefix_space = p.value("add_prefix_space", false);
        pt->use_regex = p.value("use_regex", true);
    } else if (type == "Metaspace") {
        pt->kind = PreTokenizer::Metaspace;
        pt->replacement = p.value("replacement", std::string("\xe2\x96\x81"));
        pt->prepend_scheme = p.value("prepend_scheme", std::string(p.value("add_prefix_space", true) ? "always" : "never"));
        pt->split = p.value("split", true);
    } else if (type == "Digits") {
        pt->kind = PreTokenizer::Digits;
        pt->individual_digits = p.value("individual_digits", false);
    } else {
        throw Error("tokenizer.json: pre-tokenizer \"" + type + "\" is not supported");
    }
    pre_.push_back(std::move(pt));
}

void BpeTokenizer::parse_decoder(const json& d) {
    if (d.is_null()) return;
    const std::string type = d.value("type", std::string());
    if (type == "Sequence") {
        for (const auto& x : d["decoders"]) parse_decoder(x);
        return;
    }
    auto dec = std::make_unique<Decoder>();
    if (type == "Replace") {
        dec->kind = Decoder::Replace;
        dec->to = d.value("content", std::string());
        if (!d["pattern"].contains("String")) throw Error("tokenizer.json: only string Replace decoders are supported");
        dec->from = d["pattern"]["String"].get<std::string>();
    } else if (type == "ByteFallback") {
        dec->kind = Decoder::ByteFallback;
    } else if (type == "Fuse") {
        dec->kind = Decoder::Fuse;
    } else if (type == "Strip") {
        dec->kind = Decoder::Strip;
        dec->content = d.value("content", std::string(" "));
        dec->start = d.value("start", 0);
        dec->stop = d.value("stop", 0);
    } else if (type == "ByteLevel") {
        dec->kind = Decoder::ByteLevel;
    } else if (type == "Metaspace") {
        dec->kind = Decoder::Metaspace;
        dec->prepend_scheme = d.value("prepend_scheme", std::string(d.value("add_prefix_space", true) ? "always" : "never"));
    } else {
        throw Error("tokenizer.json: decoder \"" + type + "\" is not supported");
    }
    decoders_.push_back(std::move(dec));
}

// ---- encoding -----------------------------------------------------------------------------

void BpeTokenizer::bpe_word(const std::string& word, std::vector<int>& out) const {
    if (ignore_merges_) {
        auto it = vocab_.find(word);
        if (it != vocab_.end()) {
            out.push_back(it->second);
            return;
        }
    }
    struct Sym {
        int id, prev, next;
        bool alive;
    };
    std::vector<Sym> syms;
    syms.reserve(word.size());
    bool last_unk = false;
    for (std::size_t i = 0; i < word.size();) {
        const std::size_t n = std::min<std::size_t>(text::utf8_len(static_cast<unsigned char>(word[i])), word.size() - i);
        const std::string ch = word.substr(i, n);
        i += n;
        auto it = vocab_.find(ch);
        if (it != vocab_.end()) {
            syms.push_back({it->second, 0, 0, true});
            last_unk = false;
            continue;
        }
        if (byte_fallback_) {
            bool all = true;
            for (unsigned char b : ch) all = all && byte_ids_[b] >= 0;
            if (all) {
                for (unsigned char b : ch) syms.push_back({byte_ids_[b], 0, 0, true});
                last_unk = false;
                continue;
            }
        }
        if (!unk_) throw Error("tokenizer: text contains a character outside the vocabulary and the tokenizer has no unk token");
        if (fuse_unk_ && last_unk) continue;
        syms.push_back({*unk_, 0, 0, true});
        last_unk = true;
    }
    const int n = static_cast<int>(syms.size());
    for (int i = 0; i < n; ++i) {
        syms[i].prev = i - 1;
        syms[i].next = i + 1 < n ? i + 1 : -1;
    }
    struct Cand {
        int rank, pos, new_id, right_id;
        bool operator>(const Cand& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
    };
    std::priority_queue<Cand, std::vector<Cand>, std::greater<Cand>> q;
    auto consider = [&](int pos) {
        if (pos < 0) return;
        const int nx = syms[pos].next;
        if (nx < 0) return;
        auto it = merges_.find(pair_key(syms[pos].id, syms[nx].id));
        if (it != merges_.end()) q.push({it->second.rank, pos, it->second.new_id, syms[nx].id});
    };
    for (int i = 0; i + 1 < n; ++i) consider(i);
    while (!q.empty()) {
        const Cand c = q.top();
        q.pop();
        Sym& s = syms[c.pos];
        if (!s.alive || s.next < 0) continue;
        const int nx = s.next;
        // Stale candidate: one side changed since it was queued.
        auto it = merges_.find(pair_key(s.id, syms[nx].id));
        if (syms[nx].id != c.right_id || it == merges_.end() || it->second.rank != c.rank) continue;
        s.id = c.new_id;
        syms[nx].alive = false;
        s.next = syms[nx].next;
        if (s.next >= 0) syms[s.next].prev = c.pos;
        consider(s.prev);
        consider(c.pos);
    }
    for (int i = 0; i >= 0 && i < n; i = syms[i].next) out.push_back(syms[i].id);
}

void BpeTokenizer::encode_word(std::string_view word, bool map_bytes, std::vector<int>& out, WordCache& cache) const {
    if (word.empty()) return;
    auto it = cache.find(word);
    if (it != cache.end()) {
        out.insert(out.end(), it->second.begin(), it->second.end());
        return;
    }
    std::vector<int> ids;
    if (map_bytes) {
        std::string mapped;
        mapped.reserve(word.size() * 2);
        for (unsigned char b : word) mapped += text::byte_to_unicode(b);
        bpe_word(mapped, ids);
    } else {
        bpe_word(std::string(word), ids);
    }
    out.insert(out.end(), ids.begin(), ids.end());
    // Long words (Gemma has no pre-tokenizer split: a whole paragraph is one word) would only
    // fill the cache.
    if (word.size() > 256) return;
    if (cache.size() > 200000) cache.clear();
    cache.emplace(std::string(word), std::move(ids));
}

void BpeTokenizer::encode_segment(std::string_view seg, bool first_segment, std::vector<int>& out,
                                  WordCache& cache) const {
    std::string s(seg);
    for (const auto& n : normalizers_) s = n->apply(std::move(s));
    if (fast_split_) {
        const std::string_view sv(s);
        std::size_t last = 0;
        pre_[0]->regex->for_each_match(sv, [&](std::size_t b, std::size_t e) {
            if (b > last) encode_word(sv.substr(last, b - last), fast_byte_level_, out, cache);
            encode_word(sv.substr(b, e - b), fast_byte_level_, out, cache);
            last = e;
        });
        if (last < sv.size()) encode_word(sv.substr(last), fast_byte_level_, out, cache);
        return;
    }
    std::vector<std::string> words{std::move(s)}, next;
    for (const auto& p : pre_) {
        next.clear();
        p->apply(words, next, first_segment);
        words.swap(next);
    }
    for (const auto& w : words) encode_word(w, false, out, cache);
}

std::vector<int> BpeTokenizer::encode_text(std::string_view text, bool add_special_tokens) const {
    std::vector<int> body;
    std::vector<text::AddedTokenSplitter::Piece> pieces;
    splitter_.split(text, pieces);
    {
        std::lock_guard<std::mutex> lock(cache_mutex_);
        bool first = true;
        for (const auto& p : pieces) {
            if (p.token >= 0) body.push_back(p.token);
            else encode_segment(p.text, first, body, cache_);
            first = false;
        }
    }
    if (!add_special_tokens) return body;
    return add_special(std::move(body));
}

std::vector<int> BpeTokenizer::add_special(std::vector<int> body) const {
    std::vector<int> out;
    if (template_.empty()) {
        out = std::move(body);
    } else {
        for (int t : template_) {
            if (t < 0) out.insert(out.end(), body.begin(), body.end());
            else out.push_back(t);
        }
    }
    // tokenizer_config.json's add_bos_token/add_eos_token rebuild the post-processor in
    // transformers' Llama/Gemma fast tokenizers.
    if (config_add_bos_ && special_.bos) {
        const bool has = !out.empty() && out.front() == *special_.bos && (template_.empty() || template_.front() >= 0);
        if (*config_add_bos_ && !has) out.insert(out.begin(), *special_.bos);
        if (!*config_add_bos_ && has) out.erase(out.begin());
    }
    if (config_add_eos_ && *config_add_eos_ && !special_.eos.empty()) {
        if (template_.empty() || template_.back() < 0) out.push_back(special_.eos.front());
    }
    return out;
}

// ---- decoding -----------------------------------------------------------------------------

std::string BpeTokenizer::decode(std::span<const int> ids, bool skip_special) const {
    std::vector<std::string> tokens;
    tokens.reserve(ids.size());
    for (int id : ids) {
        if (id < 0 || id >= static_cast<int>(pieces_.size())) continue;
        if (skip_special && is_special(id)) continue;
        tokens.push_back(pieces_[id]);
    }
    for (const auto& d : decoders_) d->apply(tokens);
    std::string out;
    for (const auto& t : tokens) out += t;
    return out;
}

std::string BpeTokenizer::piece(int id) const {
    if (id < 0 || id >= static_cast<int>(pieces_.size())) return {};
    return pieces_[id];
}

std::optional<int> BpeTokenizer::piece_to_id(std::string_view piece) const {
    for (const auto& t : added_)
        if (t.content == piece) return t.id;
    auto it = vocab_.find(std::string(piece));
    if (it == vocab_.end()) return std::nullopt;
    return it->second;
}

}  // namespace wp
