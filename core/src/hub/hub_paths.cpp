#include "wp/hub/hub_paths.h"

#include <cstdlib>
#include <fstream>

#include "wp/error.h"
#include "wp/io/file_util.h"

namespace wp {

namespace {

std::optional<std::string> env(const char* name) {
    const char* v = std::getenv(name);
    if (v == nullptr || *v == '\0') return std::nullopt;
    return std::string(v);
}

// "~" and "~/..." as Python's os.path.expanduser reads them.
std::filesystem::path expand_user(const std::string& p) {
    if (p == "~" || p.rfind("~/", 0) == 0) {
        const auto home = env("HOME");
        if (!home) throw Error("cannot expand " + p + ": HOME is not set");
        return std::filesystem::path(*home) / p.substr(p.size() > 1 ? 2 : 1);
    }
    return p;
}

bool name_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
           c == '.';
}

bool is_part(const std::string& s) {
    if (s.empty() || s.size() > 96) return false;
    for (char c : s)
        if (!name_char(c)) return false;
    if (s.front() == '-' || s.front() == '.' || s.back() == '-' || s.back() == '.') return false;
    return s.find("--") == std::string::npos && s.find("..") == std::string::npos;
}

}  // namespace

HubPaths hub_paths() {
    HubPaths p;
    if (const auto home = env("HF_HOME")) {
        p.home = expand_user(*home);
    } else if (const auto xdg = env("XDG_CACHE_HOME")) {
        p.home = expand_user(*xdg) / "huggingface";
    } else {
        if (!env("HOME")) throw Error("cannot tell where the Hugging Face cache is: set HF_HOME or HOME");
        p.home = expand_user("~/.cache/huggingface");
    }
    if (const auto c = env("HF_HUB_CACHE"))
        p.cache = expand_user(*c);
    else if (const auto old = env("HUGGINGFACE_HUB_CACHE"))
        p.cache = expand_user(*old);
    else
        p.cache = p.home / "hub";
    const auto token_path = env("HF_TOKEN_PATH");
    p.token_file = token_path ? expand_user(*token_path) : p.home / "token";
    p.endpoint = env("HF_ENDPOINT").value_or("https://huggingface.co");
    while (!p.endpoint.empty() && p.endpoint.back() == '/') p.endpoint.pop_back();
    return p;
}

std::optional<std::string> hub_token(const HubPaths& paths) {
    if (const auto t = env("HF_TOKEN")) return t;
    std::ifstream in(paths.token_file);
    std::string line;
    if (!in || !std::getline(in, line)) return std::nullopt;
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) line.pop_back();
    if (line.empty()) return std::nullopt;
    return line;
}

void save_hub_token(const HubPaths& paths, const std::string& token) {
    if (token.empty() || token.find_first_of("\r\n") != std::string::npos)
        throw Error("a Hugging Face token is one line of text");
    write_file_atomically(paths.token_file, token,
                          std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
}

bool is_repo_id(const std::string& s) {
    const auto slash = s.find('/');
    if (slash == std::string::npos) return is_part(s);  // the hub's old canonical names ("gpt2")
    if (s.find('/', slash + 1) != std::string::npos) return false;
    return is_part(s.substr(0, slash)) && is_part(s.substr(slash + 1));
}

std::string repo_folder_name(const std::string& repo_id) {
    const auto slash = repo_id.find('/');
    if (slash == std::string::npos) return "models--" + repo_id;
    return "models--" + repo_id.substr(0, slash) + "--" + repo_id.substr(slash + 1);
}

std::optional<std::string> repo_id_of_folder(const std::string& folder_name) {
    if (folder_name.rfind("models--", 0) != 0) return std::nullopt;
    std::string id = folder_name.substr(8);
    const auto sep = id.find("--");
    if (sep != std::string::npos) id = id.substr(0, sep) + "/" + id.substr(sep + 2);
    if (!is_repo_id(id)) return std::nullopt;
    return id;
}

}  // namespace wp
