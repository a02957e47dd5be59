// Continuous batching for one causal LM: requests queue, their prompts run in chunks between
// decode steps, and every decode step runs all generating sequences through one pass over the
// weights (Model::forward_batch), each with its own KV cache, positions, sampler and stop rules.
//
// Threads: one scheduler thread owns the model's forward passes; submit() and cancel() may be
// called from any thread, and each Job hands its events to the thread that reads them (an HTTP
// handler) through its own queue.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "wp/generate/chat_session.h"
#include "wp/generate/sampler.h"

namespace wp::server {

struct GenerationRequest {
    std::vector<int> prompt;  // token ids, chat template already applied
    int max_tokens = 128;     // > 0
    SamplingParams sampling;  // greedy = true: argmax, seed unused
    std::vector<std::string> stop;  // stop strings: text ends before the first; none of it is sent
    int top_logprobs = -1;    // -1: no logprobs; 0..20: each token's logprob and that many alternatives
    bool ignore_eos = false;  // benchmarks: run to max_tokens
};

struct TokenLogprob {
    int id = 0;
    std::string piece;  // the token's text as decoded alone (may be part of a UTF-8 character)
    float logprob = 0;  // natural log, under the model's raw distribution
};

struct StreamEvent {
    enum class Kind { Token, Done, Error };
    Kind kind = Kind::Token;
    // Token: the text this token completes (may be empty: held back as a possible stop string's
    // start or an incomplete character, then sent with a later token).
    std::string text;
    TokenLogprob token;               // Token
    std::vector<TokenLogprob> top;    // Token, when top_logprobs >= 0: best first
    // Done: "stop" (eos or a stop string) or "length" (max_tokens or the context's end).
    std::string finish_reason;
    int prompt_tokens = 0, completion_tokens = 0;  // Done
    std::string error;                // Error: message (the job ends)
};

class Scheduler;

// One request's stream. next() blocks until an event (or the timeout: nullopt); after Done or
// Error no more events come.
class Job {
public:
    std::optional<StreamEvent> next(std::chrono::milliseconds timeout);
    void cancel();  // the client went away: the sequence leaves the batch at the next step
    bool cancelled() const;
    std::chrono::steady_clock::time_point submitted() const { return submitted_; }

private:
    friend class Scheduler;
    void push(StreamEvent e);
    mutable std::mutex mu_;
    std::condition_variable cv_;
    std::deque<StreamEvent> events_;
    bool cancelled_ = false;
    std::chrono::steady_clock::time_point submitted_ = std::chrono::steady_clock::now();
};

struct SchedulerOptions {
    int parallel = 4;         // sequences generating at once (each holds a KV cache)
    int max_queue = 64;       // waiting requests beyond `parallel`; more: QueueFull
    std::int64_t ctx = 4096;  // each sequence's prompt + reply bound
    int prefill_chunk = 256;  // prompt tokens per pass between decode steps
};

// submit() when `parallel` sequences run and max_queue more wait.
class QueueFull : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

struct SchedulerStats {
    int queued = 0, active = 0;
    std::uint64_t requests = 0, prompt_tokens = 0, completion_tokens = 0;
    double decode_seconds = 0;  // time spent in decode steps
    std::uint64_t decode_tokens = 0;  // the tokens they gave (each request's first comes from its prompt pass)
    double ttft_seconds_sum = 0;  // submit to first token, summed over requests that got one
    std::uint64_t ttft_count = 0;
};

class Scheduler {
public:
    Scheduler(const LoadedModel& model, SchedulerOptions options);
    ~Scheduler();  // stops the thread; jobs still running end with an Error event
    Scheduler(const Scheduler&) = delete;
    Scheduler& operator=(const Scheduler&) = delete;

    // Throws QueueFull, or wp::Error for a request that can never run (a prompt that fills the
    // context, an empty one, an id outside the vocabulary, bad sampling settings). A reply that
    // reaches the context's end stops there with "length".
    std::shared_ptr<Job> submit(GenerationRequest request);
    SchedulerStats stats() const;
    const SchedulerOptions& options() const { return options_; }

private:
    struct Sequence;
    void loop();

    const LoadedModel& lm_;
    SchedulerOptions options_;
    mutable std::mutex mu_;
    std::condition_variable cv_;
    std::deque<std::unique_ptr<Sequence>> waiting_;
    bool stopping_ = false;
    SchedulerStats stats_;
    std::thread thread_;
};

}  // namespace wp::server
