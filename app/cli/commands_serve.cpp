// serve: the engine over HTTP with OpenAI's API (app/server/http_server.h), batching concurrent
// requests (app/server/scheduler.h).
#include <pthread.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "command.h"
#include "decode_kernels.h"
#include "http_server.h"
#include "model_argument.h"
#include "wp/error.h"
#include "wp/generate/chat_session.h"

namespace wp::cli {

namespace {

int stop_pipe[2] = {-1, -1};

// SIGINT/SIGTERM: one byte down the pipe the main thread waits on (write is async-signal-safe; the
// signal may land on any thread, e.g. one of BLAS's).
void on_signal(int) {
    const char b = 1;
    [[maybe_unused]] const auto n = write(stop_pipe[1], &b, 1);
}

// A model's id in requests: the folder's name, a .gguf file's stem, or the hub id as given.
std::string model_id(const std::string& reference, const std::string& resolved) {
    namespace fs = std::filesystem;
    if (!fs::exists(reference)) return reference;
    fs::path p = fs::path(resolved).lexically_normal();
    if (p.filename().empty()) p = p.parent_path();
    return p.extension() == ".gguf" ? p.stem().string() : p.filename().string();
}

long long bounded(const Args& a, const std::string& name, long long fallback, long long lo, long long hi) {
    const long long v = a.integer(name, fallback);
    if (v < lo || v > hi)
        throw UsageError("--" + name + " must be between " + std::to_string(lo) + " and " + std::to_string(hi));
    return v;
}

int run_serve(const Args& a) {
    std::vector<std::string> refs;
    for (const auto& [name, value] : a.in_order())
        if (name == "model") refs.push_back(value);
    if (refs.empty()) throw UsageError("missing option --model");

    server::ServerOptions o;
    o.host = a.str("host", "127.0.0.1");
    o.port = static_cast<int>(bounded(a, "port", 8080, 0, 65535));
    o.api_key = a.str("api-key", "");
    if (o.api_key.empty())
        if (const char* env = std::getenv("WP_API_KEY")) o.api_key = env;
    o.scheduler.parallel = static_cast<int>(bounded(a, "parallel", 4, 1, 64));
    o.scheduler.max_queue = static_cast<int>(bounded(a, "max-queue", 64, 0, 100000));
    o.scheduler.ctx = bounded(a, "ctx", 4096, 16, 1 << 24);
    o.max_tokens = bounded(a, "max-tokens", 0, 0, 1 << 24);
    o.max_body_bytes = static_cast<std::size_t>(bounded(a, "max-body-mb", 8, 1, 1024)) << 20;
    o.read_timeout_seconds = static_cast<int>(bounded(a, "read-timeout", 10, 1, 3600));

    // Ids and folders before anything loads, so that a clash is a usage error at once.
    std::vector<std::pair<std::string, std::string>> models;  // id, folder or file
    std::set<std::string> ids;
    for (const std::string& ref : refs) {
        const std::string dir = resolve_model(ref);
        const std::string id = model_id(ref, dir);
        if (!ids.insert(id).second)
            throw UsageError("two models would both be named \"" + id + "\" (ids are folder names): serve one of them");
        models.emplace_back(id, dir);
    }
    LoadOptions lo;
    if (a.has("precision")) lo.precision = parse_precision(a.str("precision"));
    lo.threads = threads_option(a, 0);
    lo = with_decode_choice(lo);

    if (pipe(stop_pipe) != 0) throw Error("cannot create a pipe");
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);

    // Listening before the models load: clients get 503 "loading" meanwhile, not refused connections.
    server::HttpServer server(o);
    const int port = server.bind();
    std::thread http([&server] { server.run(); });
    try {
        for (const auto& [id, dir] : models) {
            auto lm = LoadedModel::load(dir, {}, lo);
            note_decode_choice(lm->model());
            server.add_model(id, std::move(lm));
        }
    } catch (...) {
        server.stop();
        http.join();
        throw;
    }
    server.ready();
    const bool v6 = o.host.find(':') != std::string::npos;
    std::fprintf(stderr, "listening on http://%s%s%s:%d\n", v6 ? "[" : "", o.host.c_str(), v6 ? "]" : "", port);
    std::fflush(stderr);

    char b = 0;
    while (read(stop_pipe[0], &b, 1) < 0 && errno == EINTR) {
    }
    std::fprintf(stderr, "stopping\n");
    server.stop();
    http.join();
    return 0;
}

}  // namespace

const CommandGroup& serve_commands() {
    static const CommandGroup group{
        "Serving",
        {
            {"serve", "An OpenAI-compatible HTTP server with continuous batching",
             {"--model PATH [--model PATH ...] [--host 127.0.0.1] [--port 8080] [--api-key KEY]\n"
              "[--parallel 4] [--ctx 4096] [--max-queue 64] [--max-tokens N] [--max-body-mb 8]\n"
              "[--read-timeout 10] [--precision P] [--threads N]"},
             "Serves each --model (a folder, a .gguf file or a hub id; give --model again for more) until\n"
             "SIGINT or SIGTERM. Requests name a model by its id: the folder's name, the .gguf file's stem,\n"
             "or the hub id as given (GET /v1/models lists them). Prints \"listening on http://HOST:PORT\"\n"
             "on stderr once the models are loaded.\n\n"
             "Routes: GET /v1/models; POST /v1/chat/completions and /v1/completions (OpenAI's API, streamed\n"
             "as server-sent events with \"stream\": true; parameters it does not implement are refused by\n"
             "name); POST /classify and /score for sequence-classification models (vLLM's shapes);\n"
             "GET /health; GET /metrics (Prometheus).\n\n"
             "  --host H         address to listen on (127.0.0.1: this machine only)\n"
             "  --port N         0 picks a free port (the line above names it)\n"
             "  --api-key KEY    require \"Authorization: Bearer KEY\" on every route but /health; the\n"
             "                   environment variable WP_API_KEY does the same without showing the key in\n"
             "                   the process list\n"
             "  --parallel N     sequences generated at once per model (each holds a KV cache)\n"
             "  --ctx N          prompt + reply bound per sequence (capped at the model's own)\n"
             "  --max-queue N    requests waiting beyond --parallel; more get 429 with Retry-After\n"
             "  --max-tokens N   the largest max_tokens a request may ask (default: --ctx)\n"
             "  --max-body-mb N  request bodies above this get 413\n"
             "  --read-timeout S a client silent for S seconds mid-request is dropped\n",
             {{}, {"model", "host", "port", "api-key", "parallel", "ctx", "max-queue", "max-tokens", "max-body-mb",
                   "read-timeout", "precision", "threads"}, 0, {"model"}},
             run_serve},
        }};
    return group;
}

}  // namespace wp::cli
