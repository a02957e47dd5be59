// Horizontal bars, one row per label: the label's name, a bar as long as its value (0..1) and the
// value's text; one row highlighted (the arg-max). Painted, so a hundred labels cost nothing.
#pragma once

#include <QVector>
#include <QWidget>

namespace wp::ui {

class ProbabilityBars : public QWidget {
    Q_OBJECT
public:
    struct Row {
        QString label;
        double value = 0;  // the bar's length, 0..1
        QString text;      // what is written after the bar
    };

    explicit ProbabilityBars(QWidget* parent = nullptr);

    void setRows(const QVector<Row>& rows, int highlighted);
    const QVector<Row>& rows() const { return rows_; }
    int highlighted() const { return highlighted_; }

    QSize sizeHint() const override;
    QSize minimumSizeHint() const override;

protected:
    void paintEvent(QPaintEvent* e) override;

private:
    int rowHeight() const;
    int labelWidth() const;

    QVector<Row> rows_;
    int highlighted_ = -1;
};

}  // namespace wp::ui
