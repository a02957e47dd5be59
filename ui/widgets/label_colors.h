// Colours of a classification model's labels, for the Classify tab's entity spans and legend:
// one hue per entity group (the label without its B-/I- prefix), tinted for a light or a dark
// palette so the text stays readable on top of it.
#pragma once

#include <QColor>
#include <QPalette>
#include <QStringList>

namespace wp::ui {

// "B-PER" and "I-PER" -> "PER"; "O" stays "O".
QString labelGroup(const QString& label);

// The entity groups of `labels` in order of first appearance, without "O" (which marks no entity).
QStringList entityGroups(const QStringList& labels);

// The background of an entity of group number `index` (in entityGroups' order), and the stronger
// colour of its border and legend swatch.
QColor groupBackground(int index, const QPalette& palette);
QColor groupAccent(int index, const QPalette& palette);

bool isDark(const QPalette& palette);

}  // namespace wp::ui
