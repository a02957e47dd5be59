// What the compare view's divergence mode gets from its worker: core's wp::Divergence for one text
// as plain Qt values, each token already placed in the text (UTF-16 offsets) and the top tokens
// already decoded, so the widget never touches a tokenizer or UTF-8 bytes.
#pragma once

#include <QMetaType>
#include <QString>
#include <QStringList>
#include <QVector>

namespace wp::ui {

// The statistics over every position (wp::DivergenceSummary).
struct DivergenceStats {
    int tokens = 0;  // predictions compared: the text's tokens minus one
    double meanKl = 0, medianKl = 0, p99Kl = 0, maxKl = 0, meanKlError = 0;  // nats
    double sameTop = 0;  // share of positions whose most probable tokens agree, 0..1
    double pplA = 0, pplB = 0, pplRatio = 0;  // perplexities of the text; ratio = B / A
};

// One side of a comparison: a model file, the precision to load it in ("f32", "bf16", "q8",
// "q4"; empty: the model's default) and the name the user knows it by (the pane's, a library's
// MODEL:TAG for an Ollama blob).
struct DivergenceModel {
    QString path, precision, name;
};

struct DivergenceViewData {
    QString nameA, nameB;  // the models' names and precisions: "windowpane-demo-gemma2 (f32)"
    QString text;          // the text both models read
    // Each token of the text as model A's tokenizer (the same as B's) encodes it.
    QVector<int> ids;
    QStringList pieces;         // each token decoded alone
    QVector<int> begin, end;    // its characters in `text`; empty for special tokens (<bos>)
    // Position t: both models have read tokens 0..t and predict token t + 1; [ids.size() - 1].
    QVector<double> kl;                  // KL(A || B) in nats
    QVector<bool> sameTop;               // both models' most probable token is the same
    QVector<double> logprobA, logprobB;  // of the actual token t + 1
    int topK = 0;
    QVector<int> topIdA, topIdB;         // [positions × topK], most probable first
    QStringList topTextA, topTextB;      // the same tokens decoded
    QVector<float> topProbA, topProbB;
    DivergenceStats stats;

    int positions() const { return static_cast<int>(kl.size()); }
};

}  // namespace wp::ui

Q_DECLARE_METATYPE(wp::ui::DivergenceViewData)
