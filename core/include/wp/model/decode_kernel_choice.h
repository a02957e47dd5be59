// Which decode kernels run on this CPU, chosen by measuring them: on a CPU with AVX-512 VNNI each
// precision's AVX-512 and AVX2 matrix-vector kernels read the same weights from memory, and which
// is faster depends on the CPU model, not on its instruction set (docs/KERNELS.md, "Kernel choice").
// The measurement (a second or two) runs once per CPU model, thread count and kernel version; its
// result is kept in a small JSON file that the app and the CLI read at every model load.
#pragma once

#include <array>
#include <filesystem>
#include <string>

#include "wp/model/kernel_options.h"
#include "wp/model/precision.h"

namespace wp {

struct DecodeChoiceOptions {
    int threads = 0;                        // as the model will run; 0: one per core
    // Weights per precision and pass; 0: twice the last-level cache the CPU reports, 64 to
    // 512 MB (a cloud machine may report hundreds of MB, and read from it the kernels rank
    // differently than from memory).
    std::size_t bytes = 0;
    // Timed passes per kernel set, the two sets taking turns; 0: 32 at 64 MB, fewer on larger sets
    // (about the same bytes read), at least 6.
    int passes = 0;
};

struct DecodeKernelChoice {
    std::array<bool, 4> avx2{};  // per Precision: decode on the AVX2 kernels
    // Per Precision, the best GB/s of weights read by each set; 0 where not measured.
    std::array<double, 4> avx512_gbs{}, avx2_gbs{};
    // Per Precision, the median of AVX2's rate over AVX-512's in neighbouring passes (what decides).
    std::array<double, 4> ratio{};
    bool measured_now = false;  // measured by this call, not read from the file
    bool applicable = false;    // the CPU has both sets (else there is nothing to choose)
    std::string cpu;            // what the choice is kept under: the CPU's name, family, model, stepping
    int threads = 0;

    // options with decode_avx2 set from this choice.
    KernelOptions apply(KernelOptions options) const;
};

// Times both kernel sets on random matrices of every precision. On a CPU without AVX-512 VNNI it
// measures nothing and returns applicable == false.
DecodeKernelChoice measure_decode_kernels(const DecodeChoiceOptions& options = {});

// The choice kept in `file` for this CPU, thread count and kernel version; otherwise measured and
// added to `file` (replacing what it held for the same key; a file that cannot be read is
// replaced, one that cannot be written leaves the choice unsaved). An empty path: measured, not kept.
// remeasure: measured even when the file holds it.
DecodeKernelChoice choose_decode_kernels(const std::filesystem::path& file, const DecodeChoiceOptions& options = {},
                                         bool remeasure = false);

// The kernel set that decodes `precision` with `options` on this CPU: "AVX-512", "AVX2" or "scalar".
const char* decode_kernel_set(const KernelOptions& options, Precision precision);

// $XDG_CACHE_HOME/windowpane/decode-kernels.json, else ~/.cache/windowpane/decode-kernels.json;
// empty when neither variable is set.
std::filesystem::path default_decode_choice_file();

}  // namespace wp
