// Sampling settings and the system prompt of the current conversation.
#pragma once

#include <QWidget>

#include "engine/types.h"

class QCheckBox;
class QDoubleSpinBox;
class QLabel;
class QPlainTextEdit;
class QSpinBox;

namespace wp::ui {

class SettingsPanel : public QWidget {
    Q_OBJECT
public:
    explicit SettingsPanel(QWidget* parent = nullptr);

    GenerationSettings settings() const;
    void setSettings(const GenerationSettings& s);
    QString systemPrompt() const;
    void setSystemPrompt(const QString& text);
    // Disables the system prompt field, showing why (e.g. Gemma's template has no system role).
    void setSystemPromptSupported(bool supported, const QString& reason);
    bool systemPromptSupported() const { return systemSupported_; }

signals:
    void changed();

private:
    QCheckBox* greedy_;
    QDoubleSpinBox* temperature_;
    QSpinBox* topK_;
    QDoubleSpinBox* topP_;
    QDoubleSpinBox* minP_;
    QDoubleSpinBox* repetition_;
    QSpinBox* maxTokens_;
    QSpinBox* seed_;
    QSpinBox* lookup_;
    QPlainTextEdit* system_;
    QLabel* systemNote_;
    bool systemSupported_ = true;
};

}  // namespace wp::ui
