// Looking inside and across models: lens (what each layer's residual stream predicts) and diverge
// (how far two variants part on one text). Core does the work: wp/model/logit_lens.h,
// wp/model/divergence.h.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <numeric>
#include <optional>
#include <string>
#include <unistd.h>
#include <vector>

#include "command.h"
#include "decode_kernels.h"
#include "model_argument.h"
#include "wp/error.h"
#include "wp/hub/hub_cache.h"
#include "wp/hub/hub_paths.h"
#include "wp/io/file_util.h"
#include "wp/model/divergence.h"
#include "wp/model/logit_lens.h"
#include "wp/model/model.h"
#include "wp/tokenizer/tokenizer.h"

namespace wp::cli {

namespace {

using ojson = nlohmann::ordered_json;

std::string resolve(const std::string& ref) {
    try {
        return resolve_model_reference(ref, hub_paths().cache).string();
    } catch (const std::exception&) {
        return ref;  // no cache location (no HOME): only folders and files
    }
}

std::size_t columns(const std::string& s) {
    std::size_t n = 0;
    for (char ch : s) n += (static_cast<unsigned char>(ch) & 0xC0) != 0x80 ? 1 : 0;
    return n;
}

// A token's text for a terminal, padded to `width` columns: decoded (a token that is part of a
// character shows its vocabulary piece, "<0xE2>"), control characters escaped, cut at `width`.
std::string shown(const Tokenizer* tok, int id, std::size_t width) {
    std::string s = tok != nullptr ? tok->decode(std::span<const int>(&id, 1), false) : std::to_string(id);
    if (tok != nullptr && s.find("\xEF\xBF\xBD") != std::string::npos) s = tok->piece(id);
    std::string out;
    for (char ch : s) {
        if (ch == '\n') out += "\\n";
        else if (ch == '\t') out += "\\t";
        else if (static_cast<unsigned char>(ch) < 0x20) out += '?';
        else out += ch;
    }
    std::string cut;
    std::size_t n = 0;
    for (std::size_t i = 0; i < out.size(); ++i) {
        const bool starts = (static_cast<unsigned char>(out[i]) & 0xC0) != 0x80;
        if (starts && n++ == width) break;
        cut += out[i];
    }
    return cut + std::string(width - std::min(width, columns(cut)), ' ');
}

// Progress on a terminal's stderr; nothing when it is redirected.
std::function<void(double)> progress_line(const char* what) {
    if (isatty(STDERR_FILENO) == 0) return {};
    return [what](double f) {
        std::fprintf(stderr, "\r%s %3.0f%%", what, f * 100);
        if (f >= 1) std::fprintf(stderr, "\r\033[K");
        std::fflush(stderr);
    };
}

// --top K, 1..100 (5 when absent).
int top_option(const Args& a) {
    const long long k = a.integer("top", 5);
    if (k < 1 || k > 100) throw UsageError("--top must be between 1 and 100");
    return static_cast<int>(k);
}

std::vector<int> ids_or_text(const Args& a, const Tokenizer* tok, const std::string& text) {
    if (a.has("ids")) return parse_ids(a.str("ids"));
    if (tok == nullptr) throw Error("the model has no tokenizer; give --ids");
    return tok->encode(text, true);
}

// --- lens -------------------------------------------------------------------------------------

int run_lens(const Args& a) {
    if (a.has("ids") == a.has("text")) throw UsageError("give one of --ids and --text");
    const std::string dir = model_dir(a);
    LoadOptions lo;
    if (a.has("precision")) lo.precision = parse_precision(a.str("precision"));
    lo.threads = threads_option(a, 0);
    const auto model = Model::load(dir, {}, with_decode_choice(lo));
    std::unique_ptr<Tokenizer> tok;
    if (a.has("text") || !a.flag("json")) {
        try {
            tok = Tokenizer::load(dir);
        } catch (const Error&) {
            if (a.has("text")) throw;
        }
    }
    const std::vector<int> ids = ids_or_text(a, tok.get(), a.str("text", ""));
    LensOptions o;
    o.top_k = top_option(a);
    o.first = a.integer("first", 0);
    o.count = a.integer("count", -1);
    o.progress = progress_line("lens");
    const LogitLens lens = logit_lens(*model, ids, o);

    if (a.flag("json")) {
        ojson out;
        out["input_ids"] = ids;
        out["layers"] = lens.layers;
        out["first"] = lens.first;
        ojson top_ids = ojson::array(), top_lps = ojson::array(), entropy = ojson::array();
        for (int l = 0; l < lens.layers; ++l) {
            ojson li = ojson::array(), ll = ojson::array(), le = ojson::array();
            for (int t = 0; t < lens.positions; ++t) {
                ojson ci = ojson::array(), cl = ojson::array();
                for (int k = 0; k < lens.top_k; ++k) {
                    ci.push_back(lens.id(l, t, k));
                    cl.push_back(lens.logprob(l, t, k));
                }
                li.push_back(std::move(ci));
                ll.push_back(std::move(cl));
                le.push_back(lens.entropy[lens.cell(l, t)]);
            }
            top_ids.push_back(std::move(li));
            top_lps.push_back(std::move(ll));
            entropy.push_back(std::move(le));
        }
        out["top_ids"] = std::move(top_ids);
        out["top_logprobs"] = std::move(top_lps);
        out["entropy"] = std::move(entropy);
        std::printf("%s\n", out.dump().c_str());
        return 0;
    }
    // One row per position, one column per layer: the top token and its probability.
    std::printf("%5s  %-12s", "pos", "token");
    for (int l = 0; l < lens.layers; ++l) std::printf("  %-19s", (l + 1 == lens.layers ? "output (layer " + std::to_string(l) + ")" : "layer " + std::to_string(l)).c_str());
    std::printf("\n");
    for (int t = 0; t < lens.positions; ++t) {
        const std::int64_t pos = lens.first + t;
        std::printf("%5lld  %s", static_cast<long long>(pos), shown(tok.get(), ids[static_cast<std::size_t>(pos)], 12).c_str());
        for (int l = 0; l < lens.layers; ++l) {
            std::printf("  %s %5.1f%% ", shown(tok.get(), lens.id(l, t, 0), 11).c_str(), std::exp(lens.logprob(l, t, 0)) * 100);
        }
        std::printf("\n");
    }
    return 0;
}

// --- diverge ----------------------------------------------------------------------------------

struct Variant {
    std::string path;
    std::optional<Precision> precision;
};

// --model A [--precision P] --model B [--precision P]: each --precision belongs to the --model before it.
std::vector<Variant> variants(const Args& a) {
    std::vector<Variant> v;
    for (const auto& [name, value] : a.in_order()) {
        if (name == "model") {
            v.push_back({resolve(value), std::nullopt});
        } else if (name == "precision") {
            if (v.empty()) throw UsageError("--precision belongs after the --model it applies to");
            if (v.back().precision) throw UsageError("--precision is given twice for one --model");
            v.back().precision = parse_precision(value);
        }
    }
    if (v.size() != 2) throw UsageError("diverge compares two models: give --model twice");
    return v;
}

ojson summary_json(const DivergenceSummary& s) {
    return {{"tokens", s.tokens},         {"mean_kl", s.mean_kl},   {"mean_kl_error", s.mean_kl_error},
            {"median_kl", s.median_kl},   {"p99_kl", s.p99_kl},     {"max_kl", s.max_kl},
            {"same_top", s.same_top},     {"ppl_a", s.ppl_a},       {"ppl_b", s.ppl_b},
            {"ppl_ratio", s.ppl_ratio}};
}

int run_diverge(const Args& a) {
    if (a.has("ids") == a.has("text")) throw UsageError("give one of --ids and --text FILE");
    const std::vector<Variant> v = variants(a);
    const int threads = threads_option(a, 0);
    std::vector<std::unique_ptr<Model>> models;
    for (const Variant& var : v) {
        // One checkpoint at one precision twice: one load. The same file at two precisions maps
        // one file, whose pages the page cache shares.
        if (models.size() == 1 && var.path == v[0].path && var.precision == v[0].precision) break;
        LoadOptions lo;
        lo.precision = var.precision;
        lo.threads = threads;
        models.push_back(Model::load(var.path, {}, with_decode_choice(lo)));
    }
    const Model& ma = *models.front();
    const Model& mb = *models.back();
    std::unique_ptr<Tokenizer> ta, tb;
    try {
        ta = Tokenizer::load(v[0].path);
        tb = v[1].path == v[0].path ? nullptr : Tokenizer::load(v[1].path);
    } catch (const Error&) {
        if (a.has("text")) throw;  // ids alone need no tokenizer: the vocabulary sizes are checked
        ta.reset();
        tb.reset();
    }
    if (ta && tb) check_same_vocabulary(*ta, *tb);
    const std::vector<int> ids = ids_or_text(a, ta.get(), a.has("text") ? read_text_file(a.str("text")) : "");
    DivergenceOptions o;
    o.top_k = top_option(a);
    o.progress = progress_line("diverge");
    const Divergence d = diverge(ma, mb, ids, o);
    const DivergenceSummary& s = d.summary;

    if (a.flag("json")) {
        ojson out;
        out["model_a"] = {{"path", v[0].path}, {"precision", precision_name(ma.precision())}};
        out["model_b"] = {{"path", v[1].path}, {"precision", precision_name(mb.precision())}};
        out["input_ids"] = ids;
        out["summary"] = summary_json(s);
        ojson rows = ojson::array();
        for (std::size_t t = 0; t < d.positions.size(); ++t) {
            const TokenDivergence& r = d.positions[t];
            const auto slice = [&](const auto& v) {
                return std::vector<typename std::decay_t<decltype(v)>::value_type>(v.begin() + t * d.top_k,
                                                                                  v.begin() + (t + 1) * d.top_k);
            };
            rows.push_back({{"position", t},
                            {"next_token", ids[t + 1]},
                            {"kl", r.kl},
                            {"same_top", r.same_top},
                            {"logprob_a", r.logprob_a},
                            {"logprob_b", r.logprob_b},
                            {"top_ids_a", slice(d.top_ids_a)},
                            {"top_probs_a", slice(d.top_probs_a)},
                            {"top_ids_b", slice(d.top_ids_b)},
                            {"top_probs_b", slice(d.top_probs_b)}});
        }
        out["positions"] = std::move(rows);
        std::printf("%s\n", out.dump().c_str());
        return 0;
    }
    std::printf("A: %s (%s)\nB: %s (%s)\n", v[0].path.c_str(), precision_name(ma.precision()),
                v[1].path.c_str(), precision_name(mb.precision()));
    std::printf("tokens compared    %d\n", s.tokens);
    std::printf("mean KL(A||B)      %.6f ± %.6f nats\n", s.mean_kl, s.mean_kl_error);
    std::printf("median KL          %.6f\n", s.median_kl);
    std::printf("99th pct KL        %.6f\n", s.p99_kl);
    std::printf("max KL             %.6f\n", s.max_kl);
    std::printf("same top token     %.2f %%\n", s.same_top * 100);
    std::printf("PPL(A)             %.4f\nPPL(B)             %.4f\nPPL(B)/PPL(A)      %.4f\n", s.ppl_a, s.ppl_b, s.ppl_ratio);
    // Where they part most.
    std::vector<std::size_t> order(d.positions.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](std::size_t x, std::size_t y) { return d.positions[x].kl > d.positions[y].kl; });
    order.resize(std::min<std::size_t>(order.size(), 10));
    std::printf("\nlargest KL   pos  next token    A's top       B's top\n");
    for (std::size_t t : order) {
        std::printf("%10.6f %5zu  %s %s %s\n", d.positions[t].kl, t, shown(ta.get(), ids[t + 1], 13).c_str(),
                    shown(ta.get(), d.top_ids_a[t * d.top_k], 13).c_str(), shown(ta.get(), d.top_ids_b[t * d.top_k], 13).c_str());
    }
    return 0;
}

}  // namespace

const CommandGroup& inspect_commands() {
    static const CommandGroup group{
        "Looking inside and across models",
        {
            {"lens", "The logit lens: what each layer's residual stream predicts",
             {"--model PATH [--precision P] (--ids 2,17,5 | --text TEXT) [--top K] [--first N] [--count N] [--json]"},
             "For every layer and position, the residual stream after that layer read out as the last\n"
             "layer's is (final norm, lm_head or the tied embedding, the final soft-cap, log-softmax):\n"
             "the top-K tokens (default 5) and the entropy. The last layer is the model's own output.\n"
             "--first/--count: a range of positions (each position costs one lm_head product per layer).\n"
             "--json prints input_ids, layers, first, top_ids [layers][positions][K], top_logprobs\n"
             "(natural log) and entropy (nats); otherwise a table of each cell's top token.\n",
             {{"json"}, {"model", "precision", "ids", "text", "top", "first", "count", "threads"}, 0, {}},
             run_lens},
            {"diverge", "How far two variants of a model part on one text (KL, top-1 agreement, PPL)",
             {"--model A [--precision P] --model B [--precision P] (--text FILE | --ids 2,17,5)\n[--top K] [--json]"},
             "Both models read the same tokens; at every position the next-token distributions are\n"
             "compared: KL(A||B), whether the top tokens agree, each model's log-probability of the\n"
             "actual next token. Prints mean (± its standard error) / median / 99th-percentile / max KL,\n"
             "the share of equal top tokens, each model's perplexity and their ratio, as llama.cpp's\n"
             "perplexity --kl-divergence does, then the ten positions of largest KL. The models must\n"
             "share a tokenizer. The same path twice at two precisions (bf16 against q8) is the usual\n"
             "case. --json adds every position's row with both models' top-K.\n",
             {{"json"}, {"model", "precision", "ids", "text", "top", "threads"}, 0, {"model", "precision"}},
             run_diverge},
        }};
    return group;
}

}  // namespace wp::cli
