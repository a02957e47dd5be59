// Shared by the fuzz targets: a scratch folder of this process for parsers that read from files.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>

#include <unistd.h>

namespace wp::fuzz {

// One folder per process, so that parallel fuzzing jobs do not overwrite each other's input.
inline const std::filesystem::path& scratch_dir() {
    static const std::filesystem::path dir = [] {
        auto d = std::filesystem::temp_directory_path() / ("wp-fuzz-" + std::to_string(::getpid()));
        std::filesystem::create_directories(d);
        static std::string to_remove;  // constructed before the atexit below, so destroyed after it runs
        to_remove = d.string();
        std::atexit([] {  // libFuzzer ends with exit(), so a finished run leaves nothing in /tmp
            std::error_code ec;
            std::filesystem::remove_all(to_remove, ec);
        });
        return d;
    }();
    return dir;
}

inline std::filesystem::path write_scratch(const std::string& name, const std::uint8_t* data, std::size_t size) {
    auto path = scratch_dir() / name;
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
    return path;
}

}  // namespace wp::fuzz
