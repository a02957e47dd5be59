// The CLI's side of the measured decode-kernel choice (wp/model/decode_kernel_choice.h): model
// commands take it, `choose-kernels` shows or redoes it.
#pragma once

#include "args.h"
#include "wp/model/model.h"

namespace wp::cli {

// Options that take the decode choice kept in the user's cache file (LoadOptions::decode_choice_file).
LoadOptions with_decode_choice(LoadOptions options);
// One line on stderr when loading `model` measured the choice (the first time on this CPU).
void note_decode_choice(const Model& model);

// windowpane-cli choose-kernels [--threads N] [--remeasure] [--json]
int run_choose_kernels(const Args& a);

}  // namespace wp::cli
