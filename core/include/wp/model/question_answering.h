// Extractive question answering as transformers' question-answering pipeline does it: the
// question, then the context, in one sequence; start and end logits masked to the context's
// tokens and each turned into probabilities by softmax; a span scores start[s]·end[e] for
// s ≤ e < s + max_answer_tokens; the best spans come first.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "wp/model/task_heads.h"
#include "wp/tokenizer/token_offsets.h"
#include "wp/tokenizer/tokenizer.h"

namespace wp {

struct Answer {
    double score = 0;
    int start_token = 0, end_token = 0;  // inclusive, indices into QuestionAnswering::ids
    ByteSpan span;                       // in the context, without surrounding spaces
    std::string text;
};

struct QuestionAnswering {
    std::vector<int> ids;   // the question's encoding (with special tokens), then the context's
    int context_begin = 0;  // the context's first token
    QuestionAnsweringLogits logits;
    std::vector<Answer> answers;  // best first, at most top_k
};

// Throws wp::Error when the model is not a question-answering model, the context is empty, or
// the two together exceed the model's positions.
QuestionAnswering answer_question(const Model& model, const Tokenizer& tok, std::string_view question,
                                  std::string_view context, int top_k = 1, int max_answer_tokens = 30);

}  // namespace wp
