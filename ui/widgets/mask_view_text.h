// The words of the mask view: layer captions, sizes and probabilities as shown, token pieces with
// their whitespace made visible, and the hover text of a cell, which says why the mask allows or
// forbids it in the words of wp::MaskSpec::reason (the forward pass's own rule).
#pragma once

#include <QCoreApplication>
#include <QString>

#include "engine/mask_view_data.h"

namespace wp::ui {

class MaskViewText {
    Q_DECLARE_TR_FUNCTIONS(wp::ui::MaskView)

public:
    static QString layerCaption(int layer, const wp::MaskSpec& spec);  // "L3 · sliding 512", "L4 · global"
    static QString bytes(qint64 bytes);                                 // "1.5 MB"
    static QString probability(float p);                                // 4 decimals, or 2 digits of exponent
    static QString visibleToken(QString piece);                         // space -> ·, \n -> ↵, \t -> →

    // A layer's cell (query q, key k): the layer, the two tokens, allowed or why masked, and in
    // attention mode the probability of `head` (-1: the head average).
    static QString cell(const MaskViewData& data, bool attention, int head, int layer, int q, int k);
    // A position of a layer's KV cache at a step: held or evicted, and whether the next query needs it.
    static QString cacheCell(const MaskViewData& data, int step, int layer, int position);
};

}  // namespace wp::ui
