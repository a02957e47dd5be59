// windowpane-cli bench-batch: N requests submitted at once to the continuous-batching scheduler,
// every stream read to its Done on a thread of its own, aggregate decode tokens/s per N.
#include "bench_batch.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "scheduler.h"  // app/server (wpserver)
#include "decode_kernels.h"
#include "wp/error.h"
#include "wp/generate/chat_session.h"

namespace wp::cli {

namespace {

using clock_type = std::chrono::steady_clock;

double seconds(clock_type::duration d) { return std::chrono::duration<double>(d).count(); }

struct Spread {
    double median = 0, min = 0, max = 0;
};

// The median of an even count is the mean of the middle two (as llama_side computes it).
Spread summarize(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    const std::size_t n = v.size();
    return {n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2, v.front(), v.back()};
}

nlohmann::ordered_json spread_json(const Spread& s) {
    return {{"median", s.median}, {"min", s.min}, {"max", s.max}};
}

struct Round {
    double decode_tok_s = 0;
    // The tokens while every stream generates (after the last first token, up to the first Done)
    // over that time: the batch at its full size. -1 when there is no such time.
    double all_active_tok_s = -1;
    double ttft_ms = 0;  // submit to first token, mean over the streams
    int decode_tokens = 0;
};

// What one stream's reader saw: when each token arrived, when Done came and what it said.
struct Trace {
    std::vector<clock_type::time_point> tokens;
    clock_type::time_point done{};
    int completion_tokens = -1;
    std::string error;
};

// Nothing from a stream for this long: the scheduler is stuck, the bench fails instead of hanging.
constexpr auto kStall = std::chrono::seconds(600);

Round run_round(server::Scheduler& scheduler, const std::vector<std::vector<int>>& prompts, int gen,
                const BenchBatchOptions& o) {
    const std::size_t n = prompts.size();
    std::vector<std::shared_ptr<server::Job>> jobs;
    for (const auto& p : prompts) {
        server::GenerationRequest r;
        r.prompt = p;
        r.max_tokens = gen;
        r.sampling.greedy = o.temperature <= 0;
        if (!r.sampling.greedy) {
            r.sampling.temperature = o.temperature;
            r.sampling.top_p = o.top_p;
            r.sampling.seed = jobs.size() + 1;
        }
        r.ignore_eos = true;
        jobs.push_back(scheduler.submit(std::move(r)));
    }
    std::vector<Trace> traces(n);
    std::vector<std::thread> readers;
    for (std::size_t j = 0; j < n; ++j)
        readers.emplace_back([&, j] {
            Trace& t = traces[j];
            auto last = clock_type::now();
            for (;;) {
                auto e = jobs[j]->next(std::chrono::milliseconds(500));
                const auto now = clock_type::now();
                if (!e) {
                    if (now - last > kStall) {
                        jobs[j]->cancel();
                        t.error = "no event for 600 s";
                        return;
                    }
                    continue;
                }
                last = now;
                switch (e->kind) {
                case server::StreamEvent::Kind::Token: t.tokens.push_back(now); break;
                case server::StreamEvent::Kind::Done:
                    t.done = now;
                    t.completion_tokens = e->completion_tokens;
                    return;
                case server::StreamEvent::Kind::Error: t.error = e->error.empty() ? "error" : e->error; return;
                }
            }
        });
    for (auto& r : readers) r.join();

    clock_type::time_point all_first{}, end{}, first_done = clock_type::time_point::max();
    double ttft = 0;
    for (std::size_t j = 0; j < n; ++j) {
        const Trace& t = traces[j];
        if (!t.error.empty()) throw Error("bench-batch: stream " + std::to_string(j + 1) + " of " + std::to_string(n) + ": " + t.error);
        if (static_cast<int>(t.tokens.size()) != gen || t.completion_tokens != gen)
            throw Error("bench-batch: stream " + std::to_string(j + 1) + " of " + std::to_string(n) + " ended after " +
                        std::to_string(t.tokens.size()) + " token events (Done says " + std::to_string(t.completion_tokens) +
                        "), not " + std::to_string(gen));
        all_first = std::max(all_first, t.tokens.front());
        end = std::max(end, t.done);
        first_done = std::min(first_done, t.done);
        ttft += seconds(t.tokens.front() - jobs[j]->submitted());
    }
    int counted = 0, all_active = 0;
    for (const Trace& t : traces) {
        counted += static_cast<int>(std::count_if(t.tokens.begin(), t.tokens.end(), [&](auto tp) { return tp > all_first; }));
        all_active += static_cast<int>(
            std::count_if(t.tokens.begin(), t.tokens.end(), [&](auto tp) { return tp > all_first && tp <= first_done; }));
    }
    Round r;
    if (first_done > all_first && all_active > 0) r.all_active_tok_s = all_active / seconds(first_done - all_first);
    r.decode_tokens = counted;
    r.decode_tok_s = counted / std::max(seconds(end - all_first), 1e-9);
    r.ttft_ms = 1e3 * ttft / static_cast<double>(n);
    return r;
}

}  // namespace

int bench_batch(const BenchBatchOptions& o) {
    if (o.streams.empty() || o.prompt_tokens < 1 || o.gen_tokens < 2 || o.repeat < 1)
        throw Error("bench-batch: --streams, --prompt, --repeat >= 1 and --gen >= 2");
    const std::int64_t ctx = o.ctx > 0 ? o.ctx : (o.prompt_tokens + o.gen_tokens + 255) / 256 * 256;
    if (ctx < o.prompt_tokens + o.gen_tokens) throw Error("bench-batch: --ctx below --prompt + --gen");
    LoadOptions lo;
    lo.precision = o.precision;
    lo.kv_cache = o.kv;
    lo.threads = o.threads;
    lo.kernels.amx = o.amx;
    const auto lm = LoadedModel::load(o.model_dir, {}, with_decode_choice(lo));
    note_decode_choice(lm->model());
    const Model& model = lm->model();
    std::mt19937_64 rng(7);
    // Ids as `bench` draws them: below 1000, past the first few (often special) ids.
    std::uniform_int_distribution<int> tok(3, std::min(model.config().vocab_size, 1000) - 1);
    auto prompts = [&](int n) {
        std::vector<std::vector<int>> p(static_cast<std::size_t>(n), std::vector<int>(static_cast<std::size_t>(o.prompt_tokens)));
        for (auto& v : p)
            for (int& t : v) t = tok(rng);
        return p;
    };

    struct Row {
        int streams;
        int decode_tokens;
        Spread tok_s, ttft_ms;
        std::optional<Spread> all_active;
    };
    std::vector<Row> rows;
    for (const int n : o.streams) {
        server::SchedulerOptions so;
        so.parallel = n;
        so.max_queue = n;
        so.ctx = ctx;
        server::Scheduler scheduler(*lm, so);
        run_round(scheduler, prompts(n), 2, o);  // warm-up: every stream's prompt pass and one decode step
        std::vector<double> tps, ttft, active;
        int decode_tokens = 0;
        for (int r = 0; r < o.repeat; ++r) {
            const Round rr = run_round(scheduler, prompts(n), o.gen_tokens, o);
            tps.push_back(rr.decode_tok_s);
            ttft.push_back(rr.ttft_ms);
            if (rr.all_active_tok_s >= 0) active.push_back(rr.all_active_tok_s);
            decode_tokens = rr.decode_tokens;
        }
        rows.push_back({n, decode_tokens, summarize(tps), summarize(ttft), std::nullopt});
        if (!active.empty()) rows.back().all_active = summarize(active);
    }
    const auto one = std::find_if(rows.begin(), rows.end(), [](const Row& r) { return r.streams == 1; });
    auto speedup = [&](const Row& r) { return one == rows.end() ? 0.0 : r.tok_s.median / one->tok_s.median; };

    if (o.json) {
        nlohmann::ordered_json j;
        j["engine"] = "windowpane";
        j["model"] = o.model_dir;
        j["precision"] = precision_name(model.precision());
        j["kv"] = kv_type_name(model.kv_type());
        j["threads"] = model.threads();
        j["prompt_tokens"] = o.prompt_tokens;
        j["gen_tokens"] = o.gen_tokens;
        j["repeat"] = o.repeat;
        j["temperature"] = o.temperature;
        j["top_p"] = o.top_p;
        j["ctx"] = ctx;
        j["rows"] = nlohmann::ordered_json::array();
        for (const Row& r : rows) {
            nlohmann::ordered_json row;
            row["streams"] = r.streams;
            row["decode_tokens"] = r.decode_tokens;  // counted in the last round
            row["decode_tok_s"] = spread_json(r.tok_s);
            row["ttft_ms"] = spread_json(r.ttft_ms);
            row["all_active_tok_s"] = r.all_active ? spread_json(*r.all_active) : nlohmann::ordered_json();
            if (one != rows.end()) row["speedup"] = speedup(r);
            j["rows"].push_back(row);
        }
        std::printf("%s\n", j.dump().c_str());
        return 0;
    }
    char sampling[64] = "greedy";
    if (o.temperature > 0) std::snprintf(sampling, sizeof sampling, "temperature %g, top_p %g", o.temperature, o.top_p);
    std::printf("%s: %s, KV %s, %d threads; %d-token prompts, %d tokens per stream (%s), ctx %lld, median of %d\n",
                o.model_dir.c_str(), precision_name(model.precision()), kv_type_name(model.kv_type()), model.threads(),
                o.prompt_tokens, o.gen_tokens, sampling, static_cast<long long>(ctx), o.repeat);
    std::printf("| streams | decode tok/s (min-max) | vs 1 stream | first token ms (min-max) |\n");
    std::printf("|---|---|---|---|\n");
    for (const Row& r : rows) {
        char ratio[32] = "-";
        if (one != rows.end()) std::snprintf(ratio, sizeof ratio, "%.2fx", speedup(r));
        std::printf("| %d | %.1f (%.1f-%.1f) | %s | %.1f (%.1f-%.1f) |\n", r.streams, r.tok_s.median, r.tok_s.min, r.tok_s.max,
                    ratio, r.ttft_ms.median, r.ttft_ms.min, r.ttft_ms.max);
    }
    return 0;
}

}  // namespace wp::cli
