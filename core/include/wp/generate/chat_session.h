// Text in, text out: a model folder loaded with its tokenizer and chat template, and a chat
// session that renders a conversation, reuses the KV cache for the prefix it already holds, and
// streams the reply as text.
#pragma once

#include <filesystem>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "wp/chat/chat_template.h"
#include "wp/generate/generator.h"
#include "wp/model/model.h"
#include "wp/tokenizer/tokenizer.h"

namespace wp {

struct ChatMessage {
    std::string role;  // "system", "user", "assistant"
    std::string content;
};

class LoadedModel {
public:
    // Model, tokenizer and chat template of a folder (the family's built-in template when the
    // folder has none), task-head models too (a reward model renders conversations with the
    // template; ChatSession and generate take causal LMs only). Throws wp::Error.
    static std::unique_ptr<LoadedModel> load(const std::filesystem::path& dir,
                                             const std::function<void(double)>& progress = {},
                                             const LoadOptions& options = {});

    const Model& model() const { return *model_; }
    const Tokenizer& tokenizer() const { return *tokenizer_; }
    const ChatTemplate& chat_template() const { return *template_; }
    bool builtin_template() const { return builtin_template_; }

    // The prompt for `messages` (throws wp::TemplateError when the template rejects them).
    std::string render(const std::vector<ChatMessage>& messages, bool add_generation_prompt) const;
    // Whether the template accepts a system message (Gemma's does not); `why` gets its message.
    bool supports_system_role(std::string* why = nullptr) const;
    // Token ids that end a reply: the model's eos ids, the tokenizer's eos and end-of-turn marker.
    const std::vector<int>& stop_ids() const { return stop_ids_; }

private:
    std::unique_ptr<Model> model_;
    std::unique_ptr<Tokenizer> tokenizer_;
    std::unique_ptr<ChatTemplate> template_;
    bool builtin_template_ = false;
    nlohmann::ordered_json context_;
    std::vector<int> stop_ids_;
};

struct Reply {
    std::string text;
    GenerateResult result;
    int reused_tokens = 0;  // prompt tokens whose K/V came from the cache
};

// Called with each piece of reply text as it becomes complete, and the token that completed it.
using TextCallback = std::function<bool(const std::string& text, const GeneratedToken& token)>;

class ChatSession {
public:
    explicit ChatSession(const LoadedModel& lm);
    ChatSession(const LoadedModel& lm, CacheKind kind, std::int64_t max_len = 0);

    // Renders `conversation` with the generation prompt and generates the assistant's reply.
    Reply reply(const std::vector<ChatMessage>& conversation, GenerateOptions opts, const TextCallback& on_text = {});
    // Continues raw text (no chat template; the tokenizer adds its special tokens, e.g. <bos>).
    Reply complete(const std::string& text, GenerateOptions opts, const TextCallback& on_text = {});
    // Generates after exactly these prompt tokens.
    Reply run(const std::vector<int>& prompt, GenerateOptions opts, const TextCallback& on_text = {});

    void reset();
    const Context& context() const { return *ctx_; }
    const std::vector<int>& cached_tokens() const { return cached_; }

private:
    const LoadedModel& lm_;
    std::unique_ptr<Context> ctx_;
    std::vector<int> cached_;  // tokens whose K/V the cache holds, in order
};

}  // namespace wp
