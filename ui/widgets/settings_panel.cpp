#include "widgets/settings_panel.h"

#include <QCheckBox>
#include <QDoubleSpinBox>
#include <QFormLayout>
#include <QLabel>
#include <QPlainTextEdit>
#include <QSpinBox>
#include <QVBoxLayout>

namespace wp::ui {

SettingsPanel::SettingsPanel(QWidget* parent) : QWidget(parent) {
    auto* layout = new QVBoxLayout(this);
    auto* sysLabel = new QLabel(tr("System prompt"), this);
    layout->addWidget(sysLabel);
    system_ = new QPlainTextEdit(this);
    system_->setObjectName("systemPrompt");
    system_->setPlaceholderText(tr("Optional instructions for the model"));
    system_->setMaximumHeight(90);
    layout->addWidget(system_);
    systemNote_ = new QLabel(this);
    systemNote_->setObjectName("systemPromptNote");
    systemNote_->setWordWrap(true);
    systemNote_->setVisible(false);
    layout->addWidget(systemNote_);

    auto* form = new QFormLayout;
    greedy_ = new QCheckBox(tr("Greedy (always the most probable token)"), this);
    form->addRow(greedy_);
    temperature_ = new QDoubleSpinBox(this);
    temperature_->setRange(0.01, 5.0);
    temperature_->setSingleStep(0.05);
    temperature_->setDecimals(2);
    form->addRow(tr("Temperature"), temperature_);
    topK_ = new QSpinBox(this);
    topK_->setRange(0, 100000);
    topK_->setSpecialValueText(tr("off"));
    form->addRow(tr("Top-k"), topK_);
    topP_ = new QDoubleSpinBox(this);
    topP_->setRange(0.01, 1.0);
    topP_->setSingleStep(0.05);
    topP_->setDecimals(2);
    form->addRow(tr("Top-p"), topP_);
    minP_ = new QDoubleSpinBox(this);
    minP_->setRange(0.0, 1.0);
    minP_->setSingleStep(0.01);
    minP_->setDecimals(2);
    minP_->setSpecialValueText(tr("off"));
    form->addRow(tr("Min-p"), minP_);
    repetition_ = new QDoubleSpinBox(this);
    repetition_->setRange(0.5, 3.0);
    repetition_->setSingleStep(0.05);
    repetition_->setDecimals(2);
    form->addRow(tr("Repetition penalty"), repetition_);
    maxTokens_ = new QSpinBox(this);
    maxTokens_->setRange(1, 1 << 20);
    form->addRow(tr("Max new tokens"), maxTokens_);
    seed_ = new QSpinBox(this);
    seed_->setRange(-1, 1 << 30);
    seed_->setSpecialValueText(tr("random"));
    form->addRow(tr("Seed"), seed_);
    lookup_ = new QSpinBox(this);
    lookup_->setObjectName("promptLookup");
    lookup_->setRange(0, 64);
    lookup_->setSpecialValueText(tr("off"));
    lookup_->setToolTip(tr("Greedy only: up to this many tokens copied from earlier in the conversation and "
                           "checked in one pass. The reply is the same; it comes faster when it quotes the text."));
    form->addRow(tr("Prompt lookup"), lookup_);
    layout->addLayout(form);
    layout->addStretch();

    setSettings(GenerationSettings{});
    connect(greedy_, &QCheckBox::toggled, this, [this](bool on) {
        for (QWidget* w : std::initializer_list<QWidget*>{temperature_, topK_, topP_, minP_, seed_}) w->setEnabled(!on);
        lookup_->setEnabled(on);
        emit changed();
    });
    for (auto* s : {temperature_, topP_, minP_, repetition_})
        connect(s, &QDoubleSpinBox::valueChanged, this, &SettingsPanel::changed);
    for (auto* s : {topK_, maxTokens_, seed_, lookup_}) connect(s, &QSpinBox::valueChanged, this, &SettingsPanel::changed);
    connect(system_, &QPlainTextEdit::textChanged, this, &SettingsPanel::changed);
}

GenerationSettings SettingsPanel::settings() const {
    GenerationSettings s;
    s.greedy = greedy_->isChecked();
    s.temperature = temperature_->value();
    s.topK = topK_->value();
    s.topP = topP_->value();
    s.minP = minP_->value();
    s.repetitionPenalty = repetition_->value();
    s.maxNewTokens = maxTokens_->value();
    s.seed = seed_->value();
    s.promptLookup = lookup_->value();
    return s;
}

void SettingsPanel::setSettings(const GenerationSettings& s) {
    const QSignalBlocker b1(greedy_), b2(temperature_), b3(topK_), b4(topP_), b5(minP_), b6(repetition_),
        b7(maxTokens_), b8(seed_), b9(lookup_);
    greedy_->setChecked(s.greedy);
    temperature_->setValue(s.temperature);
    topK_->setValue(s.topK);
    topP_->setValue(s.topP);
    minP_->setValue(s.minP);
    repetition_->setValue(s.repetitionPenalty);
    maxTokens_->setValue(s.maxNewTokens);
    seed_->setValue(static_cast<int>(s.seed));
    lookup_->setValue(s.promptLookup);
    for (QWidget* w : std::initializer_list<QWidget*>{temperature_, topK_, topP_, minP_, seed_}) w->setEnabled(!s.greedy);
    lookup_->setEnabled(s.greedy);
}

QString SettingsPanel::systemPrompt() const { return systemSupported_ ? system_->toPlainText() : QString(); }

void SettingsPanel::setSystemPrompt(const QString& text) {
    const QSignalBlocker b(system_);
    system_->setPlainText(text);
}

void SettingsPanel::setSystemPromptSupported(bool supported, const QString& reason) {
    systemSupported_ = supported;
    system_->setEnabled(supported);
    systemNote_->setVisible(!supported);
    systemNote_->setText(tr("This model's chat template has no system role: \"%1\". The system prompt is not used.").arg(reason));
    system_->setToolTip(supported ? QString() : systemNote_->text());
}

}  // namespace wp::ui
