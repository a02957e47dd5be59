// Text commands: tokenize, detokenize and chat-render, with a folder that may hold only tokenizer
// (and chat template) files.
#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "command.h"
#include "model_argument.h"
#include "standard_input.h"
#include "wp/chat/chat_template.h"
#include "wp/error.h"
#include "wp/io/json_file.h"
#include "wp/model/model_config.h"
#include "wp/tokenizer/tokenizer.h"

namespace wp::cli {

namespace {

int run_tokenize(const Args& a) {
    const std::string dir = model_dir(a);
    const bool no_special = a.flag("no-special");
    const bool as_json = a.flag("json");
    if (a.positional().size() != 1) throw UsageError("tokenize needs one TEXT argument (or - to read stdin)");
    const std::string text = a.positional()[0] == "-" ? read_standard_input() : a.positional()[0];
    const auto tok = Tokenizer::load(dir);
    const std::vector<int> ids = tok->encode(text, !no_special);
    if (as_json) {
        nlohmann::json j;
        j["ids"] = ids;
        j["pieces"] = nlohmann::json::array();
        for (int id : ids) j["pieces"].push_back(tok->piece(id));
        std::printf("%s\n", j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    } else {
        std::string out;
        for (int id : ids) out += (out.empty() ? "" : ",") + std::to_string(id);
        std::printf("%s\n", out.c_str());
    }
    return 0;
}

int run_detokenize(const Args& a) {
    const std::string dir = model_dir(a);
    const bool skip = a.flag("skip-special");
    if (a.positional().size() != 1) throw UsageError("detokenize needs the token ids, e.g. 2,17,5");
    const std::vector<int> ids = parse_ids(a.positional()[0]);
    const auto tok = Tokenizer::load(dir);
    for (int id : ids)
        if (id >= tok->vocab_size())
            throw Error("token id " + std::to_string(id) + " is outside the tokenizer's vocabulary (0.." +
                        std::to_string(tok->vocab_size() - 1) + ")");
    const std::string text = tok->decode(ids, skip);
    std::fwrite(text.data(), 1, text.size(), stdout);
    return 0;
}

int run_chat_render(const Args& a) {
    const std::filesystem::path dir = model_dir(a);
    const std::string file = a.str("messages");
    const bool gen = a.flag("add-generation-prompt");
    const nlohmann::ordered_json doc =
        file == "-" ? parse_json(read_standard_input(), "standard input") : parse_json_file(file);
    nlohmann::ordered_json ctx = ChatTemplate::special_tokens_context(dir);
    if (doc.is_array()) {
        ctx["messages"] = doc;
    } else if (doc.is_object() && doc.contains("messages")) {
        ctx["messages"] = doc["messages"];
        if (doc.contains("tools")) ctx["tools"] = doc["tools"];
    } else {
        throw Error(file + ": expected a list of messages or an object with \"messages\"");
    }
    if (!ctx.contains("tools")) ctx["tools"] = nullptr;
    ctx["documents"] = nullptr;
    ctx["add_generation_prompt"] = gen;
    std::string out;
    try {
        // A syntax error is a template error as much as a failed render (status 3).
        std::optional<ChatTemplate> tmpl = ChatTemplate::from_folder(dir);
        if (!tmpl) {
            if (!is_gguf_file(dir) && !std::filesystem::exists(dir / "config.json"))
                throw Error(dir.string() + ": no chat template (chat_template.jinja or tokenizer_config.json) and "
                                           "no config.json to pick a built-in one");
            tmpl = ChatTemplate::builtin(ModelConfig::load(dir).family);  // a folder that ships none
        }
        out = tmpl->render(ctx);
    } catch (const TemplateError& e) {
        throw TemplateFailure(e.what());
    }
    std::fwrite(out.data(), 1, out.size(), stdout);
    return 0;
}

}  // namespace

const CommandGroup& text_commands() {
    static const CommandGroup group{
        "Tokenizer commands (DIR may hold only tokenizer files)",
        {
            {"tokenize", "Token ids (or ids and pieces as JSON) of a text",
             {"--model PATH [--no-special] [--json] TEXT|-"},
             "Token ids (comma-separated), or {\"ids\": [...], \"pieces\": [...]} with --json.\n"
             "- reads the text from standard input, byte for byte. --no-special: without the special\n"
             "tokens the tokenizer adds (such as <bos>).\n",
             {{"no-special", "json"}, {"model"}, 1},
             run_tokenize},
            {"detokenize", "The text of token ids", {"--model PATH [--skip-special] 1,2,3"},
             "The text, exactly, with no newline added. --skip-special leaves out special tokens.\n",
             {{"skip-special"}, {"model"}, 1},
             run_detokenize},
            {"chat-render", "The prompt a chat template renders from messages",
             {"--model PATH --messages FILE.json [--add-generation-prompt]"},
             "The prompt the chat template renders (FILE: a list of {\"role\", \"content\"}, or\n"
             "{\"messages\": [...], \"tools\": [...]}; - reads it from standard input). Without a\n"
             "template in DIR, the family's built-in one. A template error exits with status 3.\n",
             {{"add-generation-prompt"}, {"model", "messages"}},
             run_chat_render},
        }};
    return group;
}

}  // namespace wp::cli
