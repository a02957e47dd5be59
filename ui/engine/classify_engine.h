// The Classify tab's engine work, run by InferenceWorker on its thread: core's task-head calls
// (task_heads.h, entities.h, question_answering.h) turned into the plain values of
// classify_types.h, with core's UTF-8 byte spans turned into QString offsets.
#pragma once

#include <string_view>
#include <vector>

#include "engine/classify_types.h"

namespace wp {
class LoadedModel;
}

namespace wp::ui {

// For each byte offset 0..s.size() of the UTF-8 text `s`, the UTF-16 offset of the same place in
// QString::fromStdString(s); a byte inside a character maps to where that character starts.
std::vector<int> utf16Offsets(std::string_view s);

// Sequence or token classification of `text` with `lm`'s head. Throws wp::Error with a message
// for the user (a causal LM or QA model, no tokens, too many tokens).
ClassifyResult classifyText(const LoadedModel& lm, const QString& text);

// The `topK` best answers to `question` in `context`. Throws wp::Error likewise.
AnswerResult answerQuestion(const LoadedModel& lm, const QString& question, const QString& context, int topK);

}  // namespace wp::ui
