// Whether a path is a model the app can try to open: a folder with a config.json, or a GGUF file
// (a .gguf download or an Ollama blob, told by its first bytes). Used where a saved, dropped or
// chosen path decides whether to open it; the worker's load says why when it still fails.
#pragma once

#include <QString>

namespace wp::ui {

bool isGgufFile(const QString& path);
bool isModelPath(const QString& path);

// The file dialog's filter for GGUF files; "All files" too, for Ollama's blobs without a suffix.
QString ggufFileFilter();

}  // namespace wp::ui
