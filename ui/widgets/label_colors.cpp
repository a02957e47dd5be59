#include "widgets/label_colors.h"

#include <algorithm>

namespace wp::ui {

namespace {

// Well-separated hues first (blue, orange, green, purple, red, teal, olive, pink), then the golden
// angle for models with more groups.
int hue(int index) {
    index = std::max(index, 0);  // indexOf's -1 (not a known group) takes the first colour
    static constexpr int kHues[] = {212, 28, 135, 275, 355, 180, 55, 320};
    constexpr int n = sizeof kHues / sizeof kHues[0];
    return index < n ? kHues[index] : (kHues[index % n] + 137 * (index / n)) % 360;
}

}  // namespace

bool isDark(const QPalette& palette) { return palette.color(QPalette::Base).lightness() < 128; }

QString labelGroup(const QString& label) {
    if (label.size() > 2 && (label.startsWith(QLatin1String("B-")) || label.startsWith(QLatin1String("I-"))))
        return label.mid(2);
    return label;
}

QStringList entityGroups(const QStringList& labels) {
    QStringList out;
    for (const QString& l : labels) {
        const QString g = labelGroup(l);
        if (g != QLatin1String("O") && !out.contains(g)) out << g;
    }
    return out;
}

QColor groupBackground(int index, const QPalette& palette) {
    return isDark(palette) ? QColor::fromHsl(hue(index), 110, 62) : QColor::fromHsl(hue(index), 200, 212);
}

QColor groupAccent(int index, const QPalette& palette) {
    return isDark(palette) ? QColor::fromHsl(hue(index), 170, 140) : QColor::fromHsl(hue(index), 170, 105);
}

}  // namespace wp::ui
