#include "widgets/lens_grid.h"

#include <QAbstractScrollArea>
#include <QEvent>
#include <QHBoxLayout>
#include <QHelpEvent>
#include <QLabel>
#include <QPainter>
#include <QScrollBar>
#include <QSpinBox>
#include <QTimer>
#include <QToolButton>
#include <QToolTip>
#include <QVBoxLayout>
#include <algorithm>
#include <cmath>

#include "engine/lens_engine.h"
#include "widgets/mask_palette.h"
#include "widgets/mask_view.h"

namespace wp::ui {

namespace {

constexpr int kCellW = 76, kMinCellH = 24, kMaxCellH = 40;
constexpr int kTopAxis = 24, kBottomAxis = 38;
constexpr int kDefaultCount = 48;

QColor muted(const QPalette& pal) { return mixColor(pal.color(QPalette::Base), pal.color(QPalette::Text), 0.55); }

}  // namespace

// The cells, the token axes (top: what really follows, bottom: the input) and the layer labels;
// the axes stay in place while the cells scroll under them.
class LensCanvas : public QAbstractScrollArea {
public:
    explicit LensCanvas(LensGrid* grid) : QAbstractScrollArea(grid), grid_(grid) {
        setFrameShape(QFrame::NoFrame);
        viewport()->setMouseTracking(true);
    }

    void dataChanged() {
        QFont bold = font();
        bold.setBold(true);  // the output's label
        const int L = grid_->data_.layers;
        labelW_ = std::max(QFontMetrics(bold).horizontalAdvance(QObject::tr("output \u00b7 layer %1").arg(L - 1)),
                           QFontMetrics(font()).horizontalAdvance(QObject::tr("next token"))) +
                  18;
        updateScrollRange();
        viewport()->update();
    }

    // Row height: taller rows while a few layers leave room, never below kMinCellH (then it scrolls).
    int cellH() const {
        const int L = std::max(1, grid_->data_.layers);
        return std::clamp((viewport()->height() - kTopAxis - kBottomAxis) / L, kMinCellH, kMaxCellH);
    }
    // Where the cells are (in viewport coordinates), at most the space left by labels and axes.
    QRect area() const {
        const LensViewData& d = grid_->data_;
        const QSize v = viewport()->size();
        const int w = std::min(d.count * kCellW, std::max(0, v.width() - labelW_));
        const int h = std::min(d.layers * cellH(), std::max(0, v.height() - kTopAxis - kBottomAxis));
        return {labelW_, kTopAxis, w, h};
    }
    QRect cellRect(int layer, int column) const {
        const LensViewData& d = grid_->data_;
        if (layer < 0 || layer >= d.layers || column < 0 || column >= d.count) return {};
        const QRect a = area();
        const QRect r(a.x() + column * kCellW - horizontalScrollBar()->value(),
                      a.y() + (d.layers - 1 - layer) * cellH() - verticalScrollBar()->value(), kCellW, cellH());
        return a.intersects(r) ? r : QRect();
    }
    // The (layer, column) under a viewport point; layer -1 when none.
    std::pair<int, int> hit(QPoint pos) const {
        const LensViewData& d = grid_->data_;
        const QRect a = area();
        if (d.empty() || !a.contains(pos)) return {-1, -1};
        const int column = (pos.x() - a.x() + horizontalScrollBar()->value()) / kCellW;
        const int row = (pos.y() - a.y() + verticalScrollBar()->value()) / cellH();
        if (column >= d.count || row >= d.layers) return {-1, -1};
        return {d.layers - 1 - row, column};
    }

protected:
    void resizeEvent(QResizeEvent* e) override {
        QAbstractScrollArea::resizeEvent(e);
        updateScrollRange();
    }
    void scrollContentsBy(int, int) override { viewport()->update(); }
    bool viewportEvent(QEvent* e) override {
        if (e->type() == QEvent::ToolTip) {
            auto* he = static_cast<QHelpEvent*>(e);
            const auto [layer, column] = hit(he->pos());
            if (layer >= 0)
                QToolTip::showText(he->globalPos(), grid_->describeCell(layer, column), viewport(),
                                   cellRect(layer, column));
            else
                QToolTip::hideText();
            return true;
        }
        return QAbstractScrollArea::viewportEvent(e);
    }
    void paintEvent(QPaintEvent*) override;

private:
    void updateScrollRange() {
        const LensViewData& d = grid_->data_;
        const QRect a = area();
        horizontalScrollBar()->setRange(0, std::max(0, d.count * kCellW - a.width()));
        horizontalScrollBar()->setPageStep(std::max(1, a.width()));
        horizontalScrollBar()->setSingleStep(kCellW);
        verticalScrollBar()->setRange(0, std::max(0, d.layers * cellH() - a.height()));
        verticalScrollBar()->setPageStep(std::max(1, a.height()));
        verticalScrollBar()->setSingleStep(cellH());
    }

    LensGrid* grid_;
    int labelW_ = 90;
};

void LensCanvas::paintEvent(QPaintEvent*) {
    QPainter p(viewport());
    const QPalette& pal = palette();
    p.fillRect(viewport()->rect(), pal.color(QPalette::Base));
    const LensViewData& d = grid_->data_;
    if (d.empty()) {
        p.setPen(muted(pal));
        p.drawText(viewport()->rect().adjusted(24, 24, -24, -24), Qt::AlignCenter | Qt::TextWordWrap,
                   grid_->message_);
        return;
    }
    const QRect a = area();
    const int cellHeight = cellH();
    const int xoff = horizontalScrollBar()->value(), yoff = verticalScrollBar()->value();
    const int c0 = xoff / kCellW, c1 = std::min(d.count - 1, (xoff + a.width()) / kCellW);
    const int r0 = yoff / cellHeight, r1 = std::min(d.layers - 1, (yoff + a.height()) / cellHeight);
    const QFontMetrics fm(font());
    QFont bold = font();
    bold.setBold(true);
    const QColor text = pal.color(QPalette::Text), grid = mixColor(pal.color(QPalette::Base), text, 0.12);

    // Cells.
    p.save();
    p.setClipRect(a);
    for (int r = r0; r <= r1; ++r) {
        const int layer = d.layers - 1 - r;
        for (int c = c0; c <= c1; ++c) {
            const QRect cell(a.x() + c * kCellW - xoff, a.y() + r * cellHeight - yoff, kCellW, cellHeight);
            const float prob = d.probability(layer, c);
            const int step = std::clamp(static_cast<int>(std::lround(prob * 100)), 0, 100);
            p.fillRect(cell.adjusted(0, 0, -1, -1), QColor(grid_->heat_[step]));
            const int id = d.id(layer, c);
            const bool hitsNext = id == d.nextId(c);
            p.setFont(hitsNext ? bold : font());
            p.setPen(step > 55 ? QColor(Qt::white) : text);
            const QFontMetrics cm(p.font());
            p.drawText(cell.adjusted(4, 0, -4, 0), Qt::AlignVCenter | Qt::AlignLeft,
                       cm.elidedText(grid_->visible_.value(id), Qt::ElideRight, kCellW - 8));
        }
    }
    p.setPen(grid);
    for (int c = c0; c <= c1 + 1; ++c) p.drawLine(a.x() + c * kCellW - xoff - 1, a.top(), a.x() + c * kCellW - xoff - 1, a.bottom());
    // The model's output row is set apart from the layers below it.
    p.setPen(QPen(text, 1.5));
    const int outY = a.y() + cellHeight - yoff;
    p.drawLine(a.left(), outY, a.right(), outY);
    p.restore();

    // Token axes: above, the token that really follows; below, the input token and its position.
    p.setPen(muted(pal));
    p.drawText(QRect(4, 0, labelW_ - 8, kTopAxis), Qt::AlignVCenter | Qt::AlignRight, QObject::tr("next token"));
    p.drawText(QRect(4, a.bottom() + 1, labelW_ - 8, kBottomAxis / 2), Qt::AlignVCenter | Qt::AlignRight,
               QObject::tr("input"));
    p.drawText(QRect(4, a.bottom() + 1 + kBottomAxis / 2, labelW_ - 8, kBottomAxis / 2),
               Qt::AlignVCenter | Qt::AlignRight, QObject::tr("position"));
    p.save();
    p.setClipRect(QRect(a.x(), 0, a.width(), viewport()->height()));
    for (int c = c0; c <= c1; ++c) {
        const int x = a.x() + c * kCellW - xoff;
        const int next = d.nextId(c);
        p.setPen(muted(pal));
        if (next >= 0)
            p.drawText(QRect(x + 4, 0, kCellW - 8, kTopAxis), Qt::AlignVCenter | Qt::AlignLeft,
                       fm.elidedText(grid_->visible_.value(next), Qt::ElideRight, kCellW - 8));
        p.setPen(text);
        p.drawText(QRect(x + 4, a.bottom() + 1, kCellW - 8, kBottomAxis / 2), Qt::AlignVCenter | Qt::AlignLeft,
                   fm.elidedText(MaskView::visibleToken(d.tokens.value(d.first + c)), Qt::ElideRight, kCellW - 8));
        p.setPen(muted(pal));
        p.drawText(QRect(x + 4, a.bottom() + 1 + kBottomAxis / 2, kCellW - 8, kBottomAxis / 2),
                   Qt::AlignVCenter | Qt::AlignLeft, QString::number(d.first + c));
    }
    p.restore();

    // Layer labels, the output on top.
    p.save();
    p.setClipRect(QRect(0, a.y(), labelW_, a.height()));
    for (int r = r0; r <= r1; ++r) {
        const int layer = d.layers - 1 - r;
        const QRect row(4, a.y() + r * cellHeight - yoff, labelW_ - 12, cellHeight);
        p.setFont(r == 0 ? bold : font());
        p.setPen(r == 0 ? text : muted(pal));
        p.drawText(row, Qt::AlignVCenter | Qt::AlignRight,
                   r == 0 ? QObject::tr("output \u00b7 layer %1").arg(layer) : QObject::tr("layer %1").arg(layer));
    }
    p.restore();
}

// ---------------------------------------------------------------------------------------------

LensGrid::LensGrid(QWidget* parent) : QWidget(parent) {
    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(0, 0, 0, 0);
    auto* controls = new QHBoxLayout;
    controls->addWidget(new QLabel(tr("Positions from"), this));
    first_ = new QSpinBox(this);
    first_->setObjectName("lensFirst");
    first_->setRange(0, 0);
    first_->setToolTip(tr("The first position shown (the lens reads out a window of positions at a time)"));
    controls->addWidget(first_);
    controls->addWidget(new QLabel(tr("count"), this));
    count_ = new QSpinBox(this);
    count_->setObjectName("lensCount");
    count_->setRange(1, kMaxLensPositions);
    count_->setValue(kDefaultCount);
    controls->addWidget(count_);
    earlier_ = new QToolButton(this);
    earlier_->setText(QStringLiteral("\u25c0"));
    earlier_->setToolTip(tr("The positions before these"));
    controls->addWidget(earlier_);
    later_ = new QToolButton(this);
    later_->setText(QStringLiteral("\u25b6"));
    later_->setToolTip(tr("The positions after these"));
    controls->addWidget(later_);
    caption_ = new QLabel(this);
    caption_->setObjectName("lensCaption");
    controls->addWidget(caption_, 1);
    layout->addLayout(controls);
    canvas_ = new LensCanvas(this);
    canvas_->setObjectName("lensCanvas");
    layout->addWidget(canvas_, 1);

    // Spin box arrows step one at a time: the request goes once the value rests.
    debounce_ = new QTimer(this);
    debounce_->setSingleShot(true);
    debounce_->setInterval(400);
    connect(debounce_, &QTimer::timeout, this, [this] { emit windowRequested(first_->value(), count_->value()); });
    auto moved = [this] {
        if (syncing_) return;
        explicitWindow_ = true;
        debounce_->start();
    };
    connect(first_, &QSpinBox::valueChanged, this, moved);
    connect(count_, &QSpinBox::valueChanged, this, moved);
    connect(earlier_, &QToolButton::clicked, this, [this] { requestWindow(std::max(0, data_.first - count_->value())); });
    connect(later_, &QToolButton::clicked, this, [this] {
        requestWindow(std::max(0, std::min(data_.positions() - count_->value(), data_.first + count_->value())));
    });

    rebuildColors();
    showMessage(tr("Show a text to see what each layer would predict at each of its positions."));
}

LensGrid::~LensGrid() = default;

void LensGrid::setData(LensViewData data) {
    data_ = std::move(data);
    message_.clear();
    visible_.clear();
    for (auto it = data_.pieces.cbegin(); it != data_.pieces.cend(); ++it)
        visible_.insert(it.key(), MaskView::visibleToken(it.value()));
    syncControls();
    canvas_->dataChanged();
}

void LensGrid::showMessage(const QString& message) {
    data_ = {};
    message_ = message;
    syncControls();
    canvas_->dataChanged();
}

int LensGrid::windowFirst() const { return explicitWindow_ ? first_->value() : -1; }
int LensGrid::windowCount() const { return count_->value(); }
void LensGrid::resetWindow() { explicitWindow_ = false; }

void LensGrid::requestWindow(int first) {
    debounce_->stop();
    explicitWindow_ = true;
    syncing_ = true;
    first_->setValue(first);
    syncing_ = false;
    emit windowRequested(first, count_->value());
}

void LensGrid::syncControls() {
    syncing_ = true;
    const int T = data_.positions();
    first_->setRange(0, std::max(0, T - 1));
    if (!data_.empty()) first_->setValue(data_.first);
    syncing_ = false;
    earlier_->setEnabled(!data_.empty() && data_.first > 0);
    later_->setEnabled(!data_.empty() && data_.first + data_.count < T);
    caption_->setText(data_.empty() ? QString()
                                    : tr("positions %1\u2013%2 of %3 \u00b7 each layer's top token, shaded by its "
                                         "probability; bold: the token that follows")
                                          .arg(data_.first)
                                          .arg(data_.first + data_.count - 1)
                                          .arg(T));
}

QString LensGrid::cellText(int layer, int column) const {
    if (data_.empty() || layer < 0 || layer >= data_.layers || column < 0 || column >= data_.count) return {};
    return data_.piece(data_.id(layer, column));
}

QString LensGrid::describeCell(int layer, int column) const {
    if (cellText(layer, column).isNull()) return {};
    const int position = data_.first + column;
    QString s = tr("%1 \u00b7 position %2, after \u201c%3\u201d")
                    .arg(layer == data_.layers - 1 ? tr("Output (layer %1)").arg(layer) : tr("Layer %1").arg(layer))
                    .arg(position)
                    .arg(MaskView::visibleToken(data_.tokens.value(position)));
    for (int k = 0; k < data_.topK && k < 5; ++k)
        s += QStringLiteral("\n%1. %2   %3 %")
                 .arg(k + 1)
                 .arg(MaskView::visibleToken(data_.piece(data_.id(layer, column, k))))
                 .arg(100.0 * data_.probability(layer, column, k), 0, 'f', 1);
    s += tr("\nEntropy %1 nats").arg(data_.entropy[data_.cell(layer, column)], 0, 'f', 2);
    if (const int next = data_.nextId(column); next >= 0)
        s += tr("\nNext in the text: \u201c%1\u201d").arg(MaskView::visibleToken(data_.piece(next)));
    return s;
}

QRect LensGrid::cellRect(int layer, int column) const { return canvas_->cellRect(layer, column); }
QWidget* LensGrid::canvas() const { return canvas_->viewport(); }

void LensGrid::changeEvent(QEvent* event) {
    QWidget::changeEvent(event);
    if (event->type() == QEvent::PaletteChange) {
        rebuildColors();
        canvas_->viewport()->update();
    }
}

void LensGrid::rebuildColors() {
    const QPalette& pal = palette();
    const bool dark = pal.color(QPalette::Base).lightness() < 128;
    const QColor hot = dark ? QColor(0x5b, 0x9b, 0xf0) : QColor(0x2f, 0x6f, 0xd0);  // the mask view's "global"
    heat_.resize(101);
    for (int i = 0; i <= 100; ++i) heat_[i] = mixRgb(pal.color(QPalette::Base).rgb(), hot.rgb(), 0.06 + 0.94 * i / 100.0);
}

}  // namespace wp::ui
