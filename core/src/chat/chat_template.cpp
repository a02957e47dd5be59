// ChatTemplate: a model folder's chat template (with transformers' file precedence), built-in
// fallbacks, and the special-token context transformers renders with.
#include "wp/chat/chat_template.h"

#include <algorithm>
#include <string_view>

#include "chat/jinja.h"
#include "io/gguf.h"
#include "tokenizer/gguf_tokenizer.h"
#include "wp/io/file_util.h"
#include "wp/io/json_file.h"

namespace wp {

namespace fs = std::filesystem;
using ordered_json = nlohmann::ordered_json;

namespace {

// The instruct template of google/gemma-7b-it, gemma-1.1-*-it and gemma-2-*-it, verbatim. Its
// '\n' are Jinja string escapes (backslash, n), hence raw literals.
constexpr const char* kGemmaTemplate =
    R"jinja({{ bos_token }}{% if messages[0]['role'] == 'system' %})jinja"
    R"jinja({{ raise_exception('System role not supported') }}{% endif %})jinja"
    R"jinja({% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %})jinja"
    R"jinja({{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }})jinja"
    R"jinja({% endif %}{% if (message['role'] == 'assistant') %}{% set role = 'model' %})jinja"
    R"jinja({% else %}{% set role = message['role'] %}{% endif %})jinja"
    R"jinja({{ '<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}{% endfor %})jinja"
    R"jinja({% if add_generation_prompt %}{{'<start_of_turn>model\n'}}{% endif %})jinja";

// Qwen2-Instruct's template: ChatML with a default system prompt. Its string literals hold real
// newlines (the C++ "\n" below).
constexpr const char* kQwen2Template =
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }}{% endif %}"
    "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

// Unordered: the configs are only looked up by key, and an ordered object's every insert scans it.
nlohmann::json read_json_object(const fs::path& path) {
    nlohmann::json j = parse_json_file<nlohmann::json>(path);
    if (!j.is_object()) throw Error(path.string() + ": expected a JSON object");
    return j;
}

// A special token as written in the configs: a string, or an AddedToken object {"content": ...}.
std::string token_text(const nlohmann::json& v, const fs::path& file, const std::string& key) {
    if (v.is_string()) return v.get<std::string>();
    if (v.is_object() && v.contains("content") && v["content"].is_string()) return v["content"].get<std::string>();
    throw Error(file.string() + ": " + key + " must be a string or an object with a \"content\" string");
}

// Applies one file's special tokens to `ctx`. With `merge_additional`, additional_special_tokens
// are added to those already there instead of replacing them (special_tokens_map.json's legacy rule).
void apply_special_tokens(ordered_json& ctx, const nlohmann::json& j, const fs::path& file, bool merge_additional) {
    for (const char* key :
         {"bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"}) {
        const auto it = j.find(key);
        if (it == j.end()) continue;
        // transformers' special_tokens_map drops unset tokens: null and "" leave the name undefined.
        const std::string text = it->is_null() ? "" : token_text(*it, file, key);
        if (text.empty())
            ctx.erase(key);
        else
            ctx[key] = text;
    }
    const auto it = j.find("additional_special_tokens");
    if (it == j.end() || it->is_null()) return;
    if (!it->is_array()) throw Error(file.string() + ": additional_special_tokens must be a list");
    ordered_json list = merge_additional && ctx.contains("additional_special_tokens") ? ctx["additional_special_tokens"]
                                                                                      : ordered_json::array();
    for (const auto& t : *it) {
        const std::string text = token_text(t, file, "additional_special_tokens");
        if (std::find(list.begin(), list.end(), text) == list.end()) list.push_back(text);
    }
    if (list.empty())
        ctx.erase("additional_special_tokens");
    else
        ctx["additional_special_tokens"] = std::move(list);
}

}  // namespace

class ChatTemplate::Compiled {
public:
    explicit Compiled(std::string_view source) : parsed(source) {}
    const jinja::Template parsed;
};

ChatTemplate::ChatTemplate(std::string source)
    : source_(std::move(source)), compiled_(std::make_shared<const Compiled>(source_)) {}

std::string ChatTemplate::render(const nlohmann::ordered_json& context, const TemplateLimits& limits) const {
    return compiled_->parsed.render(context, limits);
}


std::optional<ChatTemplate> ChatTemplate::from_folder(const fs::path& dir) {
    fs::path file = dir / "chat_template.jinja";
    std::string source;
    if (is_gguf_file(dir)) return gguf_parsed_chat_template(GgufFile(dir));
    if (fs::is_regular_file(file)) {
        source = read_text_file(file);
    } else {
        file = dir / "tokenizer_config.json";
        if (!fs::is_regular_file(file)) return std::nullopt;
        const nlohmann::json config = read_json_object(file);
        const auto it = config.find("chat_template");
        if (it == config.end() || it->is_null()) return std::nullopt;
        if (it->is_string()) {
            source = it->get<std::string>();
        } else if (it->is_array()) {
            // Several named templates, saved as [{"name": ..., "template": ...}]; transformers
            // uses the one named "default" unless told otherwise.
            const auto named = std::find_if(it->begin(), it->end(), [](const nlohmann::json& t) {
                return t.is_object() && t.contains("name") && t["name"] == "default" && t.contains("template") &&
                       t["template"].is_string();
            });
            if (named == it->end())
                throw Error(file.string() + ": chat_template lists named templates but none named \"default\"");
            source = (*named)["template"].get<std::string>();
        } else {
            throw Error(file.string() + ": chat_template must be a string or a list of {\"name\", \"template\"}");
        }
    }
    try {
        return ChatTemplate(std::move(source));
    } catch (const TemplateError& e) {
        throw TemplateError(file.string() + ": " + e.what());
    }
}

ChatTemplate ChatTemplate::builtin(Family family) {
    switch (family) {
        case Family::Gemma:
        case Family::Gemma2: return ChatTemplate(kGemmaTemplate);
        case Family::Qwen2: return ChatTemplate(kQwen2Template);
    }
    throw Error(std::string("no built-in chat template for model family ") + family_name(family));
}

ordered_json ChatTemplate::special_tokens_context(const fs::path& dir) {
    if (is_gguf_file(dir)) return gguf_special_tokens_context(GgufFile(dir));
    ordered_json ctx = ordered_json::object();
    const fs::path config_file = dir / "tokenizer_config.json";
    bool has_added_tokens_decoder = false;
    if (fs::is_regular_file(config_file)) {
        const nlohmann::json config = read_json_object(config_file);
        apply_special_tokens(ctx, config, config_file, false);
        has_added_tokens_decoder = config.contains("added_tokens_decoder");
    }
    // transformers reads special_tokens_map.json only for configs without added_tokens_decoder
    // (older saves); its entries then override the config's.
    const fs::path map_file = dir / "special_tokens_map.json";
    if (!has_added_tokens_decoder && fs::is_regular_file(map_file))
        apply_special_tokens(ctx, read_json_object(map_file), map_file, true);
    return ctx;
}

}  // namespace wp
