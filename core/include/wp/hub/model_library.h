// The models this machine has: every snapshot in the Hugging Face hub cache, the model folders and
// GGUF files in the folders the user added, and the GGUF files LM Studio and Ollama keep, each
// described from its headers alone (config.json and safetensors headers, or a GGUF header; no
// weights read), so that a library of many gigabytes lists in a moment. Folders added by the user
// are kept in $XDG_CONFIG_HOME/windowpane/library.json (else ~/.config/windowpane/library.json).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace wp {

struct LibraryModel {
    // "ORG/NAME" for the hub cache ("ORG/NAME/FILE.gguf" for a GGUF file in a snapshot), Ollama's
    // "MODEL:TAG", the file's name for other GGUF files, the folder's name otherwise.
    std::string name;
    std::filesystem::path dir;     // the folder or GGUF file a model command opens
    bool from_hub_cache = false;
    std::string source = "folder"; // "hub cache", "folder" (added by the user), "LM Studio", "Ollama"
    std::filesystem::path added_folder;  // source "folder": the added folder it was found in
    bool gguf = false;             // dir is a GGUF file
    std::string commit;            // hub cache: the snapshot's commit
    std::vector<std::string> refs; // hub cache: the refs naming it ("main")
    std::string model_type;        // config.json's, may be empty
    std::string architecture;      // config.json's first architecture, may be empty
    std::string head;              // "chat", "classification", "reward", "token classification", "question answering", "other"
    std::int64_t parameters = 0;   // from the safetensors headers; 0 when they cannot be read
    // "BF16", "F32", "F16", "mixed", or empty; a GGUF file's type ("Q4_K_M", from general.file_type)
    // or else its matrices' most common tensor type ("Q8_0").
    std::string dtype;
    std::int64_t context_length = 0;  // max_position_embeddings / ARCH.context_length; 0 when unknown
    std::uint64_t bytes_on_disk = 0;  // the folder's files (a hub snapshot: the blobs they link to)
    bool supported = false;        // Windowpane opens it
    std::string why;               // when not supported: one line saying why
};

// One model folder or GGUF file (wp::is_gguf_file), described without loading it. Never throws:
// what cannot be read becomes supported == false and `why`.
LibraryModel describe_model_folder(const std::filesystem::path& dir);

// Where other apps keep GGUF models: LM Studio's models folders (publisher/model/file.gguf) and
// Ollama's (manifests/ and blobs/). From WP_LMSTUDIO_MODELS (folders separated by ':') and
// OLLAMA_MODELS when set, else ~/.lmstudio/models, ~/.cache/lm-studio/models, ~/.ollama/models and
// the Linux service's /usr/share/ollama/.ollama/models; only those that exist.
struct OtherAppModels {
    std::vector<std::filesystem::path> lmstudio;
    std::vector<std::filesystem::path> ollama;
};
OtherAppModels other_app_models();

// Every snapshot in `hub_cache` (the newest a ref names first for each repo; a snapshot without
// config.json but with GGUF files lists each file), then for each of `folders` the folder itself
// when it is a model folder or a GGUF file, else the model folders and .gguf files below it (a
// few levels deep, hidden folders skipped; the folder itself with why when none), then LM Studio's
// and Ollama's models. A file found twice is listed once.
std::vector<LibraryModel> list_library(const std::filesystem::path& hub_cache,
                                       const std::vector<std::filesystem::path>& folders,
                                       const OtherAppModels& others = other_app_models());

// Ollama's name for one of its blobs ("gemma2:2b"), from the manifests beside its blobs folder;
// empty when it is not an Ollama blob or no manifest names it.
std::string ollama_blob_name(const std::filesystem::path& blob);

// The user's added folders: read (an absent file: none) and written. The path: see above; empty when
// neither XDG_CONFIG_HOME nor HOME is set. Throws wp::Error when the file cannot be written, or
// when it exists and is not what write_library_folders writes.
std::filesystem::path library_folders_file();
std::vector<std::filesystem::path> read_library_folders(const std::filesystem::path& file);
void write_library_folders(const std::filesystem::path& file, const std::vector<std::filesystem::path>& folders);

}  // namespace wp
