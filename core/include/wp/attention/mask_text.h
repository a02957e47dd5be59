// Attention masks as text, laid out like transformers' AttentionMaskVisualizer
// (transformers/utils/attention_visualizer.py, generate_attention_matrix_from_mask): a row per
// query token labelled with repr(piece), ■ where the key is seen, ⬚ where it is masked, one panel
// per distinct layer kind side by side, separated by "    |    ". Every cell comes from
// MaskSpec::allows, the predicate the forward pass uses.
//
// Example (pieces <bos> ▁The ▁cat \n 's ▁sat; layer 0 sliding window 3, layer 1 global):
//
//    ■: attended   ⬚: masked
//               Attention Matrix (layer 1)
//                                   Sliding Window Mask (window 3; layer 0)
//               0 1 2 3 4 5    |    0 1 2 3 4 5
//   '<bos>':  0 ■ ⬚ ⬚ ⬚ ⬚ ⬚    |    ■ ⬚ ⬚ ⬚ ⬚ ⬚
//   '▁The' :  1 ■ ■ ⬚ ⬚ ⬚ ⬚    |    ■ ■ ⬚ ⬚ ⬚ ⬚
//   '▁cat' :  2 ■ ■ ■ ⬚ ⬚ ⬚    |    ■ ■ ■ ⬚ ⬚ ⬚
//   '\n'   :  3 ■ ■ ■ ■ ⬚ ⬚    |    ⬚ ■ ■ ■ ⬚ ⬚
//   "'s"   :  4 ■ ■ ■ ■ ■ ⬚    |    ⬚ ⬚ ■ ■ ■ ⬚
//   '▁sat' :  5 ■ ■ ■ ■ ■ ■    |    ⬚ ⬚ ⬚ ■ ■ ■
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "wp/attention/mask.h"

namespace wp {

// `pieces`: the token pieces of the prompt, one per position, as the tokenizer splits them
// (any bytes; shown through Python's repr()). `layers`: the per-layer MaskSpec. One panel per
// distinct (causal, window) kind — global kinds first, then sliding kinds by window — titled
// with the layer indices it covers ("layer 1", "layers 0,2", "layers 0-23") and, for sliding
// kinds, the window. `color`: ANSI colours as transformers (green ■ on the diagonal); off gives
// plain text without any escape code. Every line ends with '\n'. Empty `pieces` or `layers`
// give an empty string. wp::Error when `context_length` > 0 and the pieces are more than it (the
// model's max_position_embeddings), or when the text would exceed 64 MB (a few thousand tokens).
std::string render_mask_text(const std::vector<std::string>& pieces, const std::vector<MaskSpec>& layers,
                             bool color = false, int context_length = 0);

// The row label of one piece: Python's repr() of the piece (quotes chosen as Python does,
// \n \r \t \\ and non-printable code points escaped, invalid UTF-8 bytes as \xNN), truncated to
// mask_text_label_max_width() terminal columns with "…" before the closing quote.
std::string mask_text_label(std::string_view piece);
int mask_text_label_max_width();

}  // namespace wp
