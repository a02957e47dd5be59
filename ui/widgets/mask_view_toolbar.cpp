#include "widgets/mask_view_toolbar.h"

#include <QComboBox>
#include <QHBoxLayout>
#include <QLabel>
#include <QMenu>
#include <QSlider>
#include <QToolButton>
#include <QVBoxLayout>
#include <algorithm>

#include "widgets/mask_view_text.h"

namespace wp::ui {

MaskViewToolbar::MaskViewToolbar(QWidget* parent) : QWidget(parent) {
    setObjectName(QStringLiteral("maskToolbar"));
    setSizePolicy(QSizePolicy::Preferred, QSizePolicy::Fixed);
    auto* rows = new QVBoxLayout(this);
    rows->setContentsMargins(0, 0, 0, 0);
    rows->setSpacing(4);

    auto* bar = new QHBoxLayout;
    bar->setSpacing(6);
    modeBox_ = new QComboBox(this);
    modeBox_->setObjectName(QStringLiteral("maskModeBox"));
    modeBox_->addItem(tr("Mask"));
    modeBox_->addItem(tr("Attention"));
    modeBox_->addItem(tr("KV cache"));
    modeBox_->setToolTip(tr("Mask: what each layer may attend to. Attention: what it did attend to. "
                            "KV cache: which positions each layer keeps."));
    connect(modeBox_, &QComboBox::currentIndexChanged, this, [this](int i) {
        if (!syncing_) emit modeChosen(static_cast<MaskView::Mode>(i));
    });
    bar->addWidget(modeBox_);

    layerBox_ = new QComboBox(this);
    layerBox_->setObjectName(QStringLiteral("maskLayerBox"));
    layerBox_->setToolTip(tr("Layer"));
    layerBox_->setSizeAdjustPolicy(QComboBox::AdjustToContents);
    connect(layerBox_, &QComboBox::currentIndexChanged, this, [this](int i) {
        if (!syncing_ && i >= 0) emit layerChosen(i);
    });
    bar->addWidget(layerBox_);

    headBox_ = new QComboBox(this);
    headBox_->setObjectName(QStringLiteral("maskHeadBox"));
    headBox_->setToolTip(tr("Attention head, or the average over all heads"));
    headBox_->setSizeAdjustPolicy(QComboBox::AdjustToContents);
    connect(headBox_, &QComboBox::currentIndexChanged, this, [this](int i) {
        if (!syncing_ && i >= 0) emit headChosen(i - 1);
    });
    bar->addWidget(headBox_);

    logButton_ = new QToolButton(this);
    logButton_->setObjectName(QStringLiteral("maskLogScaleButton"));
    logButton_->setText(tr("log p"));
    logButton_->setCheckable(true);
    logButton_->setToolTip(tr("Colour by log\u2081\u2080 p from 10\u207b\u2074 to 1 instead of \u221ap: "
                              "shows the faint attention of long contexts"));
    connect(logButton_, &QToolButton::toggled, this, [this](bool on) {
        if (!syncing_) emit logScaleChosen(on);
    });
    bar->addWidget(logButton_);

    multiplesButton_ = new QToolButton(this);
    multiplesButton_->setObjectName(QStringLiteral("maskMultiplesButton"));
    multiplesButton_->setText(tr("All layers"));
    multiplesButton_->setCheckable(true);
    multiplesButton_->setToolTip(tr("Show every layer side by side; click one to enlarge it"));
    connect(multiplesButton_, &QToolButton::toggled, this, [this](bool on) {
        if (!syncing_) emit smallMultiplesChosen(on);
    });
    bar->addWidget(multiplesButton_);
    bar->addSpacing(8);

    auto* zoomOut = new QToolButton(this);
    zoomOut->setObjectName(QStringLiteral("maskZoomOut"));
    zoomOut->setText(QStringLiteral("\u2212"));
    zoomOut->setToolTip(tr("Zoom out (Ctrl+wheel, Ctrl+-)"));
    connect(zoomOut, &QToolButton::clicked, this, [this] { emit zoomByRequested(1 / 1.5); });
    bar->addWidget(zoomOut);
    zoomLabel_ = new QLabel(this);
    zoomLabel_->setObjectName(QStringLiteral("maskZoomLabel"));
    zoomLabel_->setMinimumWidth(fontMetrics().horizontalAdvance(QStringLiteral("000.00 px/cell")));
    zoomLabel_->setAlignment(Qt::AlignCenter);
    bar->addWidget(zoomLabel_);
    auto* zoomIn = new QToolButton(this);
    zoomIn->setObjectName(QStringLiteral("maskZoomIn"));
    zoomIn->setText(QStringLiteral("+"));
    zoomIn->setToolTip(tr("Zoom in (Ctrl+wheel, Ctrl++)"));
    connect(zoomIn, &QToolButton::clicked, this, [this] { emit zoomByRequested(1.5); });
    bar->addWidget(zoomIn);
    auto* fit = new QToolButton(this);
    fit->setObjectName(QStringLiteral("maskFitButton"));
    fit->setText(tr("Fit"));
    fit->setToolTip(tr("Fit the whole grid into the view (Ctrl+0)"));
    connect(fit, &QToolButton::clicked, this, [this] { emit fitRequested(); });
    bar->addWidget(fit);
    bar->addStretch(1);

    exportButton_ = new QToolButton(this);
    exportButton_->setObjectName(QStringLiteral("maskExportButton"));
    exportButton_->setText(tr("Export"));
    exportButton_->setPopupMode(QToolButton::InstantPopup);
    auto* menu = new QMenu(exportButton_);
    menu->addAction(tr("PNG image\u2026"), this, [this] { emit exportRequested(false); });
    menu->addAction(tr("SVG image\u2026"), this, [this] { emit exportRequested(true); });
    exportButton_->setMenu(menu);
    bar->addWidget(exportButton_);
    rows->addLayout(bar);

    stepRow_ = new QWidget(this);
    auto* stepLayout = new QHBoxLayout(stepRow_);
    stepLayout->setContentsMargins(0, 0, 0, 0);
    stepLayout->addWidget(new QLabel(tr("Step"), stepRow_));
    stepSlider_ = new QSlider(Qt::Horizontal, stepRow_);
    stepSlider_->setObjectName(QStringLiteral("maskStepSlider"));
    stepSlider_->setToolTip(tr("The cache after the prompt and after each generated token"));
    connect(stepSlider_, &QSlider::valueChanged, this, [this](int v) {
        if (!syncing_) emit stepChosen(v);
    });
    stepLayout->addWidget(stepSlider_, 1);
    stepLabel_ = new QLabel(stepRow_);
    stepLabel_->setObjectName(QStringLiteral("maskStepLabel"));
    stepLayout->addWidget(stepLabel_);
    rows->addWidget(stepRow_);
}

void MaskViewToolbar::sync(const MaskViewData& data, const State& s) {
    using Mode = MaskView::Mode;
    syncing_ = true;
    const int L = static_cast<int>(data.layers.size());
    modeBox_->setCurrentIndex(static_cast<int>(s.mode));
    if (layerBox_->count() != L) {
        layerBox_->clear();
        for (int l = 0; l < L; ++l) layerBox_->addItem(MaskViewText::layerCaption(l, data.layers[l]));
    } else {
        for (int l = 0; l < L; ++l) layerBox_->setItemText(l, MaskViewText::layerCaption(l, data.layers[l]));
    }
    layerBox_->setCurrentIndex(s.layer);
    layerBox_->setEnabled(s.mode != Mode::Cache && L > 0);
    if (headBox_->count() != data.heads + 1) {
        headBox_->clear();
        headBox_->addItem(tr("Average of heads"));
        for (int h = 0; h < data.heads; ++h) headBox_->addItem(tr("Head %1").arg(h));
    }
    headBox_->setCurrentIndex(s.head + 1);
    headBox_->setVisible(s.mode == Mode::Attention);
    logButton_->setChecked(s.logScale);
    logButton_->setVisible(s.mode == Mode::Attention);
    multiplesButton_->setChecked(s.smallMultiples);
    multiplesButton_->setEnabled(s.mode != Mode::Cache);

    const int steps = static_cast<int>(data.cacheSteps.size());
    stepRow_->setVisible(s.mode == Mode::Cache && steps > 0);
    stepSlider_->setRange(0, std::max(0, steps - 1));
    stepSlider_->setValue(s.step);
    if (steps > 0) {
        const auto& step = data.cacheSteps[s.step];
        stepLabel_->setText(tr("%1/%2 \u00b7 %3 \u00b7 %4 positions")
                                .arg(s.step + 1)
                                .arg(steps)
                                .arg(s.step == 0 ? tr("after the prompt") : tr("after generated token %1").arg(s.step))
                                .arg(step.length));
    }
    zoomLabel_->setText(s.zoomText);
    syncing_ = false;
}

}  // namespace wp::ui
