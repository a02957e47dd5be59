// The look of the app: Fusion style with the system's, a light or a dark palette, and the message
// bubble colours that go with it.
#pragma once

#include <QString>

class QWidget;

namespace wp::ui {

// `theme` is "system", "light" or "dark". Sets the application's style and palette, and on
// `window` the style sheet that colours the message widgets (#userMessage, #assistantMessage,
// #errorMessage) for a light or a dark palette.
void applyTheme(const QString& theme, QWidget* window);

}  // namespace wp::ui
