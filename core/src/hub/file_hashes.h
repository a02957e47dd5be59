// The hashes the hub names its files by: SHA-256 for LFS files (the ETag of their download), the
// git blob id (SHA-1 of "blob <size>\0" + bytes) for the others.
#pragma once

#include <filesystem>
#include <string>

namespace wp {

std::string sha256_file(const std::filesystem::path& file);        // lower-case hex; throws wp::Error
std::string git_blob_sha1_file(const std::filesystem::path& file);  // lower-case hex; throws wp::Error

}  // namespace wp
