// The controls above the mask view's canvas: mode, layer, head, log scale, all layers, zoom and
// export in one row; in cache mode a second row with the step slider. It shows what sync() gives
// it and reports the user's choices as signals (never for changes made by sync() itself).
#pragma once

#include <QString>
#include <QWidget>

#include "engine/mask_view_data.h"
#include "widgets/mask_view.h"

class QComboBox;
class QLabel;
class QSlider;
class QToolButton;

namespace wp::ui {

class MaskViewToolbar : public QWidget {
    Q_OBJECT
public:
    struct State {
        MaskView::Mode mode = MaskView::Mode::Mask;
        int layer = 0;
        int head = -1;  // -1: average over heads
        int step = 0;
        bool logScale = false;
        bool smallMultiples = false;
        QString zoomText;  // "8 px/cell", "160 px"
    };

    explicit MaskViewToolbar(QWidget* parent);

    // Layer captions, heads and cache steps come from data.
    void sync(const MaskViewData& data, const State& state);

signals:
    void modeChosen(wp::ui::MaskView::Mode mode);
    void layerChosen(int layer);
    void headChosen(int head);
    void logScaleChosen(bool on);
    void smallMultiplesChosen(bool on);
    void stepChosen(int step);
    void zoomByRequested(double factor);
    void fitRequested();
    void exportRequested(bool svg);

private:
    QComboBox* modeBox_ = nullptr;
    QComboBox* layerBox_ = nullptr;
    QComboBox* headBox_ = nullptr;
    QToolButton* multiplesButton_ = nullptr;
    QToolButton* logButton_ = nullptr;
    QLabel* zoomLabel_ = nullptr;
    QToolButton* exportButton_ = nullptr;
    QWidget* stepRow_ = nullptr;
    QSlider* stepSlider_ = nullptr;
    QLabel* stepLabel_ = nullptr;
    bool syncing_ = false;
};

}  // namespace wp::ui
