// Where the main window opens: where the user left it, when that still lies on a screen, or else
// at a size that fits the screen's available geometry (what is left after panels and docks).
#pragma once

#include <QByteArray>
#include <QRect>
#include <QSize>

class QWidget;

namespace wp::ui {

// Restores `savedGeometry` (from QWidget::saveGeometry) when the restored window lies inside
// the available geometry of a screen. Otherwise, and when nothing was saved, the window takes
// `preferred` shrunk to 90% of its screen's available size (the rest leaves room for the window
// frame), centred on that screen. Call before show(). Returns whether the saved geometry was used.
bool placeWindow(QWidget* window, const QByteArray& savedGeometry, QSize preferred);

// Whether `rect`, in global coordinates, lies inside the available geometry of one screen.
bool liesOnAScreen(const QRect& rect);

}  // namespace wp::ui
