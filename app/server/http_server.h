// The HTTP side of `windowpane-cli serve` (cpp-httplib): OpenAI's GET /v1/models, POST
// /v1/chat/completions and /v1/completions (streamed as server-sent events or not), vLLM's POST
// /classify and /score for task-head models, GET /health and GET /metrics.
//
// Threads: run() accepts connections and hands each to a bounded pool of HTTP threads; a
// generation request's thread submits it to its model's Scheduler (whose one thread runs the
// forward passes) and relays the job's events, polling its client so that a client that goes away
// cancels its job. Task-head models run on the request's thread, one forward pass at a time per
// model. stop() may be called from any thread (a signal watcher).
//
// Errors are OpenAI's error JSON: 400 (bad JSON, a parameter refused by name, a prompt beyond the
// context), 401 (--api-key given and the Bearer key missing or wrong; /health is open), 404
// (unknown model or route), 413 (body above max_body_bytes), 415 (not JSON), 429 with
// Retry-After (the scheduler's queue is full), 503 with Retry-After (loading or stopping).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "metrics.h"
#include "scheduler.h"
#include "wp/generate/chat_session.h"

namespace httplib {
class Server;
}

namespace wp::server {

struct ServerOptions {
    std::string host = "127.0.0.1";
    int port = 8080;                               // 0: any free port (bind() returns it)
    std::string api_key;                           // empty: no authentication
    std::size_t max_body_bytes = std::size_t{8} << 20;
    std::int64_t max_tokens = 0;                   // bound on a request's max_tokens; 0: the context
    int read_timeout_seconds = 10;                 // a client silent this long (slow-loris) is dropped
    int http_threads = 0;                          // 0: the scheduler's parallel, plus 8
    SchedulerOptions scheduler;                    // ctx is capped at each model's own context
};

class HttpServer {
public:
    explicit HttpServer(ServerOptions options);
    ~HttpServer();  // stops, then ends the schedulers' jobs
    HttpServer(const HttpServer&) = delete;
    HttpServer& operator=(const HttpServer&) = delete;

    // Binds the listening socket; returns the port (the chosen one for port 0). Throws wp::Error.
    int bind();
    // Serves until stop(): call on a thread of its own after bind(). Until ready() every route but
    // /health answers 503 (and /health says "loading").
    void run();
    // Before ready(): a causal LM is served by a Scheduler, a sequence-classification model at
    // /classify and /score. `id` is what requests name in "model".
    void add_model(const std::string& id, std::unique_ptr<LoadedModel> model);
    void ready();
    // New requests get 503, running generations end (cancelled), run() returns. Idempotent.
    void stop();

    const ServerOptions& options() const { return options_; }

private:
    struct Served;
    class Handlers;
    friend class Handlers;

    ServerOptions options_;
    std::unique_ptr<httplib::Server> http_;
    std::vector<std::unique_ptr<Served>> models_;  // written only before ready_
    std::atomic<bool> ready_{false};
    std::atomic<bool> stopping_{false};
    std::atomic<bool> running_{false};  // inside run()
    Metrics metrics_;
};

}  // namespace wp::server
