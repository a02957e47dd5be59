#include "wp/tokenizer/tokenizer.h"

#include <fstream>
#include <nlohmann/json.hpp>
#include <sentencepiece_processor.h>
#include <sstream>
#include <unordered_set>

#include "bpe_tokenizer.h"
#include "io/gguf.h"
#include "wp/model/model_config.h"
#include "tokenizer/gguf_tokenizer.h"
#include "tokenizer/sentencepiece_tokenizer.h"
#include "tokenizer/text_util.h"
#include "wp/error.h"
#include "io/json_error.h"
#include "wp/io/file_util.h"
#include "wp/io/json_file.h"

namespace wp {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

// A special-token entry of tokenizer_config.json: a string or an AddedToken object.
std::string token_text(const json& v) {
    if (v.is_string()) return v.get<std::string>();
    if (v.is_object() && v.contains("content") && v["content"].is_string()) return v["content"].get<std::string>();
    return {};
}

}  // namespace

std::vector<int> Tokenizer::encode(std::string_view text, bool add_special_tokens) const {
    const std::size_t limit = max_encode_bytes();
    if (text.size() > limit) {
        throw Error("the text is " + std::to_string(text.size()) + " bytes; this tokenizer encodes at most " +
                    std::to_string(limit >> 20) + " MB (" + std::to_string(limit) + " bytes) at once");
    }
    return encode_text(text, add_special_tokens);
}

bool Tokenizer::is_special(int id) const {
    for (const auto& t : added_)
        if (t.id == id) return t.special;
    return false;
}

void Tokenizer::finish_setup(const fs::path& dir) {
    const fs::path cfg_path = dir / "tokenizer_config.json";
    json cfg = json::object();
    if (fs::exists(cfg_path)) {
        cfg = parse_json<json>(read_text_file(cfg_path), "tokenizer_config.json");
        if (!cfg.is_object()) throw Error("tokenizer_config.json: expected a JSON object");
    }
    if (cfg.contains("add_bos_token") && cfg["add_bos_token"].is_boolean()) config_add_bos_ = cfg["add_bos_token"].get<bool>();
    if (cfg.contains("add_eos_token") && cfg["add_eos_token"].is_boolean()) config_add_eos_ = cfg["add_eos_token"].get<bool>();
    if (cfg.contains("added_tokens_decoder") && cfg["added_tokens_decoder"].is_object()) {
        std::unordered_set<int> known;
        for (const auto& a : added_) known.insert(a.id);
        for (auto it = cfg["added_tokens_decoder"].begin(); it != cfg["added_tokens_decoder"].end(); ++it) {
            const std::string where = "tokenizer_config.json: added_tokens_decoder \"" + it.key() + "\"";
            // Ids within the largest vocabulary config.json allows (2^22): at most 7 digits, no sign.
            const std::string& key = it.key();
            if (key.empty() || key.size() > 7 || key.find_first_not_of("0123456789") != std::string::npos ||
                std::stoi(key) >= (1 << 22))
                throw Error(where + " is not a token id (0.." + std::to_string((1 << 22) - 1) + ")");
            const json& v = *it;
            if (!v.is_object()) throw Error(where + " must be an object");
            AddedToken t;
            t.id = std::stoi(key);
            t.content = token_text(v);
            if (t.content.empty()) continue;
            const auto flag = [&](const char* name) {
                if (!v.contains(name) || v[name].is_null()) return false;
                if (!v[name].is_boolean()) throw Error(where + ": " + name + " must be true or false");
                return v[name].get<bool>();
            };
            t.special = flag("special");
            t.lstrip = flag("lstrip");
            t.rstrip = flag("rstrip");
            t.single_word = flag("single_word");
            t.normalized = flag("normalized");
            if (known.insert(t.id).second) added_.push_back(t);
        }
    }
    added_tokens_changed();

    auto resolve = [&](const char* key, std::string& text_out) -> std::optional<int> {
        if (!cfg.contains(key)) return std::nullopt;
        text_out = token_text(cfg[key]);
        if (text_out.empty()) return std::nullopt;
        return piece_to_id(text_out);
    };
    if (auto id = resolve("bos_token", special_.bos_text)) special_.bos = id;
    if (auto id = resolve("eos_token", special_.eos_text)) special_.eos = {*id};
    if (auto id = resolve("pad_token", special_.pad_text)) special_.pad = id;
    if (auto id = resolve("unk_token", special_.unk_text)) special_.unk = id;
    for (const char* s : {"<start_of_turn>", "<|im_start|>"})
        if (auto id = piece_to_id(s); id && !special_.turn_start) special_.turn_start = id;
    for (const char* s : {"<end_of_turn>", "<|im_end|>"})
        if (auto id = piece_to_id(s); id && !special_.turn_end) special_.turn_end = id;
}

std::unique_ptr<Tokenizer> Tokenizer::load(const fs::path& dir) {
    if (is_gguf_file(dir)) return load_gguf_tokenizer(GgufFile(dir));
    if (!fs::is_directory(dir)) throw Error(dir.string() + ": not a folder");
    if (fs::exists(dir / "tokenizer.json")) {
        std::unique_ptr<BpeTokenizer> t;
        try {
            t = std::make_unique<BpeTokenizer>(dir / "tokenizer.json");
        } catch (const json::exception& e) {
            // A key of the wrong type that the loader reads with a default.
            throw Error("tokenizer.json: a value of the wrong type: " + json_error_text(e));
        }
        t->finish_setup(dir);
        return t;
    }
    if (fs::exists(dir / "tokenizer.model")) {
        // Read here, not by the library, so that a FIFO or an oversized file is refused.
        auto t = std::make_unique<SentencePieceTokenizer>(read_text_file(dir / "tokenizer.model"), "tokenizer.model");
        t->finish_setup(dir);
        if (!fs::exists(dir / "tokenizer_config.json")) t->defaults_without_config();
        return t;
    }
    throw Error(dir.string() + ": no tokenizer.json or tokenizer.model in the folder");
}

}  // namespace wp
