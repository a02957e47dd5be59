#include "decode_kernels.h"

#include <cstdio>
#include <nlohmann/json.hpp>

#include "wp/model/decode_kernel_choice.h"
#include "wp/model/precision.h"

namespace wp::cli {

namespace {

constexpr Precision kPrecisions[] = {Precision::F32, Precision::BF16, Precision::Q8, Precision::Q4};

}  // namespace

LoadOptions with_decode_choice(LoadOptions options) {
    options.decode_choice_file = default_decode_choice_file();
    return options;
}

void note_decode_choice(const Model& model) {
    if (!model.measured_decode_kernels()) return;
    std::string avx2;
    for (Precision p : kPrecisions)
        if (model.kernels().decode_avx2[static_cast<std::size_t>(p)])
            avx2 += std::string(avx2.empty() ? "" : ", ") + precision_name(p);
    std::fprintf(stderr, "[measured this CPU's decode kernels, once for %d thread%s: %s; see choose-kernels]\n",
                 model.threads(), model.threads() > 1 ? "s" : "",
                 avx2.empty() ? "AVX-512 for every precision" : ("AVX2 for " + avx2).c_str());
}

int run_choose_kernels(const Args& a) {
    const std::filesystem::path file = default_decode_choice_file();
    DecodeChoiceOptions o;
    o.threads = threads_option(a, 0);
    const DecodeKernelChoice c = choose_decode_kernels(file, o, a.flag("remeasure"));
    if (a.flag("json")) {
        nlohmann::json j{{"cpu", c.cpu}, {"threads", c.threads}, {"applicable", c.applicable},
                         {"measured_now", c.measured_now}, {"file", file.string()}};
        for (Precision p : kPrecisions) {
            const auto i = static_cast<std::size_t>(p);
            j["precisions"][precision_name(p)] = {{"kernels", c.avx2[i] ? "avx2" : "avx512"},
                                                  {"avx512_gbs", c.avx512_gbs[i]},
                                                  {"avx2_gbs", c.avx2_gbs[i]},
                                                  {"avx2_over_avx512", c.ratio[i]}};
        }
        std::printf("%s\n", j.dump(2).c_str());
        return 0;
    }
    std::printf("%s, %d thread%s\n", c.cpu.c_str(), c.threads, c.threads > 1 ? "s" : "");
    if (!c.applicable) {
        std::printf("  one decode kernel set on this CPU (no AVX-512 VNNI, or vector kernels unavailable): nothing to choose\n");
        return 0;
    }
    std::printf("  %s%s\n", c.measured_now ? "measured now" : "as measured before", file.empty() ? ", not kept (no HOME)" : "");
    if (!file.empty()) std::printf("  kept in %s\n", file.string().c_str());
    std::printf("  %-5s %-7s %8s %8s %11s   (best GB/s of weights read; median ratio of neighbouring passes)\n",
                "", "decodes", "AVX-512", "AVX2", "AVX2/512");
    for (Precision p : kPrecisions) {
        const auto i = static_cast<std::size_t>(p);
        std::printf("  %-5s %-7s %8.1f %8.1f %11.3f\n", precision_name(p), c.avx2[i] ? "AVX2" : "AVX-512",
                    c.avx512_gbs[i], c.avx2_gbs[i], c.ratio[i]);
    }
    return 0;
}

}  // namespace wp::cli
