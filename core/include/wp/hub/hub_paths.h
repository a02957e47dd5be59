// Where the Hugging Face hub's files live on this machine, as huggingface_hub decides it, so that
// Windowpane, transformers and huggingface-cli share one cache and one login:
//   cache:  HF_HUB_CACHE, else HUGGINGFACE_HUB_CACHE, else HF_HOME/hub
//   home:   HF_HOME, else $XDG_CACHE_HOME/huggingface, else ~/.cache/huggingface
//   token:  HF_TOKEN (the variable), else the file HF_TOKEN_PATH, else HF_HOME/token
//   server: HF_ENDPOINT, else https://huggingface.co
#pragma once

#include <filesystem>
#include <optional>
#include <string>

namespace wp {

struct HubPaths {
    std::filesystem::path home;        // HF_HOME
    std::filesystem::path cache;       // the hub cache: models--ORG--NAME folders
    std::filesystem::path token_file;  // where huggingface-cli login keeps the token
    std::string endpoint;              // no trailing slash
};

// From the environment, as described above ("~" expanded). Throws wp::Error when neither the
// variables nor HOME say where the cache is.
HubPaths hub_paths();

// The access token: HF_TOKEN when set and not empty, else the token file's first line; nullopt
// when there is none.
std::optional<std::string> hub_token(const HubPaths& paths);
// Writes `token` to paths.token_file (readable by the user only), as huggingface-cli login does.
// Throws wp::Error when it cannot.
void save_hub_token(const HubPaths& paths, const std::string& token);

// "ORG/NAME" (or an old canonical "NAME") as the hub accepts it: parts of letters, digits, '-', '_'
// and '.', neither starting or ending with '-' or '.', no "--" or "..", at most 96 characters each.
bool is_repo_id(const std::string& s);
// The cache folder name of a model repo: "models--ORG--NAME".
std::string repo_folder_name(const std::string& repo_id);
// The reverse: "ORG/NAME" for a model repo's folder name; nullopt for anything else.
std::optional<std::string> repo_id_of_folder(const std::string& folder_name);

}  // namespace wp
