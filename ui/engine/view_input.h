// What the attention tab's views run the model over: a text (encoded with the tokenizer's special
// tokens) or, when the text is empty, the conversation as the model's chat template renders it.
// Shared by the logit lens and the head summary, on the worker's thread.
#pragma once

#include <QList>
#include <QString>
#include <QStringList>
#include <span>
#include <vector>

#include "engine/types.h"

namespace wp {
class LoadedModel;
class Tokenizer;
}  // namespace wp

namespace wp::ui {

// The token ids; throws wp::Error with a message for the user (no conversation, no tokens, more
// tokens than the model's context).
std::vector<int> encodeViewInput(const LoadedModel& lm, const QString& text, const QList<ChatTurn>& conversation);

// One label per token: its piece as the tokenizer decodes it alone.
QStringList tokenPieces(const Tokenizer& tok, std::span<const int> ids);

}  // namespace wp::ui
