#include "scheduler.h"

#include <algorithm>
#include <cmath>

#include "wp/error.h"
#include "wp/tokenizer/streaming_decoder.h"

namespace wp::server {

using clock = std::chrono::steady_clock;

std::optional<StreamEvent> Job::next(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    if (!cv_.wait_for(lock, timeout, [&] { return !events_.empty(); })) return std::nullopt;
    StreamEvent e = std::move(events_.front());
    events_.pop_front();
    return e;
}

void Job::cancel() {
    std::lock_guard lock(mu_);
    cancelled_ = true;
}

bool Job::cancelled() const {
    std::lock_guard lock(mu_);
    return cancelled_;
}

void Job::push(StreamEvent e) {
    {
        std::lock_guard lock(mu_);
        events_.push_back(std::move(e));
    }
    cv_.notify_all();
}

namespace {

// The chosen token's log-probability under the raw logits and the `top` most probable tokens
// (ties: lower id first), as OpenAI's logprobs report them.
void describe(std::span<const float> logits, int chosen, int top, const Tokenizer& tok, StreamEvent& e) {
    const float lse = log_sum_exp(logits);
    e.token.logprob = logits[static_cast<std::size_t>(chosen)] - lse;
    if (top <= 0) return;
    std::vector<std::pair<float, int>> best;  // (logit, id), best first
    best.reserve(static_cast<std::size_t>(top) + 1);
    for (int i = 0; i < static_cast<int>(logits.size()); ++i) {
        const float l = logits[static_cast<std::size_t>(i)];
        if (static_cast<int>(best.size()) == top && l <= best.back().first) continue;
        auto at = std::find_if(best.begin(), best.end(), [&](const auto& b) { return b.first < l; });
        best.insert(at, {l, i});
        if (static_cast<int>(best.size()) > top) best.pop_back();
    }
    for (const auto& [l, id] : best) {
        const int one[1] = {id};
        e.top.push_back({id, tok.decode(one, false), l - lse});
    }
}

// The longest end of `text` that begins one of `stops` (held back: the next token may complete it).
std::size_t stop_prefix_at_end(const std::string& text, const std::vector<std::string>& stops) {
    std::size_t longest = 0;
    for (const std::string& s : stops)
        for (std::size_t n = std::min(s.size() - 1, text.size()); n > longest; --n)
            if (text.compare(text.size() - n, n, s, 0, n) == 0) {
                longest = n;
                break;
            }
    return longest;
}

}  // namespace

struct Scheduler::Sequence {
    std::shared_ptr<Job> job;
    GenerationRequest req;
    std::unique_ptr<Context> ctx;
    std::optional<Sampler> sampler;
    std::optional<StreamingDecoder> decoder;
    std::vector<int> history;   // prompt and reply, for the repetition penalty
    std::vector<float> logits;  // the row the sampler edits
    std::string held;           // text not yet sent (a possible stop string's start)
    int prefilled = 0;
    int generated = 0;
    int next = -1;              // the token the next decode step feeds
    bool finished = false;
};

Scheduler::Scheduler(const LoadedModel& model, SchedulerOptions options) : lm_(model), options_(options) {
    if (model.model().config().head != Head::CausalLM)
        throw Error("the scheduler runs causal language models; this one has a " +
                    std::string(head_name(model.model().config().head)) + " head");
    if (options_.parallel < 1 || options_.parallel > 64) throw Error("parallel must be between 1 and 64");
    if (options_.max_queue < 0) throw Error("the queue bound must be >= 0");
    if (options_.prefill_chunk < 1) throw Error("the prefill chunk must be > 0");
    options_.ctx = std::min<std::int64_t>(options_.ctx, model.model().config().max_position_embeddings);
    if (options_.ctx < 2) throw Error("the context must hold at least 2 tokens");
    thread_ = std::thread([this] { loop(); });
}

Scheduler::~Scheduler() {
    {
        std::lock_guard lock(mu_);
        stopping_ = true;
    }
    cv_.notify_all();
    thread_.join();
}

std::shared_ptr<Job> Scheduler::submit(GenerationRequest request) {
    const ModelConfig& c = lm_.model().config();
    if (request.prompt.empty()) throw Error("the prompt has no tokens");
    for (int id : request.prompt)
        if (id < 0 || id >= c.vocab_size) throw Error("token id " + std::to_string(id) + " is outside the vocabulary");
    if (static_cast<std::int64_t>(request.prompt.size()) >= options_.ctx)
        throw Error("the prompt has " + std::to_string(request.prompt.size()) + " tokens; the context holds " +
                    std::to_string(options_.ctx) + " (prompt and reply)");
    if (request.max_tokens < 1) throw Error("max_tokens must be at least 1");
    if (request.top_logprobs > 20) throw Error("top_logprobs must be between 0 and 20");
    request.sampling.validate();
    auto seq = std::make_unique<Sequence>();
    seq->job = std::make_shared<Job>();
    seq->req = std::move(request);
    std::shared_ptr<Job> job = seq->job;
    {
        std::lock_guard lock(mu_);
        if (stopping_) throw Error("the server is stopping");
        // Requests whose clients left while queued give up their places.
        std::erase_if(waiting_, [](const std::unique_ptr<Sequence>& w) { return w->job->cancelled(); });
        if (static_cast<int>(waiting_.size()) + stats_.active >= options_.parallel + options_.max_queue)
            throw QueueFull("the queue is full (" + std::to_string(options_.parallel) + " running, " +
                            std::to_string(waiting_.size()) + " waiting)");
        waiting_.push_back(std::move(seq));
        stats_.queued = static_cast<int>(waiting_.size());
        ++stats_.requests;
    }
    cv_.notify_all();
    return job;
}

SchedulerStats Scheduler::stats() const {
    std::lock_guard lock(mu_);
    return stats_;
}

void Scheduler::loop() {
    const Model& model = lm_.model();
    const Tokenizer& tok = lm_.tokenizer();
    const std::vector<int>& stop_ids = lm_.stop_ids();
    const std::size_t V = static_cast<std::size_t>(model.config().vocab_size);
    // Contexts are reused from request to request: their caches and scratch keep their memory.
    std::vector<std::unique_ptr<Context>> spare;
    auto work = model.new_context();
    // Every decode row takes the kernels one token alone takes, so a request's tokens do not
    // depend on what else is in the batch (Model::forward_batch).
    work->decode_kernel_rows = options_.parallel;
    // Prompt chunks of several requests in one pass, on a context of their own (decode_kernel_rows
    // 0: each chunk's attention as forward() runs it alone).
    const bool batch_prompts = model.batched_prompts_exact();
    const auto prompt_work = batch_prompts ? model.new_context() : nullptr;
    std::vector<std::unique_ptr<Sequence>> active;
    std::vector<Model::BatchItem> items;
    std::vector<Sequence*> rows;
    std::vector<int> picks;
    std::uint64_t prompt_tokens = 0, completion_tokens = 0, decode_tokens = 0, ttft_count = 0;
    double decode_seconds = 0, ttft_sum = 0;

    auto publish = [&] {  // under mu_
        stats_.queued = static_cast<int>(waiting_.size());
        stats_.active = static_cast<int>(active.size());
        stats_.prompt_tokens = prompt_tokens;
        stats_.completion_tokens = completion_tokens;
        stats_.decode_seconds = decode_seconds;
        stats_.decode_tokens = decode_tokens;
        stats_.ttft_seconds_sum = ttft_sum;
        stats_.ttft_count = ttft_count;
    };
    auto end = [&](Sequence& s, const std::string& reason) {
        StreamEvent e;
        e.kind = StreamEvent::Kind::Done;
        e.finish_reason = reason;
        e.prompt_tokens = static_cast<int>(s.req.prompt.size());
        e.completion_tokens = s.generated;
        s.job->push(std::move(e));
        s.finished = true;
    };
    // Sends what `text` adds, holding back a possible stop string's start; true when a stop string ended it.
    auto send_text = [&](Sequence& s, StreamEvent& e, const std::string& text, bool last) {
        s.held += text;
        const std::vector<std::string>& stops = s.req.stop;
        std::size_t cut = std::string::npos;
        for (const std::string& st : stops)
            if (!st.empty()) cut = std::min(cut, s.held.find(st));
        if (cut != std::string::npos) {
            e.text = s.held.substr(0, cut);
            s.held.clear();
            return true;
        }
        const std::size_t keep = last ? 0 : stop_prefix_at_end(s.held, stops);
        e.text = s.held.substr(0, s.held.size() - keep);
        s.held.erase(0, s.held.size() - keep);
        return false;
    };
    // Token `id`, chosen from `row`, sent; ends the sequence on eos, a stop string, max_tokens or the context.
    auto take = [&](Sequence& s, std::span<const float> row, int id) {
        s.history.push_back(id);
        ++s.generated;
        ++completion_tokens;
        if (s.generated == 1) {
            ttft_sum += std::chrono::duration<double>(clock::now() - s.job->submitted()).count();
            ++ttft_count;
        }
        StreamEvent e;
        e.token.id = id;
        const int one[1] = {id};
        e.token.piece = tok.decode(one, false);
        if (s.req.top_logprobs >= 0) describe(row, id, s.req.top_logprobs, tok, e);
        const bool eos = !s.req.ignore_eos && std::find(stop_ids.begin(), stop_ids.end(), id) != stop_ids.end();
        const bool length = s.generated >= s.req.max_tokens || s.ctx->cache.length() + 1 >= options_.ctx;
        std::string text = eos ? std::string() : s.decoder->push(id);
        if (eos || length) text += s.decoder->flush();
        const bool stopped = send_text(s, e, text, eos || length);
        s.job->push(std::move(e));
        if (stopped || eos) end(s, "stop");
        else if (length) end(s, "length");
        s.next = id;
    };
    auto fail = [&](Sequence& s, const std::string& message) {
        StreamEvent e;
        e.kind = StreamEvent::Kind::Error;
        e.error = message;
        s.job->push(std::move(e));
        s.finished = true;
    };

    for (;;) {
        {
            std::unique_lock lock(mu_);
            cv_.wait(lock, [&] { return stopping_ || !waiting_.empty() || !active.empty(); });
            if (stopping_) {
                for (auto& s : waiting_) fail(*s, "the server is stopping");
                for (auto& s : active) fail(*s, "the server is stopping");
                waiting_.clear();
                stats_.queued = stats_.active = 0;
                return;
            }
            std::erase_if(waiting_, [](const std::unique_ptr<Sequence>& w) { return w->job->cancelled(); });
            while (!waiting_.empty() && static_cast<int>(active.size()) < options_.parallel) {
                active.push_back(std::move(waiting_.front()));
                waiting_.pop_front();
            }
            publish();
        }
        for (auto& s : active) {
            if (s->ctx) continue;
            try {  // memory for a new sequence may run out: that request fails, the server goes on
                if (!spare.empty()) {
                    s->ctx = std::move(spare.back());
                    spare.pop_back();
                    s->ctx->cache.clear();
                } else {
                    s->ctx = model.new_context(model.default_cache(), options_.ctx);
                }
                s->sampler.emplace(s->req.sampling, static_cast<int>(V));
                s->decoder.emplace(tok);
                s->logits.resize(V);
                s->history = s->req.prompt;
            } catch (const std::exception& e) {
                fail(*s, e.what());
            }
        }

        try {
            // Prompt chunks, up to prefill_chunk tokens in all, oldest prompt first, so running
            // streams keep flowing: in one pass where that gives each prompt what it gets alone
            // (prompts that arrive together then start together), else the oldest alone.
            items.clear();
            rows.clear();
            for (int budget = options_.prefill_chunk; auto& s : active) {
                const int total = static_cast<int>(s->req.prompt.size());
                if (s->finished || s->prefilled >= total || s->job->cancelled()) continue;
                const int n = std::min(budget, total - s->prefilled);
                items.push_back({s->ctx.get(), std::span<const int>(s->req.prompt).subspan(s->prefilled, n)});
                rows.push_back(s.get());
                budget -= n;
                if (budget == 0 || !batch_prompts) break;
            }
            if (!items.empty()) {
                const std::span<const float> out = items.size() == 1
                                                       ? model.forward(*items[0].ctx, items[0].ids, LogitsMode::Last)
                                                       : model.forward_batch(*prompt_work, items);
                for (std::size_t i = 0; i < rows.size(); ++i) {
                    Sequence& s = *rows[i];
                    const int n = static_cast<int>(items[i].ids.size());
                    s.prefilled += n;
                    prompt_tokens += static_cast<std::uint64_t>(n);
                    const std::span<const float> row = out.subspan(i * V, V);
                    if (s.prefilled == static_cast<int>(s.req.prompt.size()))
                        take(s, row, s.sampler->pick(row, s.history, s.logits));
                }
            }
            // One decode step for every sequence past its prompt.
            items.clear();
            rows.clear();
            for (auto& s : active)
                if (!s->finished && s->generated > 0 && !s->job->cancelled()) {
                    items.push_back({s->ctx.get(), std::span<const int>(&s->next, 1)});
                    rows.push_back(s.get());
                }
            if (!items.empty()) {
                const auto t0 = clock::now();
                const std::span<const float> out = model.forward_batch(*work, items);
                // Each row's token drawn on the model's threads (a sampled row reads the vocabulary
                // several times over), then sent in order.
                picks.resize(rows.size());
                model.for_each_parallel(static_cast<int>(rows.size()), [&](int i) {
                    const std::size_t r = static_cast<std::size_t>(i);
                    Sequence& s = *rows[r];
                    picks[r] = s.sampler->pick(out.subspan(r * V, V), s.history, s.logits);
                });
                for (std::size_t i = 0; i < rows.size(); ++i) take(*rows[i], out.subspan(i * V, V), picks[i]);
                decode_seconds += std::chrono::duration<double>(clock::now() - t0).count();
                decode_tokens += rows.size();
            }
        } catch (const std::exception& e) {
            for (auto& s : active)
                if (!s->finished) fail(*s, e.what());
        }
        // Finished and cancelled sequences leave; their contexts wait for the next requests.
        for (auto& s : active)
            if (s->finished || s->job->cancelled()) {
                if (s->ctx) spare.push_back(std::move(s->ctx));
                s.reset();
            }
        active.erase(std::remove(active.begin(), active.end(), nullptr), active.end());
        std::lock_guard lock(mu_);
        publish();
    }
}

}  // namespace wp::server
