#include "wp/tokenizer/streaming_decoder.h"

#include <algorithm>

namespace wp {

namespace {

// True when the decoded text ends in U+FFFD: an incomplete character whose bytes are still coming.
bool ends_incomplete(const std::string& s) {
    return s.size() >= 3 && s.compare(s.size() - 3, 3, "\xef\xbf\xbd") == 0;
}

}  // namespace

std::string StreamingDecoder::push(int id) {
    window_.push_back(id);
    std::string full = tok_.decode(window_, skip_);
    // Hold back while the tail is an incomplete character (at most 4 byte tokens long).
    if (ends_incomplete(full) && window_.size() - shown_ < 4) return {};
    if (full.size() < shown_text_.size() || full.compare(0, shown_text_.size(), shown_text_) != 0) {
        // The context decoded differently with the new token; show the new token's own text.
        full = shown_text_ + tok_.decode(std::span<const int>(window_).subspan(shown_), skip_);
    }
    std::string out = full.substr(shown_text_.size());
    keep_context();
    return out;
}

// Keeps the fewest trailing tokens that decode cleanly on their own as context for the next
// token: leading-space rules depend on it, and a byte token alone would decode as U+FFFD (and
// byte fallback turns a whole run of byte tokens into U+FFFD when any of them is cut off).
void StreamingDecoder::keep_context() {
    const std::size_t max_k = std::min<std::size_t>(4, window_.size());
    for (std::size_t k = 1; k <= max_k; ++k) {
        std::vector<int> tail(window_.end() - static_cast<std::ptrdiff_t>(k), window_.end());
        std::string text = tok_.decode(tail, skip_);
        if (text.find("\xef\xbf\xbd") == std::string::npos) {
            window_ = std::move(tail);
            shown_ = k;
            shown_text_ = std::move(text);
            return;
        }
    }
    window_.clear();
    shown_ = 0;
    shown_text_.clear();
}

std::string StreamingDecoder::flush() {
    if (window_.size() <= shown_) return {};
    const std::string full = tok_.decode(window_, skip_);
    std::string out = full.size() > shown_text_.size() ? full.substr(shown_text_.size()) : std::string();
    keep_context();
    return out;
}

void StreamingDecoder::reset() {
    window_.clear();
    shown_ = 0;
    shown_text_.clear();
}

}  // namespace wp
