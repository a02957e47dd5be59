#include "widgets/reply_parting.h"

#include <QColor>
#include <QObject>
#include <QTextCharFormat>
#include <QTextCursor>
#include <QTextDocument>
#include <algorithm>

#include "widgets/mask_view.h"

namespace wp::ui {

namespace {

QString probabilityText(float p) {
    return p < 0 ? QObject::tr("not in its top 5") : QString::number(100.0 * p, 'f', 1) + QLatin1Char('%');
}

QString quoted(const QString& piece) {
    return QStringLiteral("\u201c%1\u201d").arg(MaskView::visibleToken(piece).toHtmlEscaped());
}

}  // namespace

int firstParting(const QVector<ReplyToken>& a, const QVector<ReplyToken>& b, int* agreed) {
    const int n = static_cast<int>(std::min(a.size(), b.size()));
    int i = agreed ? std::clamp(*agreed, 0, n) : 0;
    while (i < n && a[i].id == b[i].id) ++i;
    if (agreed) *agreed = i;
    return i < n ? i : -1;
}

float probabilityOf(const ReplyToken& t, int id) {
    if (t.id == id) return t.probability;
    for (const TokenAlternativeInfo& alt : t.top)
        if (alt.id == id) return alt.probability;
    return -1;
}

QString partingHtml(const QString& otherPane, const QString& otherModel, int index, const ReplyToken& mine,
                    const ReplyToken& theirs) {
    // Both choices under both models: how close this model came to the other's token, and back.
    return QObject::tr("<b>Parts from %1 (%2) at token %3</b>: this model <span style='background-color:#f5c542; "
                       "color:black'>%4</span> %5, %6 %7 \u00b7 %1 %6 %8, %4 %9")
        .arg(otherPane.toHtmlEscaped(), otherModel.toHtmlEscaped(), QString::number(index + 1), quoted(mine.piece),
             probabilityText(mine.probability), quoted(theirs.piece), probabilityText(probabilityOf(mine, theirs.id)),
             probabilityText(theirs.probability), probabilityText(probabilityOf(theirs, mine.id)));
}

void markPartings(QTextDocument* doc, const QVector<ReplyToken>& tokens, const QVector<int>& indices) {
    QTextCursor all(doc);
    all.select(QTextCursor::Document);
    all.setCharFormat(QTextCharFormat());
    QTextCharFormat mark;
    mark.setBackground(QColor(0xf5, 0xc5, 0x42));
    mark.setForeground(Qt::black);
    mark.setFontUnderline(true);
    for (int index : indices) {
        // A token without text of its own (a byte inside a character) is marked by the next one's.
        int i = index;
        while (i < tokens.size() && tokens[i].begin >= tokens[i].end) ++i;
        if (i >= tokens.size()) continue;  // the end of the reply: the banner says so
        QTextCursor c(doc);
        c.setPosition(std::min(tokens[i].begin, doc->characterCount() - 1));
        c.setPosition(std::min(tokens[i].end, doc->characterCount() - 1), QTextCursor::KeepAnchor);
        c.mergeCharFormat(mark);
    }
}

}  // namespace wp::ui
