// What the Classify tab gets from the worker for a task-head model (ModelCard::head): plain
// values with every position already in QString (UTF-16) offsets of the text the tab shows, so
// no widget ever handles UTF-8 bytes.
#pragma once

#include <QList>
#include <QMetaType>
#include <QString>
#include <QStringList>
#include <QVector>

namespace wp::ui {

// One token of a token classification: where it lies in the text and its label probabilities.
struct TokenLabels {
    QString piece;                 // the token as the tokenizer decodes it alone
    int begin = 0, end = 0;        // in ClassifyResult::text; empty for special tokens
    QVector<float> probabilities;  // softmax over ClassifyResult::labels
    int best = 0;                  // the arg-max label
};

// An entity as transformers' "simple" aggregation groups the tokens (wp::group_entities).
struct EntityInfo {
    QString group;  // the label without its B-/I- prefix
    double score = 0;
    int begin = 0, end = 0;  // in ClassifyResult::text
    QString text;
    int firstToken = 0, lastToken = 0;
};

struct ClassifyResult {
    enum class Kind { Sequence, Tokens };
    Kind kind = Kind::Sequence;
    QString text;        // what was classified, as the offsets count it
    QStringList labels;  // id2label in id order
    int tokens = 0;      // the encoding's length, special tokens included

    // Sequence classification: the raw logits, and the scores shown: the softmax over the labels,
    // or with one label (a reward model) the sigmoid of its logit.
    QVector<double> logits;
    QVector<double> scores;
    int best = 0;
    int pooledIndex = 0;  // the token whose hidden state the head read

    // Token classification.
    QVector<TokenLabels> tokenLabels;
    QVector<EntityInfo> entities;
};

struct AnswerInfo {
    double score = 0;
    int begin = 0, end = 0;  // in AnswerResult::context
    QString text;
    int startToken = 0, endToken = 0;
};

struct AnswerResult {
    QString question;
    QString context;  // as the offsets count it
    int tokens = 0;   // question and context together
    QVector<AnswerInfo> answers;  // best first
};

}  // namespace wp::ui

Q_DECLARE_METATYPE(wp::ui::ClassifyResult)
Q_DECLARE_METATYPE(wp::ui::AnswerResult)
