// Every layer's and head's attention in one number: a layers x heads grid of one metric (entropy,
// attention on the first token, mean distance, window used), picked above it, each cell shaded
// from the grid's smallest to its largest value, the value on hover (and in the cell when there is
// room). A click on a cell asks for that layer and head in the attention view (headClicked).
#pragma once

#include <QWidget>

#include "engine/head_summary_data.h"

class QComboBox;
class QLabel;
class QScrollArea;

namespace wp::ui {

class HeadSummaryCanvas;

class HeadSummaryGrid : public QWidget {
    Q_OBJECT
public:
    using Metric = HeadSummaryData::Metric;

    explicit HeadSummaryGrid(QWidget* parent = nullptr);

    void setData(HeadSummaryData data);
    const HeadSummaryData& data() const { return data_; }
    void showMessage(const QString& message);  // no grid, and why

    Metric metric() const { return metric_; }
    void setMetric(Metric m);

    QString describeCell(int layer, int head) const;
    QRect cellRect(int layer, int head) const;  // in canvas() coordinates
    QWidget* canvas() const;

signals:
    void headClicked(int layer, int head);

private:
    friend class HeadSummaryCanvas;
    void updateCaption();

    HeadSummaryData data_;
    QString message_;
    Metric metric_ = Metric::Entropy;
    QComboBox* metricBox_ = nullptr;
    QLabel* caption_ = nullptr;
    QScrollArea* scroll_ = nullptr;
    HeadSummaryCanvas* canvas_ = nullptr;
};

}  // namespace wp::ui
