#include "widgets/probability_bars.h"

#include <QPainter>
#include <QPainterPath>
#include <algorithm>

#include "widgets/label_colors.h"

namespace wp::ui {

namespace {

constexpr int kMargin = 8;
constexpr int kGap = 12;        // between the label, the bar and the value
constexpr int kValueWidth = 72;  // room for "100.0%" or "-12.345"

}  // namespace

ProbabilityBars::ProbabilityBars(QWidget* parent) : QWidget(parent) {
    setSizePolicy(QSizePolicy::Expanding, QSizePolicy::Fixed);
}

void ProbabilityBars::setRows(const QVector<Row>& rows, int highlighted) {
    rows_ = rows;
    highlighted_ = highlighted;
    updateGeometry();
    update();
}

int ProbabilityBars::rowHeight() const { return fontMetrics().height() * 2; }

int ProbabilityBars::labelWidth() const {
    QFont bold = font();
    bold.setBold(true);
    const QFontMetrics fm(bold);
    int w = 60;
    for (const Row& r : rows_) w = std::max(w, fm.horizontalAdvance(r.label));
    return std::min(w, 260);  // a very long label is elided rather than squeezing the bars
}

QSize ProbabilityBars::sizeHint() const {
    return {labelWidth() + 2 * kGap + kValueWidth + 360 + 2 * kMargin,
            static_cast<int>(rows_.size()) * rowHeight() + 2 * kMargin};
}

QSize ProbabilityBars::minimumSizeHint() const {
    return {std::min(labelWidth(), 120) + 2 * kGap + kValueWidth + 80 + 2 * kMargin,
            static_cast<int>(rows_.size()) * rowHeight() + 2 * kMargin};
}

void ProbabilityBars::paintEvent(QPaintEvent*) {
    QPainter p(this);
    p.setRenderHint(QPainter::Antialiasing);
    const QPalette& pal = palette();
    const int rh = rowHeight();
    const int lw = std::min(labelWidth(), std::max(60, width() / 3));
    const int barX = kMargin + lw + kGap;
    const int barW = std::max(20, width() - barX - kGap - kValueWidth - kMargin);
    const QColor track = isDark(pal) ? pal.color(QPalette::Base).lighter(160) : pal.color(QPalette::Window).darker(108);
    const QColor accent = pal.color(QPalette::Highlight);
    const QColor plain = isDark(pal) ? QColor(0x7a, 0x86, 0x98) : QColor(0x9a, 0xa7, 0xba);
    for (int i = 0; i < rows_.size(); ++i) {
        const Row& r = rows_[i];
        const bool hot = i == highlighted_;
        const int y = kMargin + i * rh;
        if (hot) {  // the winning row stands out as a whole, not only by its bar
            QColor band = accent;
            band.setAlpha(isDark(pal) ? 50 : 28);
            p.setPen(Qt::NoPen);
            p.setBrush(band);
            p.drawRoundedRect(QRectF(2, y + 1, width() - 4, rh - 2), 4, 4);
        }
        QFont f = font();
        f.setBold(hot);
        p.setFont(f);
        p.setPen(pal.color(QPalette::WindowText));
        const QRect labelRect(kMargin, y, lw, rh);
        p.drawText(labelRect, Qt::AlignVCenter | Qt::AlignRight,
                   QFontMetrics(f).elidedText(r.label, Qt::ElideRight, lw));
        const QRectF trackRect(barX, y + rh * 0.28, barW, rh * 0.44);
        p.setPen(Qt::NoPen);
        p.setBrush(track);
        p.drawRoundedRect(trackRect, 3, 3);
        const double v = std::clamp(r.value, 0.0, 1.0);
        if (v > 0) {
            p.setBrush(hot ? accent : plain);
            p.drawRoundedRect(QRectF(trackRect.x(), trackRect.y(), std::max(2.0, trackRect.width() * v), trackRect.height()), 3, 3);
        }
        p.setPen(pal.color(QPalette::WindowText));
        p.drawText(QRect(barX + barW + kGap, y, kValueWidth, rh), Qt::AlignVCenter | Qt::AlignLeft, r.text);
    }
}

}  // namespace wp::ui
