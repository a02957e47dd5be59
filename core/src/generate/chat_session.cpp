#include "wp/generate/chat_session.h"

#include <algorithm>

#include "io/gguf.h"
#include "tokenizer/gguf_tokenizer.h"
#include "wp/error.h"
#include "wp/tokenizer/streaming_decoder.h"

namespace wp {

namespace fs = std::filesystem;

std::unique_ptr<LoadedModel> LoadedModel::load(const fs::path& dir, const std::function<void(double)>& progress,
                                               const LoadOptions& options) {
    auto lm = std::make_unique<LoadedModel>();
    lm->model_ = Model::load(dir, progress, options);
    // A GGUF file's tokenizer and template come from the header the model has already read.
    const GgufFile* gguf = lm->model_->gguf();
    lm->tokenizer_ = gguf ? load_gguf_tokenizer(*gguf) : Tokenizer::load(dir);
    const ModelConfig& cfg = lm->model_->config();
    if (lm->tokenizer_->vocab_size() > cfg.vocab_size)
        throw Error("the tokenizer has " + std::to_string(lm->tokenizer_->vocab_size()) +
                    " ids but the model's vocabulary is " + std::to_string(cfg.vocab_size));
    if (auto t = gguf ? gguf_parsed_chat_template(*gguf) : ChatTemplate::from_folder(dir)) {
        lm->template_ = std::make_unique<ChatTemplate>(std::move(*t));
    } else {
        lm->template_ = std::make_unique<ChatTemplate>(ChatTemplate::builtin(cfg.family));
        lm->builtin_template_ = true;
    }
    lm->context_ = gguf ? gguf_special_tokens_context(*gguf) : ChatTemplate::special_tokens_context(dir);
    lm->stop_ids_ = cfg.eos_token_ids;
    auto add = [&](std::optional<int> id) {
        if (id && std::find(lm->stop_ids_.begin(), lm->stop_ids_.end(), *id) == lm->stop_ids_.end())
            lm->stop_ids_.push_back(*id);
    };
    for (int id : lm->tokenizer_->special().eos) add(id);
    add(lm->tokenizer_->special().turn_end);
    return lm;
}

std::string LoadedModel::render(const std::vector<ChatMessage>& messages, bool add_generation_prompt) const {
    nlohmann::ordered_json ctx = context_;
    ctx["messages"] = nlohmann::ordered_json::array();
    for (const auto& m : messages) ctx["messages"].push_back({{"role", m.role}, {"content", m.content}});
    ctx["add_generation_prompt"] = add_generation_prompt;
    return template_->render(ctx);
}

bool LoadedModel::supports_system_role(std::string* why) const {
    try {
        render({{"system", "You are terse."}, {"user", "Hi"}}, true);
        return true;
    } catch (const Error& e) {
        if (why) *why = e.what();
        return false;
    }
}

ChatSession::ChatSession(const LoadedModel& lm) : ChatSession(lm, lm.model().default_cache()) {}

ChatSession::ChatSession(const LoadedModel& lm, CacheKind kind, std::int64_t max_len)
    : lm_(lm), ctx_(lm.model().new_context(kind, max_len)) {
    const ModelConfig& cfg = lm.model().config();
    if (cfg.head != Head::CausalLM)
        throw Error(lm.model().dir().string() + ": " + cfg.architecture + " is a " + head_name(cfg.head) +
                    " model; chat needs a causal language model (ForCausalLM)");
}

void ChatSession::reset() {
    ctx_->cache.clear();
    cached_.clear();
}

Reply ChatSession::reply(const std::vector<ChatMessage>& conversation, GenerateOptions opts, const TextCallback& on_text) {
    const std::string prompt = lm_.render(conversation, true);
    // The template writes <bos> itself, as apply_chat_template(tokenize=True) expects.
    return run(lm_.tokenizer().encode(prompt, false), std::move(opts), on_text);
}

Reply ChatSession::complete(const std::string& text, GenerateOptions opts, const TextCallback& on_text) {
    return run(lm_.tokenizer().encode(text, true), std::move(opts), on_text);
}

Reply ChatSession::run(const std::vector<int>& prompt, GenerateOptions opts, const TextCallback& on_text) {
    if (prompt.empty()) throw Error("the prompt is empty");
    const int context_len = lm_.model().config().max_position_embeddings;
    if (static_cast<int>(prompt.size()) >= context_len)
        throw Error("the conversation needs " + std::to_string(prompt.size()) + " tokens but the model's context holds " +
                    std::to_string(context_len) + "; start a new chat or shorten the conversation");
    if (!opts.eos_ids) opts.eos_ids = lm_.stop_ids();

    // Reuse the cached prefix; at least one prompt token must run to give logits.
    std::size_t keep = 0;
    while (keep < cached_.size() && keep < prompt.size() && cached_[keep] == prompt[keep]) ++keep;
    if (keep == prompt.size()) --keep;
    try {
        ctx_->cache.truncate(static_cast<std::int64_t>(keep));
    } catch (const Error&) {
        ctx_->cache.clear();
        keep = 0;
    }
    cached_.resize(keep);

    Reply reply;
    reply.reused_tokens = static_cast<int>(keep);
    StreamingDecoder decoder(lm_.tokenizer(), true);
    const auto user_cb = opts.on_token;
    opts.penalty_context = std::span<const int>(prompt).first(keep);
    opts.on_token = [&](const GeneratedToken& t) {
        std::string piece = decoder.push(t.id);
        reply.text += piece;
        bool go = true;
        if (on_text && !on_text(piece, t)) go = false;
        if (user_cb && !user_cb(t)) go = false;
        return go;
    };
    try {
        reply.result = generate(lm_.model(), *ctx_, std::span<const int>(prompt).subspan(keep), opts);
    } catch (...) {
        // The cache may hold part of the prompt now; start afresh next time.
        reset();
        throw;
    }
    const std::string tail = decoder.flush();
    if (!tail.empty()) {
        reply.text += tail;
        if (on_text && !reply.result.tokens.empty()) on_text(tail, reply.result.tokens.back());
    }
    reply.result.prompt_tokens = static_cast<int>(prompt.size());
    // The cache holds the prompt and every generated token but the last (never fed back).
    cached_.assign(prompt.begin(), prompt.end());
    const auto& toks = reply.result.tokens;
    for (std::size_t i = 0; i + 1 < toks.size(); ++i) cached_.push_back(toks[i].id);
    if (static_cast<std::int64_t>(cached_.size()) != ctx_->cache.length()) {
        // Cancelled during the prompt: only part of it is cached.
        cached_.resize(static_cast<std::size_t>(std::min<std::int64_t>(ctx_->cache.length(), static_cast<std::int64_t>(cached_.size()))));
    }
    return reply;
}

}  // namespace wp
