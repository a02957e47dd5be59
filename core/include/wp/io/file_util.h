// Reading the small files a model folder or the user names (JSON, templates, tokenizer models).
#pragma once

#include <cstddef>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

namespace wp {

// The largest text file read whole: far above any config, template or tokenizer a model ships
// (tokenizer.json files reach about 35 MB), far below what would exhaust memory.
inline constexpr std::size_t kMaxTextFileBytes = std::size_t{64} << 20;

// The whole file as bytes. Only a regular file is read: a FIFO, device or folder is refused at once
// (opening never waits for a writer), and so is a file over `max_bytes`; each failure is a
// wp::Error naming the file ("<path>: not a regular file").
std::string read_text_file(const std::filesystem::path& path, std::size_t max_bytes = kMaxTextFileBytes);

// Writes `bytes` to a temporary file beside `path` (with `perms` when given, set before any byte is
// written) and renames it over `path`, so a reader sees the old file or the new one, never half of
// one; the folders on the way are created. Throws wp::Error "<path>: cannot write: <why>".
void write_file_atomically(const std::filesystem::path& path, std::string_view bytes,
                           std::optional<std::filesystem::perms> perms = std::nullopt);

}  // namespace wp
