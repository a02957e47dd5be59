#include "theme.h"

#include <QApplication>
#include <QPalette>
#include <QStyle>
#include <QStyleFactory>
#include <QWidget>

namespace wp::ui {

namespace {

QPalette darkPalette() {
    QPalette p;
    p.setColor(QPalette::Window, QColor(37, 37, 40));
    p.setColor(QPalette::WindowText, QColor(230, 230, 230));
    p.setColor(QPalette::Base, QColor(28, 28, 30));
    p.setColor(QPalette::AlternateBase, QColor(45, 45, 48));
    p.setColor(QPalette::Text, QColor(230, 230, 230));
    p.setColor(QPalette::Button, QColor(50, 50, 54));
    p.setColor(QPalette::ButtonText, QColor(230, 230, 230));
    p.setColor(QPalette::Highlight, QColor(70, 120, 200));
    p.setColor(QPalette::HighlightedText, Qt::white);
    p.setColor(QPalette::PlaceholderText, QColor(150, 150, 150));
    p.setColor(QPalette::ToolTipBase, QColor(50, 50, 54));
    p.setColor(QPalette::ToolTipText, QColor(230, 230, 230));
    return p;
}

}  // namespace

void applyTheme(const QString& theme, QWidget* window) {
    QApplication::setStyle(QStyleFactory::create("Fusion"));
    if (theme == "dark") {
        QApplication::setPalette(darkPalette());
    } else if (theme == "light") {
        QApplication::setPalette(QApplication::style()->standardPalette());
    } else {
        // The platform theme's palette (light or dark as the desktop is set).
        QApplication::setPalette(QPalette());
    }
    const bool dark = QApplication::palette().color(QPalette::Window).lightness() < 128;
    window->setStyleSheet(dark ? "#userMessage { background: #2c3440; border-radius: 6px; }"
                                 "#assistantMessage { background: #26292e; border-radius: 6px; }"
                                 "#errorMessage { background: #4a2626; border-radius: 6px; }"
                               : "#userMessage { background: #e8f0fb; border-radius: 6px; }"
                                 "#assistantMessage { background: #f6f6f6; border-radius: 6px; }"
                                 "#errorMessage { background: #fbe4e4; border-radius: 6px; }");
}

}  // namespace wp::ui
