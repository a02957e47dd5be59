// How the app names a model folder: a Hugging Face cache snapshot
// (.../models--ORG--NAME/snapshots/COMMIT) by its repo, ORG/NAME; any other folder by its name.
#pragma once

#include <QFileInfo>
#include <QRegularExpression>
#include <QString>

namespace wp::ui {

inline QString modelDisplayName(const QString& path) {
    static const QRegularExpression snapshot(QStringLiteral("/models--([^/]+)/snapshots/[^/]+/?$"));
    const QRegularExpressionMatch m = snapshot.match(path);
    if (m.hasMatch()) {
        QString id = m.captured(1);  // ORG--NAME, or an old canonical NAME
        const int sep = id.indexOf(QStringLiteral("--"));
        if (sep >= 0) id.replace(sep, 2, QStringLiteral("/"));
        return id;
    }
    return QFileInfo(path).fileName();
}

}  // namespace wp::ui
