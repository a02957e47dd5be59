#include "widgets/head_summary_grid.h"

#include <QComboBox>
#include <QEvent>
#include <QHBoxLayout>
#include <QHelpEvent>
#include <QLabel>
#include <QMouseEvent>
#include <QPainter>
#include <QScrollArea>
#include <QToolTip>
#include <QVBoxLayout>
#include <algorithm>
#include <cmath>

#include "widgets/mask_palette.h"
#include "widgets/mask_view_text.h"

namespace wp::ui {

namespace {

constexpr int kMinCell = 16, kMaxCellW = 110, kMaxCellH = 44;
constexpr int kHeaderH = 24, kLegendH = 40;

// Low values pale, high values the metric's colour; the same colour for every metric so the
// legend reads the same way.
QColor shade(const QPalette& pal, double t) {
    const bool dark = pal.color(QPalette::Base).lightness() < 128;
    const QColor hot = dark ? QColor(0xf0, 0x9a, 0x4a) : QColor(0xc8, 0x5a, 0x0c);
    return mixColor(pal.color(QPalette::Base), hot, 0.08 + 0.92 * std::clamp(t, 0.0, 1.0));
}

}  // namespace

// The grid itself: cells sized to the room there is (at least kMinCell, so a large model scrolls).
class HeadSummaryCanvas : public QWidget {
public:
    explicit HeadSummaryCanvas(HeadSummaryGrid* grid) : QWidget(grid), grid_(grid) { setMouseTracking(true); }

    void dataChanged() {
        const HeadSummaryData& d = grid_->data_;
        const QFontMetrics fm(font());
        labelW_ = 0;
        for (int l = 0; l < d.layers; ++l) labelW_ = std::max(labelW_, fm.horizontalAdvance(layerLabel(l)));
        labelW_ += 16;
        setMinimumSize(labelW_ + d.heads * kMinCell + 8, kHeaderH + d.layers * kMinCell + kLegendH);
        updateGeometry();
        update();
    }

    QString layerLabel(int l) const {
        const HeadSummaryData& d = grid_->data_;
        return QStringLiteral("%1 \u00b7 %2").arg(QObject::tr("layer %1").arg(l), MaskViewText::layerCaption(l, d.masks[l]).section(QStringLiteral(" \u00b7 "), 1));
    }
    QSize cell() const {
        const HeadSummaryData& d = grid_->data_;
        if (d.empty()) return {};
        const int w = std::clamp((width() - labelW_ - 8) / d.heads, kMinCell, kMaxCellW);
        const int h = std::clamp((height() - kHeaderH - kLegendH) / d.layers, kMinCell, kMaxCellH);
        return {w, h};
    }
    QRect cellRect(int layer, int head) const {
        const HeadSummaryData& d = grid_->data_;
        if (d.empty() || layer < 0 || layer >= d.layers || head < 0 || head >= d.heads) return {};
        const QSize c = cell();
        return {labelW_ + head * c.width(), kHeaderH + layer * c.height(), c.width(), c.height()};
    }
    std::pair<int, int> hit(QPoint pos) const {
        const HeadSummaryData& d = grid_->data_;
        const QSize c = cell();
        if (d.empty() || pos.x() < labelW_ || pos.y() < kHeaderH) return {-1, -1};
        const int head = (pos.x() - labelW_) / c.width(), layer = (pos.y() - kHeaderH) / c.height();
        if (head >= d.heads || layer >= d.layers) return {-1, -1};
        return {layer, head};
    }

protected:
    bool event(QEvent* e) override {
        if (e->type() == QEvent::ToolTip) {
            auto* he = static_cast<QHelpEvent*>(e);
            const auto [layer, head] = hit(he->pos());
            if (layer >= 0)
                QToolTip::showText(he->globalPos(), grid_->describeCell(layer, head), this, cellRect(layer, head));
            else
                QToolTip::hideText();
            return true;
        }
        return QWidget::event(e);
    }
    void mouseMoveEvent(QMouseEvent* e) override {
        setCursor(hit(e->position().toPoint()).first >= 0 ? Qt::PointingHandCursor : Qt::ArrowCursor);
    }
    void mousePressEvent(QMouseEvent* e) override {
        if (e->button() != Qt::LeftButton) return;
        if (const auto [layer, head] = hit(e->position().toPoint()); layer >= 0) emit grid_->headClicked(layer, head);
    }
    void paintEvent(QPaintEvent*) override;

private:
    HeadSummaryGrid* grid_;
    int labelW_ = 100;
};

void HeadSummaryCanvas::paintEvent(QPaintEvent*) {
    QPainter p(this);
    const QPalette& pal = palette();
    p.fillRect(rect(), pal.color(QPalette::Base));
    const HeadSummaryData& d = grid_->data_;
    const QColor text = pal.color(QPalette::Text), muted = mixColor(pal.color(QPalette::Base), text, 0.55);
    if (d.empty()) {
        p.setPen(muted);
        p.drawText(rect().adjusted(24, 24, -24, -24), Qt::AlignCenter | Qt::TextWordWrap, grid_->message_);
        return;
    }
    const HeadSummaryData::Metric m = grid_->metric_;
    const auto [lo, hi] = d.range(m);
    const QSize c = cell();
    const bool values = c.width() >= 52 && c.height() >= 18;
    p.setPen(muted);
    for (int h = 0; h < d.heads; ++h)
        p.drawText(QRect(labelW_ + h * c.width(), 0, c.width(), kHeaderH), Qt::AlignCenter,
                   c.width() >= 52 ? QObject::tr("head %1").arg(h) : QString::number(h));
    for (int l = 0; l < d.layers; ++l) {
        p.setPen(muted);
        p.drawText(QRect(0, kHeaderH + l * c.height(), labelW_ - 10, c.height()), Qt::AlignVCenter | Qt::AlignRight,
                   layerLabel(l));
        for (int h = 0; h < d.heads; ++h) {
            const QRect r = cellRect(l, h).adjusted(0, 0, -1, -1);
            const double v = d.value(l, h, m);
            if (!std::isfinite(v)) {  // window use on a global layer
                p.fillRect(r, QBrush(mixColor(pal.color(QPalette::Base), text, 0.18), Qt::BDiagPattern));
                continue;
            }
            const double t = hi > lo ? (v - lo) / (hi - lo) : 0.5;
            p.fillRect(r, shade(pal, t));
            if (values) {
                p.setPen(t > 0.55 ? QColor(Qt::white) : text);
                p.drawText(r, Qt::AlignCenter, HeadSummaryData::formatValue(m, v).section(' ', 0, 0));
            }
        }
    }
    // Legend: the shading from the smallest value to the largest.
    const int y = kHeaderH + d.layers * c.height() + 12, w = std::min(220, std::max(80, d.heads * c.width()));
    QLinearGradient g(labelW_, 0, labelW_ + w, 0);
    g.setColorAt(0, shade(pal, 0));
    g.setColorAt(1, shade(pal, 1));
    p.fillRect(QRect(labelW_, y, w, 10), g);
    p.setPen(muted);
    p.drawText(QRect(labelW_, y + 11, w, 16), Qt::AlignLeft | Qt::AlignVCenter, HeadSummaryData::formatValue(m, lo));
    p.drawText(QRect(labelW_, y + 11, w, 16), Qt::AlignRight | Qt::AlignVCenter, HeadSummaryData::formatValue(m, hi));
}

// ---------------------------------------------------------------------------------------------

HeadSummaryGrid::HeadSummaryGrid(QWidget* parent) : QWidget(parent) {
    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(0, 0, 0, 0);
    auto* controls = new QHBoxLayout;
    controls->addWidget(new QLabel(tr("Metric"), this));
    metricBox_ = new QComboBox(this);
    metricBox_->setObjectName("headMetric");
    for (int i = 0; i < HeadSummaryData::kMetrics; ++i)
        metricBox_->addItem(HeadSummaryData::metricName(static_cast<Metric>(i)));
    controls->addWidget(metricBox_);
    caption_ = new QLabel(this);
    caption_->setObjectName("headCaption");
    caption_->setWordWrap(true);
    controls->addWidget(caption_, 1);
    layout->addLayout(controls);
    scroll_ = new QScrollArea(this);
    scroll_->setFrameShape(QFrame::NoFrame);
    scroll_->setWidgetResizable(true);
    canvas_ = new HeadSummaryCanvas(this);
    canvas_->setObjectName("headSummaryCanvas");
    scroll_->setWidget(canvas_);
    layout->addWidget(scroll_, 1);
    connect(metricBox_, &QComboBox::currentIndexChanged, this, [this](int i) { setMetric(static_cast<Metric>(i)); });
    showMessage(tr("Show a text to summarise every layer's and head's attention over it."));
}

void HeadSummaryGrid::setData(HeadSummaryData data) {
    data_ = std::move(data);
    message_.clear();
    canvas_->dataChanged();
    updateCaption();
}

void HeadSummaryGrid::showMessage(const QString& message) {
    data_ = {};
    message_ = message;
    canvas_->dataChanged();
    updateCaption();
}

void HeadSummaryGrid::setMetric(Metric m) {
    metric_ = m;
    if (metricBox_->currentIndex() != static_cast<int>(m)) metricBox_->setCurrentIndex(static_cast<int>(m));
    canvas_->update();
    updateCaption();
}

void HeadSummaryGrid::updateCaption() {
    if (data_.empty()) {
        caption_->clear();
        return;
    }
    QString what;
    switch (metric_) {
    case Metric::Entropy: what = tr("how spread each query's attention is, averaged over the queries"); break;
    case Metric::FirstToken: what = tr("the share of attention on position 0 (attention sinks)"); break;
    case Metric::MeanDistance: what = tr("how far back a head looks, in tokens"); break;
    case Metric::WindowUsed:
        what = tr("the share of the sliding window holding %1 % of the attention; hatched: global layers")
                   .arg(100 * wp::HeadSummary::kWindowMass, 0, 'f', 0);
        break;
    }
    caption_->setText(tr("%1 tokens \u00b7 %2. Click a cell to see that head's attention.").arg(data_.positions).arg(what));
}

QString HeadSummaryGrid::describeCell(int layer, int head) const {
    if (data_.empty() || layer < 0 || layer >= data_.layers || head < 0 || head >= data_.heads) return {};
    QString s = tr("Layer %1, head %2 (%3)")
                    .arg(layer)
                    .arg(head)
                    .arg(MaskViewText::layerCaption(layer, data_.masks[layer]).section(QStringLiteral(" \u00b7 "), 1));
    for (int i = 0; i < HeadSummaryData::kMetrics; ++i) {
        const auto m = static_cast<Metric>(i);
        s += QStringLiteral("\n%1%2: %3")
                 .arg(m == metric_ ? QStringLiteral("\u25b8 ") : QStringLiteral("   "), HeadSummaryData::metricName(m),
                      HeadSummaryData::formatValue(m, data_.value(layer, head, m)));
    }
    return s + tr("\nClick: this head's attention");
}

QRect HeadSummaryGrid::cellRect(int layer, int head) const { return canvas_->cellRect(layer, head); }
QWidget* HeadSummaryGrid::canvas() const { return canvas_; }

}  // namespace wp::ui
