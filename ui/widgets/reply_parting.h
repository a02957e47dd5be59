// Where two greedy replies part: models with one vocabulary, given the same prompt and choosing the
// most probable token each time, write the same tokens until their first different choice. The
// compare view marks that token in each pane and shows how probable each model found both choices.
#pragma once

#include <QList>
#include <QString>
#include <QVector>

#include "engine/types.h"

class QTextDocument;

namespace wp::ui {

// One token of a streamed reply and where its text lies in the reply's QTextDocument (positions
// in the document, which keeps "\r\n" as one character; empty for an end-of-turn token or a byte
// inside a character, whose text comes with the next token).
struct ReplyToken {
    int id = 0;
    QString piece;  // as the token list shows it (a special token by its name)
    float probability = 0;
    QList<TokenAlternativeInfo> top;  // most probable first, with ids
    int begin = 0, end = 0;
};

// The first index where the two replies' token ids differ, within what both have so far; -1
// when they agree there. `agreed`, when given: how many first tokens are known to agree already
// (the comparison resumes there, so a streamed reply is not compared from its start for every
// token), and on return how many do (the parting's index when they part).
int firstParting(const QVector<ReplyToken>& a, const QVector<ReplyToken>& b, int* agreed = nullptr);

// How probable the model that wrote `t` found token `id` at that step: its own token's
// probability, or the alternative's when `id` is among its top tokens; -1 when it is not.
float probabilityOf(const ReplyToken& t, int id);

// The banner line of a pane whose token `mine` parts, at `index`, from the other pane's `theirs`
// ("pane 2", "its model, q4").
QString partingHtml(const QString& otherPane, const QString& otherModel, int index, const ReplyToken& mine,
                    const ReplyToken& theirs);

// Marks tokens `indices` of a reply (each its own text, or the next token's with text) in `doc`,
// and clears an earlier mark.
void markPartings(QTextDocument* doc, const QVector<ReplyToken>& tokens, const QVector<int>& indices);

}  // namespace wp::ui
