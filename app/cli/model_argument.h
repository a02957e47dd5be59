// --model: a folder, or ORG/NAME[@REVISION] from the Hugging Face cache (wp/hub/hub_cache.h).
#pragma once

#include <string>

#include "args.h"

namespace wp::cli {

// The folder --model names (required option).
std::string model_dir(const Args& a);
// The folder or file one model reference names (a path as it is, else a hub id).
std::string resolve_model(const std::string& reference);

}  // namespace wp::cli
