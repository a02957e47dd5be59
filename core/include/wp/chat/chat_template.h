// Hugging Face chat templates: a sandboxed Jinja interpreter that renders a conversation exactly as
// transformers' `apply_chat_template` does (jinja2 ImmutableSandboxedEnvironment with trim_blocks,
// lstrip_blocks and loop controls; globals raise_exception and strftime_now; tojson as
// json.dumps(ensure_ascii=False)).
#pragma once

#include <cstddef>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "wp/error.h"
#include "wp/model/model_config.h"

namespace wp {

// A template error: syntax errors (with line and column), runtime errors (with the line) and
// raise_exception(message), whose what() is exactly the message the template passed.
class TemplateError : public Error {
public:
    using Error::Error;
};

// Bounds on one render, so that a hostile or broken template fails with a TemplateError instead of
// hanging or exhausting memory. The defaults are far above what any real chat template needs.
struct TemplateLimits {
    std::size_t max_output_bytes = std::size_t{4} << 20;  // the rendered text, and any one string value
    std::size_t max_loop_iterations = 100'000;            // loop iterations plus macro calls, whole render
    // Evaluation steps, roughly one per expression evaluated, item touched or character processed;
    // rendering a 4 MB conversation takes some 10 million.
    std::size_t max_steps = 50'000'000;
    int max_call_depth = 40;  // nested macro calls (recursion)
    // Lists, dicts and strings the template creates, in bytes, counted as they are made and summed
    // over the render (shared values cannot be followed to their release).
    std::size_t max_value_bytes = std::size_t{64} << 20;
};

class ChatTemplate {
public:
    // Parses; throws TemplateError on a syntax error.
    explicit ChatTemplate(std::string source);

    // Renders with `context`, a JSON object such as {"messages": [...], "add_generation_prompt": true,
    // "bos_token": "<bos>", ...} (null counts as empty). Throws TemplateError. Thread-safe.
    // Object key order matters to `tojson`: build the context as ordered_json (a nlohmann::json
    // converts implicitly, but has already sorted its keys).
    std::string render(const nlohmann::ordered_json& context, const TemplateLimits& limits = {}) const;

    const std::string& source() const { return source_; }

    // The template of a model folder with transformers' precedence: `chat_template.jinja` if
    // present, else tokenizer_config.json "chat_template" (a string, or a list of {"name",
    // "template"} of which the one named "default" is used). std::nullopt when the folder has none.
    // Throws wp::Error for unreadable files and TemplateError (naming the file) for a bad template.
    // A .gguf file instead of a folder: its tokenizer.chat_template.
    static std::optional<ChatTemplate> from_folder(const std::filesystem::path& dir);

    // The built-in template of a model family, for folders without one: Gemma's instruct template
    // for gemma and gemma2, ChatML with Qwen2-Instruct's default system prompt for qwen2.
    static ChatTemplate builtin(Family family);

    // The special-token part of the context transformers renders with: bos_token, eos_token,
    // unk_token, sep_token, pad_token, cls_token, mask_token (strings; AddedToken objects give their
    // "content"; absent, null or empty entries stay undefined) and additional_special_tokens, from
    // tokenizer_config.json; for older configs without added_tokens_decoder, special_tokens_map.json
    // overrides them, as from_pretrained does. For a .gguf file: the texts of the tokens its
    // tokenizer.ggml.*_token_id keys name. Add messages, add_generation_prompt, tools, ...
    // yourself. Throws wp::Error on malformed files.
    static nlohmann::ordered_json special_tokens_context(const std::filesystem::path& dir);

private:
    class Compiled;  // the parsed template (the interpreter is internal to core)
    std::string source_;
    std::shared_ptr<const Compiled> compiled_;
};

}  // namespace wp
