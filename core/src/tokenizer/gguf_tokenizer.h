// The tokenizer and chat-template metadata of a GGUF file (llama.cpp's tokenizer.ggml.* keys), as
// a wp::Tokenizer that encodes as the Hugging Face tokenizer of the same model (internal header).
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "io/gguf.h"
#include "wp/chat/chat_template.h"
#include "wp/tokenizer/tokenizer.h"

namespace wp {

// tokenizer.ggml.model "llama" (SentencePiece BPE: tokens, scores, token types) or "gpt2"
// (byte-level BPE: tokens, token types, merges, and the pre-tokenizer named by
// tokenizer.ggml.pre). Control (3) and user-defined (4) tokens are matched in text as transformers
// matches added tokens; control ones are special. Throws wp::Error naming the file and the key.
// The tokenizer keeps copies: `gguf` may be closed afterwards.
std::unique_ptr<Tokenizer> load_gguf_tokenizer(const GgufFile& gguf);

// tokenizer.chat_template; std::nullopt when the file has none.
std::optional<std::string> gguf_chat_template(const GgufFile& gguf);
// The same, parsed (a TemplateError names the file).
std::optional<ChatTemplate> gguf_parsed_chat_template(const GgufFile& gguf);

// bos_token, eos_token, unk_token, sep_token, pad_token, cls_token, mask_token as the texts of the
// tokens the file's *_token_id keys name (ChatTemplate::special_tokens_context for a GGUF file).
nlohmann::ordered_json gguf_special_tokens_context(const GgufFile& gguf);

}  // namespace wp
