#include "model_argument.h"

#include "wp/hub/hub_cache.h"
#include "wp/hub/hub_paths.h"

namespace wp::cli {

std::string model_dir(const Args& a) { return resolve_model(a.str("model")); }

std::string resolve_model(const std::string& ref) {
    std::filesystem::path cache;
    try {
        cache = hub_paths().cache;
    } catch (const std::exception&) {
        return ref;  // no cache location (no HOME): only folders
    }
    return resolve_model_reference(ref, cache).string();
}

}  // namespace wp::cli
