// How the app names a model folder: a Hugging Face cache snapshot
// (.../models--ORG--NAME/snapshots/COMMIT) by its repo, ORG/NAME; any other folder by its name.
#pragma once

#include <QFileInfo>
#include <QRegularExpression>
#include <QString>

namespace wp::ui {

inline QString modelDisplayName(const QString& path) {
    static const QRegularExpression snapshot(QStringLiteral("/models--([^/]+?)--([^/]+)/snapshots/[^/]+/?$"));
    const QRegularExpressionMatch m = snapshot.match(path);
    if (m.hasMatch()) return m.captured(1) + QLatin1Char('/') + m.captured(2);
    return QFileInfo(path).fileName();
}

}  // namespace wp::ui
