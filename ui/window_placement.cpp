#include "window_placement.h"

#include <QGuiApplication>
#include <QScreen>
#include <QWidget>

namespace wp::ui {

bool liesOnAScreen(const QRect& rect) {
    for (const QScreen* s : QGuiApplication::screens())
        if (s->availableGeometry().contains(rect)) return true;
    return false;
}

bool placeWindow(QWidget* window, const QByteArray& savedGeometry, QSize preferred) {
    // restoreGeometry moves a window that would be lost back onto its screen and refuses data
    // saved on a screen of a very different size; what it restores must still fit as a whole.
    if (!savedGeometry.isEmpty() && window->restoreGeometry(savedGeometry)) {
        if (window->isMaximized() || window->isFullScreen() || liesOnAScreen(window->geometry())) return true;
        window->setWindowState(Qt::WindowNoState);
    }
    const QScreen* screen = window->screen() ? window->screen() : QGuiApplication::primaryScreen();
    if (!screen) {
        window->resize(preferred);
        return false;
    }
    const QRect available = screen->availableGeometry();
    const QSize size = preferred.boundedTo(available.size() * 0.9).expandedTo(window->minimumSizeHint());
    window->resize(size);
    window->move(available.center() - QPoint(size.width() / 2, size.height() / 2));
    return false;
}

}  // namespace wp::ui
