// Numbers as the widgets show them.
#pragma once

#include <QString>

namespace wp::ui {

// 512 B, 1.5 KB, 3.2 MB, ... (powers of 1024).
inline QString humanBytes(double bytes) {
    const char* units[] = {"B", "KB", "MB", "GB", "TB"};
    int u = 0;
    while (bytes >= 1024 && u < 4) {
        bytes /= 1024;
        ++u;
    }
    return QStringLiteral("%1 %2").arg(bytes, 0, 'f', u == 0 ? 0 : 1).arg(units[u]);
}

}  // namespace wp::ui
