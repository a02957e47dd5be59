#include "http_server.h"

#include <httplib.h>
#include <sys/socket.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <ctime>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <thread>

#include "connection_probe.h"
#include "openai_request.h"
#include "wp/chat/chat_template.h"
#include "wp/error.h"
#include "wp/model/task_heads.h"

namespace wp::server {

using ojson = nlohmann::ordered_json;
using Kind = CompletionRequest::Kind;

struct HttpServer::Served {
    std::string id;
    std::unique_ptr<LoadedModel> lm;
    std::unique_ptr<Scheduler> scheduler;  // causal LMs
    std::mutex forward_mu;                 // task-head models: a Model runs one forward pass at a time
    std::int64_t ctx = 0;                  // prompt + reply bound
    std::time_t created = 0;
};

namespace {

constexpr auto kPoll = std::chrono::milliseconds(100);  // how often a waiting request looks at its client

// Generated text may hold a partial character (a token's piece): never let dump() throw on it.
std::string dump(const ojson& j) { return j.dump(-1, ' ', false, ojson::error_handler_t::replace); }

std::string random_id(const char* prefix) {
    thread_local std::mt19937_64 rng{std::random_device{}()};
    static const char hex[] = "0123456789abcdef";
    std::string s = prefix;
    for (int i = 0; i < 24; ++i) s += hex[rng() & 15];
    return s;
}

void send_error(httplib::Response& res, int status, const std::string& message, const std::string& param = {},
                const std::string& code = {}) {
    res.status = status;
    res.set_content(error_body(status, message, param, code), "application/json");
}

void send_json(httplib::Response& res, const ojson& j) { res.set_content(dump(j), "application/json"); }

// Compares in time that depends only on the key's length, so that timing does not reveal how much
// of a guess was right.
bool same_key(const std::string& given, const std::string& key) {
    unsigned diff = given.size() == key.size() ? 0 : 1;
    for (std::size_t i = 0; i < key.size(); ++i)
        diff |= static_cast<unsigned char>(key[i]) ^ static_cast<unsigned char>(i < given.size() ? given[i] : 0);
    return diff == 0;
}

ojson bytes_of(const std::string& s) {
    ojson a = ojson::array();
    for (unsigned char c : s) a.push_back(c);
    return a;
}

// One token of chat logprobs: {"token", "logprob", "bytes", "top_logprobs": [...]}.
ojson chat_logprob(const StreamEvent& e) {
    ojson j;
    j["token"] = e.token.piece;
    j["logprob"] = e.token.logprob;
    j["bytes"] = bytes_of(e.token.piece);
    ojson top = ojson::array();
    for (const TokenLogprob& t : e.top) {
        ojson a;
        a["token"] = t.piece;
        a["logprob"] = t.logprob;
        a["bytes"] = bytes_of(t.piece);
        top.push_back(std::move(a));
    }
    j["top_logprobs"] = std::move(top);
    return j;
}

// The legacy completions' logprobs: parallel lists, the alternatives as {piece: logprob}, and each
// token's offset (in characters) in the completion text, as vLLM counts it.
struct TextLogprobs {
    ojson tokens = ojson::array(), token_logprobs = ojson::array(), top = ojson::array(), offsets = ojson::array();
    std::size_t offset = 0;

    void add(const StreamEvent& e) {
        tokens.push_back(e.token.piece);
        token_logprobs.push_back(e.token.logprob);
        ojson alts = ojson::object();
        for (const TokenLogprob& t : e.top)
            if (!alts.contains(t.piece)) alts[t.piece] = t.logprob;
        top.push_back(std::move(alts));
        offsets.push_back(offset);
        for (unsigned char c : e.token.piece) offset += (c & 0xC0) != 0x80;
    }
    bool empty() const { return tokens.empty(); }
    ojson json() const {
        ojson j;
        j["tokens"] = tokens;
        j["token_logprobs"] = token_logprobs;
        j["top_logprobs"] = top;
        j["text_offset"] = offsets;
        return j;
    }
    void clear() {
        tokens = ojson::array(), token_logprobs = ojson::array(), top = ojson::array(), offsets = ojson::array();
    }
};

ojson usage_json(int prompt, int completion) {
    ojson u;
    u["prompt_tokens"] = prompt;
    u["completion_tokens"] = completion;
    u["total_tokens"] = prompt + completion;
    return u;
}

std::string sse(const ojson& j) { return "data: " + dump(j) + "\n\n"; }

// JSON only: the types a web page may send cross-site without asking (text/plain, forms, none)
// are refused, so a page the user visits cannot make a local server generate.
bool json_content_type(const httplib::Request& req) {
    std::string t = req.get_header_value("Content-Type");
    t = t.substr(0, t.find(';'));
    while (!t.empty() && t.back() == ' ') t.pop_back();
    std::transform(t.begin(), t.end(), t.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return t == "application/json";
}

bool loopback_name(const std::string& host) {
    return host == "127.0.0.1" || host == "localhost" || host == "::1" || host == "[::1]";
}

// The Host header's name without its port ("[::1]:8080" -> "[::1]").
std::string host_name(const std::string& header) {
    if (!header.empty() && header[0] == '[') return header.substr(0, header.find(']') + 1);
    return header.substr(0, header.find(':'));
}

// One generation as the handler and, when streamed, the content provider see it.
struct Generation {
    std::shared_ptr<Job> job;
    Kind kind = Kind::Chat;
    std::string id, model;
    std::time_t created = 0;
    int top_logprobs = -1;
    bool include_usage = false;
    // Streaming state.
    bool started = false, finished = false;
    std::chrono::steady_clock::time_point probed = std::chrono::steady_clock::now();
    ojson pending_chat_logprobs = ojson::array();  // tokens whose text is still held back
    TextLogprobs text_logprobs;

    ojson chunk_base() const {
        ojson j;
        j["id"] = id;
        j["object"] = kind == Kind::Chat ? "chat.completion.chunk" : "text_completion";
        j["created"] = created;
        j["model"] = model;
        return j;
    }

    // A streamed chunk with `text` and the logprobs gathered since the last one.
    ojson chunk(const std::optional<std::string>& text, const std::optional<std::string>& finish) {
        ojson j = chunk_base();
        ojson c;
        c["index"] = 0;
        if (kind == Kind::Chat) {
            ojson delta = ojson::object();
            if (text) delta["content"] = *text;
            c["delta"] = std::move(delta);
            if (top_logprobs >= 0 && !pending_chat_logprobs.empty()) {
                c["logprobs"] = {{"content", pending_chat_logprobs}};
                pending_chat_logprobs = ojson::array();
            } else {
                c["logprobs"] = nullptr;
            }
        } else {
            c["text"] = text.value_or("");
            if (top_logprobs >= 0 && !text_logprobs.empty()) {
                c["logprobs"] = text_logprobs.json();
                text_logprobs.clear();
            } else {
                c["logprobs"] = nullptr;
            }
        }
        c["finish_reason"] = finish ? ojson(*finish) : ojson();
        j["choices"] = ojson::array({std::move(c)});
        if (include_usage) j["usage"] = nullptr;  // as OpenAI: only the last chunk carries it
        return j;
    }

    void add_logprobs(const StreamEvent& e) {
        if (top_logprobs < 0) return;
        if (kind == Kind::Chat) pending_chat_logprobs.push_back(chat_logprob(e));
        else text_logprobs.add(e);
    }
};

}  // namespace

// The routes, as members of a friend so that they reach the server's state without widening its header.
class HttpServer::Handlers {
public:
    explicit Handlers(HttpServer& s) : s_(s) {}

    Served& find(const std::string& id) const {
        for (const auto& m : s_.models_)
            if (m->id == id) return *m;
        throw RequestError("The model `" + id + "` does not exist (GET /v1/models lists them)", "model", 404);
    }

    // Every route's checks before its work: key, state, content type; errors into OpenAI's shape.
    bool admitted(const httplib::Request& req, httplib::Response& res) const {
        // A server on a loopback address answers only requests addressed to it by a loopback
        // name: a web page's DNS rebinding cannot reach it under another name.
        if (loopback_name(s_.options_.host) && !loopback_name(host_name(req.get_header_value("Host")))) {
            send_error(res, 403, "this server listens on " + s_.options_.host +
                                     " and answers requests for localhost, 127.0.0.1 or [::1] only");
            return false;
        }
        if (!s_.options_.api_key.empty()) {
            const std::string auth = req.get_header_value("Authorization");
            const std::string prefix = "Bearer ";
            const bool ok = auth.size() > prefix.size() && auth.compare(0, prefix.size(), prefix) == 0 &&
                            same_key(auth.substr(prefix.size()), s_.options_.api_key);
            if (!ok) {
                res.set_header("WWW-Authenticate", "Bearer");
                send_error(res, 401, "missing or wrong API key: send the header Authorization: Bearer KEY", "",
                           "invalid_api_key");
                return false;
            }
        }
        if (s_.stopping_) {
            res.set_header("Retry-After", "5");
            send_error(res, 503, "the server is stopping");
            return false;
        }
        if (!s_.ready_) {
            res.set_header("Retry-After", "1");
            send_error(res, 503, "the server is loading its models");
            return false;
        }
        return true;
    }

    // A POST route: content type, then the body read within max_body_bytes, then `fn`.
    httplib::Server::HandlerWithContentReader post(
        std::function<void(const httplib::Request&, const std::string&, httplib::Response&)> fn) {
        return [this, fn](const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& reader) {
            // The body is read (within the bound) whatever follows, so that the connection stays
            // in step for the client's next request.
            std::string body;
            bool too_large = false;
            const std::size_t limit = s_.options_.max_body_bytes;
            auto receive = [&](const char* data, std::size_t n) {
                if (body.size() + n > limit) {
                    too_large = true;
                    return false;
                }
                body.append(data, n);
                return true;
            };
            const bool read = req.is_multipart_form_data()
                                  ? reader([](const httplib::MultipartFormData&) { return true; }, receive)
                                  : reader(receive);
            if (!read || too_large) {
                res.set_header("Connection", "close");
                if (too_large || res.status == 413)
                    send_error(res, 413, "the request body is larger than this server's limit of " +
                                             std::to_string(limit) + " bytes");
                else
                    send_error(res, 400, "the request body could not be read");
                return;
            }
            run(req, res, [&] {
                if (!admitted(req, res)) return;
                if (!json_content_type(req))
                    throw RequestError("the request body must be JSON (Content-Type: application/json), not " +
                                           req.get_header_value("Content-Type"),
                                       "", 415);
                fn(req, body, res);
            });
        };
    }

    httplib::Server::Handler get(std::function<void(const httplib::Request&, httplib::Response&)> fn) {
        return [this, fn](const httplib::Request& req, httplib::Response& res) {
            run(req, res, [&] {
                if (admitted(req, res)) fn(req, res);
            });
        };
    }

    static void run(const httplib::Request&, httplib::Response& res, const std::function<void()>& work) {
        try {
            work();
        } catch (const RequestError& e) {
            send_error(res, e.status(), e.what(), e.param(), e.status() == 404 ? "model_not_found" : "");
        } catch (const Error& e) {  // e.g. a text beyond the tokenizer's bound
            send_error(res, 400, e.what());
        } catch (const std::exception& e) {
            send_error(res, 500, e.what());
        }
    }

    void models(const httplib::Request&, httplib::Response& res) const {
        ojson data = ojson::array();
        for (const auto& m : s_.models_) {
            ojson j;
            j["id"] = m->id;
            j["object"] = "model";
            j["created"] = m->created;
            j["owned_by"] = "windowpane";
            j["max_model_len"] = m->ctx;  // as vLLM lists it
            data.push_back(std::move(j));
        }
        send_json(res, ojson{{"object", "list"}, {"data", std::move(data)}});
    }

    void completions(const httplib::Request& hreq, const std::string& body, httplib::Response& res, Kind kind) {
        const CompletionRequest r = kind == Kind::Chat ? parse_chat_request(body) : parse_completion_request(body);
        Served& m = find(r.model);
        if (!m.scheduler)
            throw RequestError(m.id + " is a " + head_name(m.lm->model().config().head) +
                                   " model: it serves /classify and /score, not generation",
                               "model");
        const std::string what = kind == Kind::Chat ? "messages" : "prompt";
        std::vector<int> prompt;
        if (kind == Kind::Chat) {
            std::string text;
            try {
                text = m.lm->render(r.messages, true);
            } catch (const TemplateError& e) {
                throw RequestError(std::string("the model's chat template refused the messages: ") + e.what(), "messages");
            }
            // The template writes <bos> itself, as ChatSession::reply encodes it.
            prompt = m.lm->tokenizer().encode(text, false);
        } else {
            prompt = m.lm->tokenizer().encode(r.prompt, true);
        }
        const auto n = static_cast<std::int64_t>(prompt.size());
        if (n == 0) throw RequestError(what + " gives no tokens", what);
        if (n >= m.ctx)
            throw RequestError("the prompt has " + std::to_string(n) + " tokens; this server's context holds " +
                                   std::to_string(m.ctx) + " for prompt and reply",
                               what);
        const std::int64_t cap = s_.options_.max_tokens > 0 ? std::min(s_.options_.max_tokens, m.ctx) : m.ctx;
        if (r.max_tokens && *r.max_tokens > cap)
            throw RequestError("max_tokens " + std::to_string(*r.max_tokens) + " is above this server's bound of " +
                                   std::to_string(cap),
                               "max_tokens");
        // As OpenAI and vLLM do: a reply that could not fit is refused, not cut short silently.
        if (r.max_tokens && n + *r.max_tokens > m.ctx)
            throw RequestError("this server's context holds " + std::to_string(m.ctx) + " tokens, but " +
                                   std::to_string(n + *r.max_tokens) + " were asked (" + std::to_string(n) +
                                   " in the prompt, " + std::to_string(*r.max_tokens) + " in the reply)",
                               "max_tokens");

        GenerationRequest g;
        g.prompt = std::move(prompt);
        g.max_tokens = static_cast<int>(r.max_tokens ? *r.max_tokens : std::min(cap, m.ctx - n));
        g.sampling = r.sampling;
        if (!r.sampling.greedy && !r.seeded) {
            std::random_device rd;
            g.sampling.seed = (std::uint64_t{rd()} << 32) | rd();
        }
        g.stop = r.stop;
        g.top_logprobs = r.top_logprobs;

        auto gen = std::make_shared<Generation>();
        try {
            gen->job = m.scheduler->submit(std::move(g));
        } catch (const QueueFull& e) {
            res.set_header("Retry-After", "1");
            send_error(res, 429, std::string("too many requests waiting: ") + e.what());
            return;
        } catch (const Error& e) {
            throw RequestError(e.what(), what);
        }
        gen->kind = kind;
        gen->id = random_id(kind == Kind::Chat ? "chatcmpl-" : "cmpl-");
        gen->model = m.id;
        gen->created = std::time(nullptr);
        gen->top_logprobs = r.top_logprobs;
        gen->include_usage = r.include_usage;
        if (r.stream) stream(gen, res);
        else whole(gen, hreq, res);
    }

    // Non-streamed: wait for Done, looking at the client between events.
    void whole(const std::shared_ptr<Generation>& g, const httplib::Request& req, httplib::Response& res) {
        const ConnectionProbe probe(req.local_addr, req.local_port, req.remote_addr, req.remote_port);
        std::string text;
        auto probed = std::chrono::steady_clock::now();
        for (;;) {
            if (s_.stopping_) {
                g->job->cancel();
                res.set_header("Retry-After", "5");
                send_error(res, 503, "the server is stopping");
                return;
            }
            std::optional<StreamEvent> e = g->job->next(kPoll);
            // By the clock, not only when no event came: tokens may come faster than kPoll.
            if (const auto now = std::chrono::steady_clock::now(); now - probed >= kPoll) {
                probed = now;
                if (probe.gone()) {
                    g->job->cancel();
                    res.status = 499;  // nginx's "client closed request": only the metrics see it
                    return;
                }
            }
            if (!e) continue;
            if (e->kind == StreamEvent::Kind::Error) {
                send_error(res, 500, e->error);
                return;
            }
            text += e->text;
            if (e->kind == StreamEvent::Kind::Token) {
                g->add_logprobs(*e);
                continue;
            }
            ojson c;
            c["index"] = 0;
            if (g->kind == Kind::Chat) {
                c["message"] = {{"role", "assistant"}, {"content", text}};
                c["logprobs"] = g->top_logprobs >= 0 ? ojson{{"content", g->pending_chat_logprobs}} : ojson();
            } else {
                c["text"] = text;
                c["logprobs"] = g->top_logprobs >= 0 ? g->text_logprobs.json() : ojson();
            }
            c["finish_reason"] = e->finish_reason;
            ojson j;
            j["id"] = g->id;
            j["object"] = g->kind == Kind::Chat ? "chat.completion" : "text_completion";
            j["created"] = g->created;
            j["model"] = g->model;
            j["choices"] = ojson::array({std::move(c)});
            j["usage"] = usage_json(e->prompt_tokens, e->completion_tokens);
            send_json(res, j);
            return;
        }
    }

    // Streamed as server-sent events; the provider runs on this request's thread after the
    // handler returns, one call per event, and cancels the job when the client is gone.
    void stream(const std::shared_ptr<Generation>& g, httplib::Response& res) {
        res.set_header("Cache-Control", "no-cache");
        res.set_header("X-Accel-Buffering", "no");
        HttpServer& s = s_;
        res.set_chunked_content_provider(
            "text/event-stream",
            [g, &s](std::size_t, httplib::DataSink& sink) {
                auto send = [&](const std::string& data) { return sink.write(data.data(), data.size()); };
                if (!g->started) {
                    g->started = true;
                    // OpenAI's first chat chunk names the role; it also tells the client the stream began.
                    if (g->kind == Kind::Chat) {
                        ojson first = g->chunk_base();
                        ojson c;
                        c["index"] = 0;
                        c["delta"] = {{"role", "assistant"}, {"content", ""}};
                        c["logprobs"] = nullptr;
                        c["finish_reason"] = nullptr;
                        first["choices"] = ojson::array({std::move(c)});
                        if (g->include_usage) first["usage"] = nullptr;
                        return send(sse(first));
                    }
                }
                for (;;) {
                    if (s.stopping_) {
                        g->job->cancel();
                        send(sse(ojson::parse(error_body(503, "the server is stopping"))));
                        sink.done();
                        g->finished = true;
                        return true;
                    }
                    std::optional<StreamEvent> e = g->job->next(kPoll);
                    // Writes nothing: looks for the peer's FIN (httplib's is_socket_alive), by the
                    // clock, as held-back tokens write nothing either.
                    if (const auto now = std::chrono::steady_clock::now(); now - g->probed >= kPoll) {
                        g->probed = now;
                        if (!sink.is_writable()) {
                            g->job->cancel();
                            return false;
                        }
                    }
                    if (!e) continue;
                    if (e->kind == StreamEvent::Kind::Error) {
                        // The status line is gone; an error event is what OpenAI's clients read.
                        send(sse(ojson::parse(error_body(500, e->error))));
                        sink.done();
                        g->finished = true;
                        return true;
                    }
                    if (e->kind == StreamEvent::Kind::Token) {
                        g->add_logprobs(*e);
                        if (e->text.empty()) continue;  // held back: its logprobs go with the next text
                        if (!send(sse(g->chunk(e->text, std::nullopt)))) {
                            g->job->cancel();
                            return false;
                        }
                        return true;
                    }
                    // Done.
                    bool ok = true;
                    if (!e->text.empty() || !g->pending_chat_logprobs.empty() || !g->text_logprobs.empty())
                        ok = send(sse(g->chunk(e->text, std::nullopt)));
                    ok = ok && send(sse(g->chunk(std::nullopt, e->finish_reason)));
                    if (g->include_usage) {
                        ojson u = g->chunk_base();
                        u["choices"] = ojson::array();
                        u["usage"] = usage_json(e->prompt_tokens, e->completion_tokens);
                        ok = ok && send(sse(u));
                    }
                    ok = ok && send("data: [DONE]\n\n");
                    g->finished = true;
                    if (!ok) return false;
                    sink.done();
                    return true;
                }
            },
            [g](bool) {
                // However the response ended, its job must not keep a sequence slot.
                if (!g->finished) g->job->cancel();
            });
    }

    // Sequence-classification model `id`, or RequestError.
    Served& head_model(const std::string& id, const char* route) const {
        Served& m = find(id);
        const ModelConfig& c = m.lm->model().config();
        if (c.head != Head::SequenceClassification)
            throw RequestError(std::string(route) + " takes a sequence-classification model; " + m.id + " is a " +
                                   head_name(c.head) + " model",
                               "model");
        return m;
    }

    std::vector<int> head_ids(const Served& m, const std::string& text, const std::string& param) const {
        std::vector<int> ids = m.lm->tokenizer().encode(text, true);
        if (ids.empty()) throw RequestError(param + " gives no tokens", param);
        if (static_cast<std::int64_t>(ids.size()) > m.ctx)
            throw RequestError(param + " has " + std::to_string(ids.size()) + " tokens; the model takes at most " +
                                   std::to_string(m.ctx),
                               param);
        return ids;
    }

    // Runs the inputs through the model (one caller at a time), stopping between passes once the
    // client is gone; nullopt then.
    std::optional<std::vector<SequenceClassification>> classify(Served& m, const std::vector<std::vector<int>>& inputs,
                                                                const httplib::Request& req) {
        const ConnectionProbe probe(req.local_addr, req.local_port, req.remote_addr, req.remote_port);
        std::vector<SequenceClassification> out(inputs.size());
        bool gone = false;
        {
            std::lock_guard lock(m.forward_mu);
            classify_sequences(m.lm->model(), inputs, 512, [&](std::size_t i, SequenceClassification&& r) {
                out[i] = std::move(r);
                gone = probe.gone();
                return !gone;
            });
        }
        if (gone) return std::nullopt;
        std::uint64_t tokens = 0;
        for (const auto& ids : inputs) tokens += ids.size();
        s_.metrics_.count_head_tokens(m.id, tokens);
        return out;
    }

    static ojson head_usage(const std::vector<std::vector<int>>& inputs) {
        int tokens = 0;
        for (const auto& ids : inputs) tokens += static_cast<int>(ids.size());
        return usage_json(tokens, 0);
    }

    // vLLM's envelope of /classify's and /score's results.
    static ojson head_list(const char* id_prefix, const std::string& model, ojson data,
                           const std::vector<std::vector<int>>& inputs) {
        ojson j;
        j["id"] = random_id(id_prefix);
        j["object"] = "list";
        j["created"] = std::time(nullptr);
        j["model"] = model;
        j["data"] = std::move(data);
        j["usage"] = head_usage(inputs);
        return j;
    }

    // vLLM's /classify: per input the arg-max label, the probabilities (softmax; sigmoid for one label).
    void classify_route(const httplib::Request& req, const std::string& body, httplib::Response& res) {
        const ClassifyRequest r = parse_classify_request(body);
        Served& m = head_model(r.model, "/classify");
        std::vector<std::vector<int>> inputs;
        for (std::size_t i = 0; i < r.input.size(); ++i)
            inputs.push_back(head_ids(m, r.input[i], r.input.size() == 1 ? "input" : "input[" + std::to_string(i) + "]"));
        const auto results = classify(m, inputs, req);
        if (!results) {
            res.status = 499;
            return;
        }
        const auto& labels = m.lm->model().config().labels;
        ojson data = ojson::array();
        for (std::size_t i = 0; i < results->size(); ++i) {
            const SequenceClassification& c = (*results)[i];
            ojson probs = ojson::array();
            if (c.logits.size() == 1) {
                probs.push_back(1.0 / (1.0 + std::exp(-static_cast<double>(c.logits[0]))));
            } else {
                const float top = *std::max_element(c.logits.begin(), c.logits.end());
                double sum = 0;
                for (float x : c.logits) sum += std::exp(static_cast<double>(x - top));
                for (float x : c.logits) probs.push_back(std::exp(static_cast<double>(x - top)) / sum);
            }
            ojson d;
            d["index"] = i;
            d["label"] = c.label;
            d["probs"] = std::move(probs);
            d["num_classes"] = labels.size();
            data.push_back(std::move(d));
        }
        send_json(res, head_list("classify-", m.id, std::move(data), inputs));
    }

    // vLLM's /score with a one-label model (a reward or cross-encoder model): sigmoid of its logit on
    // each pair. A pair's ids are each text encoded as the tokenizer encodes a text alone, one after
    // the other: transformers' pair encoding for these families (<bos>A<bos>B for Gemma, AB for Qwen2).
    void score_route(const httplib::Request& req, const std::string& body, httplib::Response& res) {
        const ScoreRequest r = parse_score_request(body);
        Served& m = head_model(r.model, "/score");
        if (m.lm->model().config().labels.size() != 1)
            throw RequestError("/score takes a model with one label (a reward or cross-encoder model); " + m.id +
                                   " has " + std::to_string(m.lm->model().config().labels.size()) + " (use /classify)",
                               "model");
        std::vector<std::vector<int>> inputs;
        for (std::size_t i = 0; i < r.pairs.size(); ++i) {
            std::vector<int> ids = head_ids(m, r.pairs[i].first, "text_1");
            const std::vector<int> second = head_ids(m, r.pairs[i].second, "text_2");
            ids.insert(ids.end(), second.begin(), second.end());
            if (static_cast<std::int64_t>(ids.size()) > m.ctx)
                throw RequestError("pair " + std::to_string(i) + " has " + std::to_string(ids.size()) +
                                       " tokens; the model takes at most " + std::to_string(m.ctx),
                                   "text_2");
            inputs.push_back(std::move(ids));
        }
        const auto results = classify(m, inputs, req);
        if (!results) {
            res.status = 499;
            return;
        }
        ojson data = ojson::array();
        for (std::size_t i = 0; i < results->size(); ++i) {
            ojson d;
            d["index"] = i;
            d["object"] = "score";
            d["score"] = (*results)[i].score;
            data.push_back(std::move(d));
        }
        send_json(res, head_list("score-", m.id, std::move(data), inputs));
    }

    void health(httplib::Response& res) const {
        if (s_.stopping_) {
            res.set_header("Retry-After", "5");
            send_error(res, 503, "the server is stopping");
        } else if (!s_.ready_) {
            res.set_header("Retry-After", "1");
            send_error(res, 503, "the server is loading its models");
        } else {
            send_json(res, ojson{{"status", "ok"}});
        }
    }

    void metrics(httplib::Response& res) const {
        std::vector<std::pair<std::string, SchedulerStats>> stats;
        for (const auto& m : s_.models_)
            if (m->scheduler) stats.emplace_back(m->id, m->scheduler->stats());
        res.set_content(s_.metrics_.render(stats), "text/plain; version=0.0.4");
    }

private:
    HttpServer& s_;
};

HttpServer::HttpServer(ServerOptions options) : options_(std::move(options)), http_(std::make_unique<httplib::Server>()) {
    auto h = std::make_shared<Handlers>(*this);
    httplib::Server& srv = *http_;

    srv.Get("/v1/models", h->get([h](const auto& req, auto& res) { h->models(req, res); }));
    srv.Post("/v1/chat/completions", h->post([h](const auto& req, const std::string& body, auto& res) {
        h->completions(req, body, res, Kind::Chat);
    }));
    srv.Post("/v1/completions", h->post([h](const auto& req, const std::string& body, auto& res) {
        h->completions(req, body, res, Kind::Text);
    }));
    srv.Post("/classify", h->post([h](const auto& req, const std::string& body, auto& res) { h->classify_route(req, body, res); }));
    srv.Post("/score", h->post([h](const auto& req, const std::string& body, auto& res) { h->score_route(req, body, res); }));
    srv.Get("/metrics", h->get([h](const auto&, auto& res) { h->metrics(res); }));
    // Open to all (no key), so that a load balancer can probe it; it says loading/stopping as 503.
    srv.Get("/health", [h](const httplib::Request&, httplib::Response& res) { h->health(res); });

    // Statuses httplib sets itself (unknown route 404, 413 by Content-Length, malformed request 400)
    // get OpenAI's error body too; handlers' own errors already have theirs.
    srv.set_error_handler(httplib::Server::HandlerWithResponse([](const httplib::Request& req, httplib::Response& res) {
        if (!res.body.empty() || res.content_provider_) return httplib::Server::HandlerResponse::Unhandled;
        std::string message = res.status == 400   ? "malformed HTTP request"
                              : res.status == 414 ? "the request line is too long"
                              : res.status == 415 ? "unsupported Content-Encoding"
                                                  : "HTTP error " + std::to_string(res.status);
        if (res.status == 404) message = "no route " + req.method + " " + req.path;
        if (res.status == 413) message = "the request body is larger than this server's limit";
        send_error(res, res.status, message);
        return httplib::Server::HandlerResponse::Handled;
    }));
    srv.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
        std::string message = "internal error";
        try {
            std::rethrow_exception(ep);
        } catch (const std::exception& e) {
            message = e.what();
        } catch (...) {
        }
        send_error(res, 500, message);
    });
    srv.set_logger([this](const httplib::Request& req, const httplib::Response& res) {
        metrics_.count_request(req.path, res.status);
    });

    srv.set_payload_max_length(options_.max_body_bytes);
    srv.set_read_timeout(options_.read_timeout_seconds, 0);
    srv.set_write_timeout(10, 0);
    // Idle keep-alive connections hold a thread each, so they are cut; but clients keep idle
    // sockets for about 4 s (Node's agents, undici) and reuse them, and a server that closes first
    // can meet their next request on the way ("socket hang up"). 5 s, as llama-server (httplib's
    // default); httplib announces it in each response's Keep-Alive header.
    srv.set_keep_alive_timeout(5);
    srv.set_keep_alive_max_count(100);
    // httplib's default adds SO_REUSEPORT, which would let a second server share the port silently.
    srv.set_socket_options([](int sock) {
        int yes = 1;
        setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    });
}

HttpServer::~HttpServer() {
    stop();
    // Schedulers end their jobs (Error events) before the models they run go away.
    for (auto& m : models_) m->scheduler.reset();
}

int HttpServer::bind() {
    int threads = options_.http_threads;
    if (threads <= 0) {
        // A generation holds its thread while it streams or waits in the queue, so there is one
        // for each place the scheduler has (the queue's bound, not the pool, answers 429); the
        // rest answer everything else, and outlast slow clients until their read timeout.
        threads = options_.scheduler.parallel + options_.scheduler.max_queue + 16;
    }
    http_->new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<std::size_t>(threads)); };
    int port = options_.port;
    if (port == 0) {
        port = http_->bind_to_any_port(options_.host);
        if (port < 0) throw Error("cannot listen on " + options_.host + " (any port)");
    } else if (!http_->bind_to_port(options_.host, port)) {
        throw Error("cannot listen on " + options_.host + ":" + std::to_string(port) +
                    " (in use, or not an address of this machine)");
    }
    return port;
}

void HttpServer::run() {
    running_ = true;
    if (!stopping_) http_->listen_after_bind();
    running_ = false;
}

void HttpServer::add_model(const std::string& id, std::unique_ptr<LoadedModel> model) {
    auto m = std::make_unique<Served>();
    m->id = id;
    m->created = std::time(nullptr);
    const ModelConfig& c = model->model().config();
    m->ctx = options_.scheduler.ctx;
    if (c.max_position_embeddings > 0) m->ctx = std::min<std::int64_t>(m->ctx, c.max_position_embeddings);
    m->lm = std::move(model);
    if (c.head == Head::CausalLM) {
        SchedulerOptions so = options_.scheduler;
        so.ctx = m->ctx;
        m->scheduler = std::make_unique<Scheduler>(*m->lm, so);
    }
    models_.push_back(std::move(m));
}

void HttpServer::ready() { ready_ = true; }

void HttpServer::stop() {
    stopping_ = true;
    // listen_after_bind may not have started listening yet: wait until it has, or has returned.
    while (running_ && !http_->is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    http_->stop();
}

}  // namespace wp::server
