// The logit lens: what the residual stream after each layer would predict as the next token, read
// out as the model's last layer is. Columns are positions of the text (the input token below each,
// the token that really follows above), rows are layers with the model's output at the top; each
// cell shows its top token, shaded by its probability, bold when it is the token that follows.
// Hover: the cell's top five and the entropy.
//
// Long texts are shown a window of positions at a time (the lm_head readout at every layer costs
// the most): the row of controls picks the window and emits windowRequested; the grid itself only
// shows what setData gives it. Painting draws only the visible cells; token texts are decoded on
// the worker (LensViewData::pieces).
#pragma once

#include <QColor>
#include <QWidget>
#include <vector>

#include "engine/lens_view_data.h"

class QLabel;
class QSpinBox;
class QTimer;
class QToolButton;

namespace wp::ui {

class LensCanvas;

class LensGrid : public QWidget {
    Q_OBJECT
public:
    explicit LensGrid(QWidget* parent = nullptr);
    ~LensGrid() override;

    void setData(LensViewData data);
    const LensViewData& data() const { return data_; }
    // No grid, and why (running, an error, a model without a language-model head).
    void showMessage(const QString& message);

    // The window the controls ask for: first position (-1: the last `count`) and count.
    int windowFirst() const;
    int windowCount() const;
    void resetWindow();  // the last positions of a new text

    // The cell's top token as shown, and its hover text (top five with probabilities, entropy).
    QString cellText(int layer, int column) const;
    QString describeCell(int layer, int column) const;
    // Where a cell is in canvas() coordinates; empty when it is scrolled out of view.
    QRect cellRect(int layer, int column) const;
    QWidget* canvas() const;

signals:
    void windowRequested(int first, int count);

protected:
    void changeEvent(QEvent* event) override;

private:
    friend class LensCanvas;
    void syncControls();
    void requestWindow(int first);
    void rebuildColors();

    LensViewData data_;
    QString message_;
    bool explicitWindow_ = false;  // the user moved the window (else: the last positions)
    QHash<int, QString> visible_;  // pieces as shown (space -> ·, newline -> ↵)
    std::vector<QRgb> heat_;       // background by probability, 0..100 %

    QSpinBox* first_ = nullptr;
    QSpinBox* count_ = nullptr;
    QToolButton* earlier_ = nullptr;
    QToolButton* later_ = nullptr;
    QLabel* caption_ = nullptr;
    QTimer* debounce_ = nullptr;
    LensCanvas* canvas_ = nullptr;
    bool syncing_ = false;
};

}  // namespace wp::ui
