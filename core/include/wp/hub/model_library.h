// The models this machine has: every snapshot in the Hugging Face hub cache and every folder the
// user added, each described from its config.json and its safetensors headers alone (no weights
// read), so that a library of many gigabytes lists in a moment. Folders added by the user are kept
// in $XDG_CONFIG_HOME/windowpane/library.json (else ~/.config/windowpane/library.json).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace wp {

struct LibraryModel {
    std::string name;              // "ORG/NAME" for the hub cache, the folder's name otherwise
    std::filesystem::path dir;     // the folder a model command opens
    bool from_hub_cache = false;
    std::string commit;            // hub cache: the snapshot's commit
    std::vector<std::string> refs; // hub cache: the refs naming it ("main")
    std::string model_type;        // config.json's, may be empty
    std::string architecture;      // config.json's first architecture, may be empty
    std::string head;              // "chat", "classification", "reward", "token classification", "question answering", "other"
    std::int64_t parameters = 0;   // from the safetensors headers; 0 when they cannot be read
    std::string dtype;             // "BF16", "F32", "F16", "mixed", or empty
    std::uint64_t bytes_on_disk = 0;  // the folder's files (a hub snapshot: the blobs they link to)
    bool supported = false;        // Windowpane opens it
    std::string why;               // when not supported: one line saying why
};

// One model folder, described without loading it. Never throws: what cannot be read becomes
// supported == false and `why`.
LibraryModel describe_model_folder(const std::filesystem::path& dir);

// Every snapshot in `hub_cache` (the newest a ref names first for each repo) and every folder in
// `folders`, in that order; folders that no longer exist are listed with why.
std::vector<LibraryModel> list_library(const std::filesystem::path& hub_cache,
                                       const std::vector<std::filesystem::path>& folders);

// The user's added folders: read (an absent file: none) and written. The path: see above; empty when
// neither XDG_CONFIG_HOME nor HOME is set. Throws wp::Error when the file cannot be written, or
// when it exists and is not what write_library_folders writes.
std::filesystem::path library_folders_file();
std::vector<std::filesystem::path> read_library_folders(const std::filesystem::path& file);
void write_library_folders(const std::filesystem::path& file, const std::vector<std::filesystem::path>& folders);

}  // namespace wp
