// What the inference worker hands the logit-lens grid: each layer's most probable next tokens at a
// window of positions of a text, read out as the model's last layer is (wp::logit_lens).
//
// A plain value sent by queued signal; the widgets only read it. Layout:
//  - tokens / ids: every position of the text (the grid's window is first .. first + count - 1);
//  - topIds, topProbs: [layers, count, topK], most probable first; layer layers - 1 is the output;
//  - entropy: [layers, count], nats, of the whole distribution;
//  - pieces: the text of every id in topIds, decoded on the worker so painting decodes nothing.
#pragma once

#include <QHash>
#include <QMetaType>
#include <QString>
#include <QStringList>
#include <cstddef>
#include <vector>

namespace wp::ui {

struct LensViewData {
    QStringList tokens;
    std::vector<int> ids;
    int layers = 0, topK = 0;
    int first = 0, count = 0;
    std::vector<int> topIds;
    std::vector<float> topProbs;
    std::vector<float> entropy;
    QHash<int, QString> pieces;

    int positions() const { return static_cast<int>(tokens.size()); }
    bool empty() const { return layers == 0 || count == 0; }
    std::size_t cell(int layer, int column) const { return static_cast<std::size_t>(layer) * count + column; }
    int id(int layer, int column, int k = 0) const { return topIds[cell(layer, column) * topK + k]; }
    float probability(int layer, int column, int k = 0) const { return topProbs[cell(layer, column) * topK + k]; }
    QString piece(int id) const { return pieces.value(id); }
    // The token that actually follows the column's position (-1 after the last one).
    int nextId(int column) const {
        const std::size_t p = static_cast<std::size_t>(first + column) + 1;
        return p < ids.size() ? ids[p] : -1;
    }
};

}  // namespace wp::ui

Q_DECLARE_METATYPE(wp::ui::LensViewData)
