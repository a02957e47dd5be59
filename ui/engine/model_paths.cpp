#include "engine/model_paths.h"

#include <QCoreApplication>
#include <QFileInfo>

#include "wp/model/model_config.h"

namespace wp::ui {

// Core's check, so that the app and the engine agree on what a GGUF file is.
bool isGgufFile(const QString& path) { return !path.isEmpty() && wp::is_gguf_file(path.toStdString()); }

bool isModelPath(const QString& path) {
    return !path.isEmpty() && (QFileInfo::exists(path + QStringLiteral("/config.json")) || isGgufFile(path));
}

QString ggufFileFilter() {
    return QCoreApplication::translate("wp::ui::ModelPaths", "GGUF models (*.gguf);;All files (*)");
}

}  // namespace wp::ui
