#include "test_support.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>

#include "io/safetensors.h"
#include "wp/error.h"

namespace wp::test {

fs::path shared_dir() {
    const char* env = std::getenv("WP_SHARED_DIR");
    fs::path p = env != nullptr && *env ? fs::path(env) : fs::path(WP_SHARED_DIR);
    std::error_code ec;
    if (!fs::is_directory(p / "fixtures", ec)) return {};
    return p;
}

bool in_ci() {
    const char* ci = std::getenv("CI");
    return ci != nullptr && *ci != '\0' && std::string(ci) != "0" && std::string(ci) != "false";
}

std::vector<std::uint8_t> read_bytes(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    if (!in) throw std::runtime_error("cannot read " + p.string());
    return std::vector<std::uint8_t>((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

void write_bytes(const fs::path& p, const std::vector<std::uint8_t>& data) {
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
    if (!out) throw std::runtime_error("cannot write " + p.string());
}

void write_text(const fs::path& p, const std::string& text) {
    write_bytes(p, std::vector<std::uint8_t>(text.begin(), text.end()));
}

std::string read_text(const fs::path& p) {
    auto b = read_bytes(p);
    return std::string(b.begin(), b.end());
}

std::vector<int> RefCase::input_ids() const { return meta.at("input_ids").get<std::vector<int>>(); }
std::vector<int> RefCase::greedy_tokens() const { return meta.at("greedy_new_tokens").get<std::vector<int>>(); }

std::vector<float> RefCase::floats(const std::string& key) const {
    auto b = read_bytes(ref_dir / meta.at(key).get<std::string>());
    std::vector<float> out(b.size() / 4);
    std::memcpy(out.data(), b.data(), out.size() * 4);
    return out;
}

std::vector<std::uint8_t> RefCase::bytes(const std::string& key) const {
    return read_bytes(ref_dir / meta.at(key).get<std::string>());
}

std::vector<fs::path> fixture_models() {
    std::vector<fs::path> out;
    const fs::path root = shared_dir();
    if (root.empty()) return out;
    for (const auto& e : fs::recursive_directory_iterator(root / "fixtures"))
        if (e.is_regular_file() && e.path().filename() == "config.json") out.push_back(e.path().parent_path());
    std::sort(out.begin(), out.end());
    return out;
}

std::vector<RefCase> all_cases() {
    std::vector<RefCase> out;
    const fs::path root = shared_dir();
    if (root.empty()) return out;
    for (const fs::path& model : fixture_models()) {
        const fs::path ref = model / "reference";
        if (!fs::is_directory(ref)) continue;
        std::vector<fs::path> jsons;
        for (const auto& e : fs::directory_iterator(ref))
            if (e.path().extension() == ".json") jsons.push_back(e.path());
        std::sort(jsons.begin(), jsons.end());
        for (const auto& j : jsons) {
            RefCase c;
            c.model_dir = model;
            c.ref_dir = ref;
            c.name = fs::relative(model, root / "fixtures").string() + "/" + j.stem().string();
            c.meta = nlohmann::json::parse(read_text(j));
            out.push_back(std::move(c));
        }
    }
    return out;
}

std::vector<std::uint8_t> make_raw_safetensors(const std::string& header, std::size_t data_bytes) {
    std::string h = header;
    while (h.size() % 8 != 0) h += ' ';
    std::vector<std::uint8_t> out(8 + h.size() + data_bytes, 0);
    const std::uint64_t n = h.size();
    std::memcpy(out.data(), &n, 8);
    std::memcpy(out.data() + 8, h.data(), h.size());
    for (std::size_t i = 0; i < data_bytes; ++i) out[8 + h.size() + i] = static_cast<std::uint8_t>(i * 7);
    return out;
}

std::vector<std::uint8_t> make_safetensors(const std::vector<StTensor>& tensors) {
    std::vector<const StTensor*> sorted;
    for (const auto& t : tensors) sorted.push_back(&t);
    std::sort(sorted.begin(), sorted.end(), [](auto* a, auto* b) { return a->name < b->name; });
    nlohmann::ordered_json h;
    h["__metadata__"] = {{"format", "pt"}};
    std::size_t off = 0;
    for (const auto* t : sorted) {
        h[t->name] = {{"dtype", t->dtype}, {"shape", t->shape}, {"data_offsets", {off, off + t->data.size()}}};
        off += t->data.size();
    }
    std::vector<std::uint8_t> out = make_raw_safetensors(h.dump(), 0);
    for (const auto* t : sorted) out.insert(out.end(), t->data.begin(), t->data.end());
    return out;
}

std::vector<StTensor> load_safetensors(const fs::path& p) {
    SafeTensorsFile f(p);
    std::vector<StTensor> out;
    for (const auto& [name, tv] : f.tensors())
        out.push_back({name, dtype_name(tv.dtype), tv.shape, std::vector<std::uint8_t>(tv.data, tv.data + tv.bytes)});
    return out;
}

TempDir::TempDir() {
    static std::mt19937_64 rng(std::random_device{}());
    path_ = fs::temp_directory_path() / ("wp-test-" + std::to_string(rng()));
    fs::create_directories(path_);
}

TempDir::~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
}

void TempDir::copy_files_from(const fs::path& src) const {
    for (const auto& e : fs::directory_iterator(src))
        if (e.is_regular_file()) {
            fs::copy_file(e.path(), path_ / e.path().filename(), fs::copy_options::overwrite_existing);
            fs::permissions(path_ / e.path().filename(), fs::perms::owner_read | fs::perms::owner_write,
                            fs::perm_options::add);
        }
}

std::vector<float> randn(std::size_t n, std::uint64_t seed, float scale) {
    std::mt19937_64 rng(seed);
    std::normal_distribution<float> d(0.0f, scale);
    std::vector<float> v(n);
    for (auto& x : v) x = d(rng);
    return v;
}

std::string error_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const Error& e) {
        return e.what();
    } catch (const std::exception& e) {
        return std::string("unexpected exception type: ") + e.what();
    }
    return "no error";
}

std::vector<double> log_softmax(const float* z, int n) {
    double m = z[0];
    for (int i = 1; i < n; ++i) m = std::max<double>(m, z[i]);
    double s = 0;
    for (int i = 0; i < n; ++i) s += std::exp(z[i] - m);
    std::vector<double> out(n);
    for (int i = 0; i < n; ++i) out[i] = z[i] - m - std::log(s);
    return out;
}

float max_abs_diff(const float* a, const float* b, std::size_t n) {
    float m = 0;
    for (std::size_t i = 0; i < n; ++i) {
        const float d = std::fabs(a[i] - b[i]);
        if (!(d <= m)) m = std::isnan(d) ? INFINITY : d;
    }
    return m;
}

}  // namespace wp::test
