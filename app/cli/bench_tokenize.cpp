// windowpane-cli bench-tokenize: tokenizer load time and encode throughput on a few MB of
// generated mixed text (prose, code, numbers, accents, CJK, emoji), single-threaded.
#include "bench_tokenize.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "wp/tokenizer/tokenizer.h"

namespace wp::cli {

namespace {

// Deterministic mixed text: mostly English-like prose (the common case), with code, numbers and
// about 10% non-ASCII words.
std::string mixed_text(std::size_t bytes, std::uint64_t seed) {
    static const char* syllables[] = {"the", "an", "in", "ter", "con", "pro", "ex", "ing", "tion", "al",
                                      "er", "re", "de", "com", "ly", "ment", "ous", "ful", "ness", "is",
                                      "and", "of", "to", "a", "it", "was", "be", "for", "on", "that"};
    static const char* others[] = {"caf\xc3\xa9", "na\xc3\xafve", "\u00fcber", "se\xc3\xb1or", "\xce\xb1\xce\xb2\xce\xb3",
                                   "\xd0\xbf\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82", "\xe4\xbd\xa0\xe5\xa5\xbd\xe4\xb8\x96\xe7\x95\x8c",
                                   "\xe3\x81\x93\xe3\x82\x93\xe3\x81\xab\xe3\x81\xa1\xe3\x81\xaf", "\xf0\x9f\x98\x80", "\xed\x95\x9c\xea\xb5\xad\xec\x96\xb4"};
    static const char* code[] = {"for (int i = 0; i < n; ++i) {\n    sum += x[i];\n}\n",
                                 "def f(x):\n    return x ** 2  # square\n",
                                 "if err != nil {\n\treturn err\n}\n", "{\"key\": [1, 2, 3], \"ok\": true}\n"};
    std::mt19937_64 rng(seed);
    std::string s;
    s.reserve(bytes + 128);
    bool sentence_start = true;
    while (s.size() < bytes) {
        const unsigned r = static_cast<unsigned>(rng() % 100);
        if (r < 2) {
            s += code[rng() % std::size(code)];
            sentence_start = true;
            continue;
        }
        std::string w;
        if (r < 12) {
            w = others[rng() % std::size(others)];
        } else if (r < 16) {
            w = std::to_string(rng() % 100000);
        } else {
            const int n = 1 + static_cast<int>(rng() % 3);
            for (int k = 0; k < n; ++k) w += syllables[rng() % std::size(syllables)];
            if (sentence_start) w[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(w[0])));
        }
        s += w;
        sentence_start = false;
        const unsigned p = static_cast<unsigned>(rng() % 100);
        if (p < 6) {
            s += ". ";
            sentence_start = true;
        } else if (p < 9) {
            s += ", ";
        } else if (p < 10) {
            s += ".\n\n";
            sentence_start = true;
        } else {
            s += ' ';
        }
    }
    return s;
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

}  // namespace

int bench_tokenize(const std::string& dir, double megabytes, int repeat) {
    using clock = std::chrono::steady_clock;
    const auto t0 = clock::now();
    const auto tok = Tokenizer::load(dir);
    const double load_s = std::chrono::duration<double>(clock::now() - t0).count();
    const std::string text = mixed_text(static_cast<std::size_t>(megabytes * 1e6), 42);
    std::vector<double> rates;
    std::size_t n_tokens = 0;
    for (int r = 0; r < std::max(1, repeat); ++r) {
        const auto a = clock::now();
        n_tokens = tok->encode(text, false).size();
        const double s = std::chrono::duration<double>(clock::now() - a).count();
        rates.push_back(text.size() / 1e6 / s);
    }
    std::printf("tokenizer      %s\n", tok->describe().c_str());
    std::printf("load           %.3f s\n", load_s);
    std::printf("text           %.2f MB of mixed text, %zu tokens (%.2f bytes/token)\n", text.size() / 1e6, n_tokens,
                static_cast<double>(text.size()) / std::max<std::size_t>(n_tokens, 1));
    std::printf("encode         first run %.1f MB/s, median of %d runs %.1f MB/s (min %.1f, max %.1f), 1 thread\n",
                rates.front(), static_cast<int>(rates.size()), median(rates),
                *std::min_element(rates.begin(), rates.end()), *std::max_element(rates.begin(), rates.end()));
    return 0;
}

}  // namespace wp::cli
