#include "widgets/mask_view_text.h"

#include <QLocale>
#include <QStringList>
#include <algorithm>
#include <cmath>

#include "widgets/mask_palette.h"

namespace wp::ui {

namespace {

QString kindText(const MaskSpec& s) {
    return s.window > 0 ? QStringLiteral("sliding %1").arg(s.window) : QStringLiteral("global");
}

}  // namespace

QString MaskViewText::layerCaption(int l, const MaskSpec& s) {
    return QStringLiteral("L%1 \u00b7 %2").arg(l).arg(kindText(s));
}

QString MaskViewText::bytes(qint64 bytes) {
    return QLocale::c().formattedDataSize(bytes, 1, QLocale::DataSizeTraditionalFormat);
}

QString MaskViewText::probability(float p) {
    if (p != 0 && std::fabs(p) < 1e-3f) return QString::number(p, 'e', 2);
    return QString::number(p, 'f', 4);
}

QString MaskViewText::visibleToken(QString piece) {
    piece.replace(QLatin1Char('\n'), QStringLiteral("\u21b5"));
    piece.replace(QLatin1Char('\r'), QStringLiteral("\u240d"));
    piece.replace(QLatin1Char('\t'), QStringLiteral("\u2192"));
    piece.replace(QLatin1Char(' '), QStringLiteral("\u00b7"));
    return piece;
}

QString MaskViewText::cell(const MaskViewData& data, bool attention, int head, int layer, int q, int k) {
    const int T = data.positions();
    const int L = static_cast<int>(data.layers.size());
    if (layer < 0 || layer >= L || q < 0 || q >= T || k < 0 || k >= T) return {};
    const MaskSpec& spec = data.layers[layer];
    QStringList lines;
    lines << layerCaption(layer, spec);
    lines << tr("query %1 \u201c%2\u201d \u2192 key %3 \u201c%4\u201d")
                 .arg(q)
                 .arg(visibleToken(data.tokens[q]))
                 .arg(k)
                 .arg(visibleToken(data.tokens[k]));
    const MaskReason why = spec.reason(q, k);
    switch (why) {
        case MaskReason::Allowed:
            lines << (spec.window > 0 ? tr("allowed (query \u2212 key = %1, inside the sliding window of %2)")
                                            .arg(q - k)
                                            .arg(spec.window)
                                      : tr("allowed"));
            break;
        case MaskReason::Future: lines << tr("masked \u2014 causal: key is in the future"); break;
        case MaskReason::OutsideWindow:
            lines << tr("masked \u2014 outside the sliding window of %1 (query \u2212 key = %2 \u2265 %1)")
                         .arg(spec.window)
                         .arg(q - k);
            break;
    }
    if (attention) {
        if (!data.hasAttention(layer)) {
            lines << tr("no attention recorded for this layer");
        } else {
            const float p = data.probability(layer, head, q, k);
            lines << (head < 0 ? tr("probability %1 (average of %2 heads)").arg(probability(p)).arg(data.heads)
                               : tr("probability %1 (head %2)").arg(probability(p)).arg(head));
            if (why != MaskReason::Allowed && p > kMaskedEpsilon)
                lines << tr("warning: probability on a masked cell \u2014 the recorded attention disagrees with "
                            "the mask");
        }
    }
    return lines.join(QLatin1Char('\n'));
}

QString MaskViewText::cacheCell(const MaskViewData& data, int step, int layer, int position) {
    const int L = static_cast<int>(data.layers.size());
    if (step < 0 || step >= static_cast<int>(data.cacheSteps.size()) || layer < 0 || layer >= L || position < 0)
        return {};
    const auto& s = data.cacheSteps[step];
    const MaskSpec& spec = data.layers[layer];
    QStringList lines;
    QString head = layerCaption(layer, spec);
    if (layer < static_cast<int>(s.bytes.size())) head += QStringLiteral(" \u00b7 ") + bytes(s.bytes[layer]);
    lines << head;
    const QString token = position < data.positions() ? visibleToken(data.tokens[position]) : QString();
    lines << tr("position %1 \u201c%2\u201d").arg(position).arg(token);
    if (position >= s.length) {
        lines << tr("not computed yet at this step (%1 positions so far)").arg(s.length);
        return lines.join(QLatin1Char('\n'));
    }
    bool held = false;
    if (layer < static_cast<int>(s.held.size()))
        held = std::find(s.held[layer].begin(), s.held[layer].end(), std::int64_t(position)) != s.held[layer].end();
    const std::int64_t next = s.length;  // the next query
    const MaskReason why = spec.reason(next, position);
    if (held) {
        lines << tr("held in the KV cache");
        if (why == MaskReason::Allowed)
            lines << tr("the next query (position %1) attends to it").arg(next);
        else if (why == MaskReason::OutsideWindow)
            lines << tr("the next query (position %1) no longer needs it: outside the sliding window of %2")
                         .arg(next)
                         .arg(spec.window);
    } else {
        lines << tr("not held (evicted)");
        if (why == MaskReason::OutsideWindow)
            lines << tr("outside the sliding window of %1 for the next query (position %2)").arg(spec.window).arg(next);
        else if (why == MaskReason::Allowed)
            lines << tr("warning: the mask still allows it for the next query (position %1), but the cache dropped it")
                         .arg(next);
    }
    return lines.join(QLatin1Char('\n'));
}

}  // namespace wp::ui
