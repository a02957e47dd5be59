// The measured choice between the AVX-512 and AVX2 decode kernels (decode_kernel_choice.h).
#include "wp/model/decode_kernel_choice.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <random>
#include <system_error>
#include <vector>

#if defined(__x86_64__)
#include <cpuid.h>
#endif
#if defined(__linux__)
#include <unistd.h>
#endif

#include "kernels/kernel_choice.h"
#include "kernels/kernel_scratch.h"
#include "kernels/qmatrix.h"
#include "kernels/thread_pool.h"
#include "kernels/weight_storage.h"
#include "wp/io/file_util.h"
#include "wp/io/float16.h"
#include "wp/io/json_file.h"
#include "wp/model/threads.h"
#include "wp/version.h"

namespace wp {

namespace {

// Bumped whenever a decode kernel changes in a way that could change which set is faster; a
// release's version is part of the key too.
constexpr int kDecodeKernelsRevision = 3;  // 2: sets sized by the last-level cache; 3: q8 panels, bf16 AVX2 prefetch
constexpr int kFileFormat = 1;
// The AVX2 set is taken only when its passes are this much faster (the median ratio): within it,
// the measurement cannot tell the sets apart and the AVX-512 one (the default) stays.
constexpr double kMargin = 1.03;
constexpr std::array<Precision, 4> kPrecisions = {Precision::F32, Precision::BF16, Precision::Q8, Precision::Q4};

std::string cpu_key() {
#if defined(__x86_64__)
    unsigned regs[12] = {};
    char brand[49] = {};
    if (__get_cpuid(0x80000000, &regs[0], &regs[1], &regs[2], &regs[3]) && regs[0] >= 0x80000004) {
        for (unsigned i = 0; i < 3; ++i) __get_cpuid(0x80000002 + i, &regs[4 * i], &regs[4 * i + 1], &regs[4 * i + 2], &regs[4 * i + 3]);
        std::memcpy(brand, regs, 48);
    }
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    __get_cpuid(1, &eax, &ebx, &ecx, &edx);
    const unsigned family = ((eax >> 8) & 0xf) + (((eax >> 8) & 0xf) == 0xf ? (eax >> 20) & 0xff : 0);
    const unsigned model = ((eax >> 4) & 0xf) | (((eax >> 16) & 0xf) << 4);
    std::string name(brand);
    name.erase(0, name.find_first_not_of(' '));
    name.erase(name.find_last_not_of(' ') + 1);
    char id[64];
    std::snprintf(id, sizeof id, " (family %u, model %u, stepping %u)", family, model, eax & 0xf);
    return name + id;
#else
    return "unknown";
#endif
}

// What a pass reads: o.bytes, or twice the last-level cache within [64 MB, 512 MB].
std::size_t pass_bytes(const DecodeChoiceOptions& o) {
    if (o.bytes > 0) return o.bytes;
    constexpr std::size_t kLeast = std::size_t{64} << 20, kMost = std::size_t{512} << 20;
    long llc = 0;
#if defined(__linux__) && defined(_SC_LEVEL3_CACHE_SIZE)
    llc = sysconf(_SC_LEVEL3_CACHE_SIZE);
#endif
    return std::clamp(llc > 0 ? 2 * static_cast<std::size_t>(llc) : kLeast, kLeast, kMost);
}

int pass_count(const DecodeChoiceOptions& o, std::size_t bytes) {
    if (o.passes > 0) return o.passes;
    return std::max<int>(6, static_cast<int>(32 * (std::size_t{64} << 20) / bytes));
}

std::string revision() { return std::string(WP_VERSION) + "/" + std::to_string(kDecodeKernelsRevision); }

double seconds_since(std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

nlohmann::json to_json(const DecodeKernelChoice& c) {
    nlohmann::json j;
    j["cpu"] = c.cpu;
    j["threads"] = c.threads;
    j["revision"] = revision();
    j["avx2"] = nlohmann::json::array();
    for (Precision p : kPrecisions) {
        const auto i = static_cast<std::size_t>(p);
        if (c.avx2[i]) j["avx2"].push_back(precision_name(p));
        j["gbs"][precision_name(p)] = {{"avx512", c.avx512_gbs[i]}, {"avx2", c.avx2_gbs[i]}, {"ratio", c.ratio[i]}};
    }
    return j;
}

// Whether entry e is kept under c's key; an entry of any other shape is not (nor an error).
bool same_key(const nlohmann::json& e, const DecodeKernelChoice& c) {
    if (!e.is_object()) return false;
    const auto cpu = e.find("cpu"), threads = e.find("threads"), rev = e.find("revision");
    return cpu != e.end() && cpu->is_string() && *cpu == c.cpu && threads != e.end() && threads->is_number_integer() &&
           *threads == c.threads && rev != e.end() && rev->is_string() && *rev == revision();
}

// The choice held in entry e (whose key matches); false when it is malformed.
bool from_json(const nlohmann::json& e, DecodeKernelChoice& c) {
    try {
        for (const auto& name : e.at("avx2")) c.avx2[static_cast<std::size_t>(parse_precision(name.get<std::string>()))] = true;
        for (Precision p : kPrecisions) {
            const auto& g = e.at("gbs").at(precision_name(p));
            c.avx512_gbs[static_cast<std::size_t>(p)] = g.at("avx512").get<double>();
            c.avx2_gbs[static_cast<std::size_t>(p)] = g.at("avx2").get<double>();
            c.ratio[static_cast<std::size_t>(p)] = g.at("ratio").get<double>();
        }
        return true;
    } catch (const std::exception&) {
        return false;
    }
}

nlohmann::json read_entries(const std::filesystem::path& file) {
    std::error_code ec;
    if (!std::filesystem::exists(file, ec)) return nlohmann::json::array();
    try {
        const nlohmann::json j = parse_json_file<nlohmann::json>(file);
        if (j.is_object() && j.value("format", 0) == kFileFormat && j.contains("choices") && j["choices"].is_array())
            return j["choices"];
    } catch (const std::exception&) {
    }
    return nlohmann::json::array();
}

void write_entries(const std::filesystem::path& file, const nlohmann::json& entries) {
    try {
        write_file_atomically(file, nlohmann::json{{"format", kFileFormat}, {"choices", entries}}.dump(2) + "\n");
    } catch (const std::exception&) {
        // The choice still applies to this load; it is measured again next time.
    }
}

// The key every measurement and entry carries: this CPU and the thread count to run.
DecodeKernelChoice key_for(const DecodeChoiceOptions& o) {
    DecodeKernelChoice c;
    c.cpu = cpu_key();
    c.threads = std::clamp(o.threads > 0 ? o.threads : default_thread_count(), 1, kMaxThreads);
    KernelOptions wide, narrow;
    narrow.avx512 = false;
    c.applicable = avx512_decode_kernels(wide) && use_avx2_kernels(narrow);
    return c;
}

}  // namespace

KernelOptions DecodeKernelChoice::apply(KernelOptions options) const {
    options.decode_avx2 = avx2;
    return options;
}

DecodeKernelChoice measure_decode_kernels(const DecodeChoiceOptions& o) {
    DecodeKernelChoice c = key_for(o);
    if (!c.applicable) return c;
    c.measured_now = true;
    KernelOptions wide, narrow;
    narrow.avx512 = false;

    // One random matrix at a mid-sized model's shape, copied (converted or quantized) into as many
    // distinct matrices as fill pass_bytes(o), so that every pass reads them from memory.
    constexpr int kRows = 2048, kCols = 2048;
    const std::size_t n = static_cast<std::size_t>(kRows) * kCols;
    std::vector<float> f32(n), x(kCols), y(kRows);
    std::vector<std::uint16_t> bf16(n);
    std::mt19937 rng(11);
    std::normal_distribution<float> nd(0.0f, 0.05f);
    for (std::size_t i = 0; i < n; ++i) {
        bf16[i] = f32_to_bf16(nd(rng));
        f32[i] = bf16_to_f32(bf16[i]);
    }
    for (float& v : x) v = nd(rng) * 20;
    ThreadPool pool(c.threads);
    KernelScratch scratch;
    const std::size_t set_bytes = pass_bytes(o);
    const int passes = pass_count(o, set_bytes);
    for (Precision p : kPrecisions) {
        WeightStorage storage;
        std::vector<QMatrix> ms;
        // bf16 from the f32 values (a copy; from bf16 it would point at the one source matrix).
        const QMatrix first = make_qmatrix(p, kRows, kCols, p == Precision::BF16 ? f32.data() : nullptr,
                                           p == Precision::BF16 ? nullptr : bf16.data(), storage, &pool);
        const std::size_t count = std::max<std::size_t>(2, set_bytes / first.bytes());
        ms.push_back(first);
        while (ms.size() < count)
            ms.push_back(make_qmatrix(p, kRows, kCols, p == Precision::BF16 ? f32.data() : nullptr,
                                      p == Precision::BF16 ? nullptr : bf16.data(), storage, &pool));
        const double bytes = static_cast<double>(first.bytes()) * ms.size();
        auto pass = [&](const KernelOptions& k) {
            const auto t0 = std::chrono::steady_clock::now();
            for (const QMatrix& m : ms) matvec(m, x.data(), y.data(), pool, scratch, k);
            return bytes / seconds_since(t0) / 1e9;
        };
        pass(wide);  // warm-up: scratch sized, pages touched
        pass(narrow);
        const auto i = static_cast<std::size_t>(p);
        // The sets take turns, each starting every other pass. The memory's rate moves from
        // moment to moment, so the choice goes by the median ratio of neighbouring passes, and
        // each set's best pass is what is shown.
        std::vector<double> ratios;
        for (int r = 0; r < passes; ++r) {
            const bool wide_first = r % 2 == 0;
            const double a = pass(wide_first ? wide : narrow);
            const double b = pass(wide_first ? narrow : wide);
            const double w = wide_first ? a : b, v = wide_first ? b : a;
            c.avx512_gbs[i] = std::max(c.avx512_gbs[i], w);
            c.avx2_gbs[i] = std::max(c.avx2_gbs[i], v);
            ratios.push_back(v / w);
        }
        std::nth_element(ratios.begin(), ratios.begin() + ratios.size() / 2, ratios.end());
        c.ratio[i] = ratios[ratios.size() / 2];
        c.avx2[i] = c.ratio[i] > kMargin;
    }
    return c;
}

DecodeKernelChoice choose_decode_kernels(const std::filesystem::path& file, const DecodeChoiceOptions& options,
                                         bool remeasure) {
    DecodeKernelChoice key = key_for(options);
    if (!key.applicable) return key;  // nothing to choose
    // One at a time in this process: models loading together (the compare view's panes) would
    // measure against each other's traffic, and then read the first one's result.
    static std::mutex one_at_a_time;
    std::lock_guard<std::mutex> lock(one_at_a_time);
    nlohmann::json entries = file.empty() ? nlohmann::json::array() : read_entries(file);
    if (!remeasure)
        for (const auto& e : entries)
            if (same_key(e, key)) {
                DecodeKernelChoice kept = key;
                if (from_json(e, kept)) return kept;
            }
    DecodeChoiceOptions o = options;
    o.threads = key.threads;
    const DecodeKernelChoice c = measure_decode_kernels(o);
    if (file.empty()) return c;
    nlohmann::json kept = nlohmann::json::array();
    for (const auto& e : entries)
        if (!same_key(e, c)) kept.push_back(e);
    kept.push_back(to_json(c));
    write_entries(file, kept);
    return c;
}

const char* decode_kernel_set(const KernelOptions& options, Precision precision) {
    KernelOptions o = options;
    if (o.decode_avx2[static_cast<std::size_t>(precision)]) o.avx512 = false;
    return avx512_decode_kernels(o) ? "AVX-512" : use_avx2_kernels(o) ? "AVX2" : "scalar";
}

std::filesystem::path default_decode_choice_file() {
    const char* xdg = std::getenv("XDG_CACHE_HOME");
    if (xdg != nullptr && *xdg == '/') return std::filesystem::path(xdg) / "windowpane" / "decode-kernels.json";
    const char* home = std::getenv("HOME");
    if (home != nullptr && *home != '\0') return std::filesystem::path(home) / ".cache" / "windowpane" / "decode-kernels.json";
    return {};
}

}  // namespace wp
