// windowpane-cli bench-batch: aggregate decode throughput of the continuous-batching scheduler
// (app/server/scheduler.h) with N concurrent streams, the Windowpane half of
// tests/bench/batching.sh (llama_side's `batched` mode is the llama.cpp half and counts the same way).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "wp/cache/kv_cache.h"
#include "wp/model/precision.h"

namespace wp::cli {

struct BenchBatchOptions {
    std::string model_dir;
    std::optional<Precision> precision;  // unset: the model's default
    std::optional<KvType> kv;            // unset: the precision's default
    int threads = 2;
    std::vector<int> streams{1, 2, 4, 8};
    int prompt_tokens = 32;  // each stream's own random prompt
    int gen_tokens = 64;     // tokens each stream generates (max_tokens, eos ignored); >= 2
    int repeat = 3;
    std::int64_t ctx = 0;    // each sequence's positions; 0: prompt + gen rounded up to 256
    bool json = false;
    bool amx = true;  // --no-amx: q8 batches on AVX-512 VNNI where the CPU has AMX tiles too
    // > 0: each stream samples (seeded by its number) at this temperature and top_p, as a chat
    // client asks, instead of greedy decoding.
    float temperature = 0.0f;
    float top_p = 1.0f;
};

// For each N: a scheduler of N parallel sequences, a warm-up round (2 tokens per stream), then
// `repeat` rounds of N requests submitted at once. A round's decode tokens/s counts the tokens that
// arrive after every stream has its first token (the first tokens come from the prompt passes),
// over the time from that moment to the last stream's Done: N x (gen - 1) tokens when all streams
// start together. Prints a markdown table (or one JSON object) with a row per N: decode tokens/s
// (median, min, max over the rounds), the speed-up over one stream, and the time from submit to
// the first token (mean over the streams; median, min, max over the rounds). The JSON rows add
// all_active_tok_s: the tokens while all N streams generate (from the last first token to the
// first Done) over that time, which leaves out the ends where a scheduler that prefills the
// streams one after another runs fewer than N.
int bench_batch(const BenchBatchOptions& options);

}  // namespace wp::cli
