// Shared helpers for the core tests: where the fixtures are, reading reference files, writing
// safetensors files for malformed-input tests.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace wp::test {

namespace fs = std::filesystem;

// The shared folder (CMake cache variable WP_SHARED_DIR, overridable by the environment variable
// WP_SHARED_DIR). Empty when it does not exist.
fs::path shared_dir();
bool in_ci();

// Time bounds in tests (hostile inputs end quickly) are scaled by this: the sanitizer builds
// (tests/sanitizers/run.sh) run several times slower.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
inline constexpr int kTimeScale = 10;
#else
inline constexpr int kTimeScale = 1;
#endif
template <class Duration>
constexpr Duration time_bound(Duration d) {
    return d * kTimeScale;
}

// Skips the current test when the shared folder is missing, or fails it when CI is set.
#define WP_REQUIRE_SHARED()                                                                  \
    do {                                                                                     \
        if (::wp::test::shared_dir().empty()) {                                              \
            if (::wp::test::in_ci()) FAIL() << "shared fixtures missing (CI is set): "       \
                                            << WP_SHARED_DIR;                               \
            GTEST_SKIP() << "shared fixtures not found at " << WP_SHARED_DIR                 \
                         << " (set -DWP_SHARED_DIR=... or WP_SHARED_DIR)";                   \
        }                                                                                    \
    } while (0)

struct RefCase {
    fs::path model_dir;
    std::string name;     // "tiny-gemma2/seq40"
    nlohmann::json meta;  // the case's .json
    fs::path ref_dir;

    std::vector<int> input_ids() const;
    std::vector<int> greedy_tokens() const;
    std::vector<float> floats(const std::string& key) const;  // e.g. "logits_file"
    std::vector<std::uint8_t> bytes(const std::string& key) const;
};

// Every case under shared/fixtures/**/reference/*.json (model folder = the reference's parent).
std::vector<RefCase> all_cases();
// Every model folder under shared/fixtures that has a config.json.
std::vector<fs::path> fixture_models();

std::vector<std::uint8_t> read_bytes(const fs::path& p);
void write_bytes(const fs::path& p, const std::vector<std::uint8_t>& data);
void write_text(const fs::path& p, const std::string& text);
std::string read_text(const fs::path& p);

struct StTensor {
    std::string name;
    std::string dtype;  // "F32", "BF16", ...
    std::vector<std::int64_t> shape;
    std::vector<std::uint8_t> data;
};
// Writes a standard safetensors file (sorted names, contiguous data, header padded to 8).
std::vector<std::uint8_t> make_safetensors(const std::vector<StTensor>& tensors);
// Builds a safetensors file from a raw JSON header and a data section.
std::vector<std::uint8_t> make_raw_safetensors(const std::string& header, std::size_t data_bytes);
// Reads every tensor of a safetensors file (through the project's reader).
std::vector<StTensor> load_safetensors(const fs::path& p);

// A fresh temporary folder, removed when the object dies.
class TempDir {
public:
    TempDir();
    ~TempDir();
    const fs::path& path() const { return path_; }
    // Copies every regular file of `src` (not sub-folders) into the temp dir.
    void copy_files_from(const fs::path& src) const;

private:
    fs::path path_;
};

// The message of the wp::Error that `f` throws ("no error" when it throws none).
std::string error_of(const std::function<void()>& f);

// Log-softmax of one row of logits, in double.
std::vector<double> log_softmax(const float* z, int n);

float max_abs_diff(const float* a, const float* b, std::size_t n);
// n normally distributed values, reproducible from `seed`.
std::vector<float> randn(std::size_t n, std::uint64_t seed, float scale = 1.0f);

}  // namespace wp::test
