#include "metrics.h"

#include <cstdio>

namespace wp::server {

namespace {

const char* const kRoutes[] = {"/v1/models", "/v1/chat/completions", "/v1/completions", "/classify", "/score",
                               "/health", "/metrics"};

// A label value: backslash, double quote and newline escaped, as the format asks.
std::string label(const std::string& v) {
    std::string out;
    for (char c : v) {
        if (c == '\\') out += "\\\\";
        else if (c == '"') out += "\\\"";
        else if (c == '\n') out += "\\n";
        else out += c;
    }
    return out;
}

void header(std::string& out, const char* name, const char* type, const char* help) {
    out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
}

void sample(std::string& out, const std::string& name, const std::string& labels, double value) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.17g", value);
    out += name + (labels.empty() ? "" : "{" + labels + "}") + " " + buf + "\n";
}

}  // namespace

void Metrics::count_request(const std::string& path, int status) {
    std::string endpoint = "other";
    for (const char* r : kRoutes)
        if (path == r) endpoint = r;
    std::lock_guard lock(mu_);
    ++requests_[{endpoint, status}];
}

void Metrics::count_head_tokens(const std::string& model, std::uint64_t tokens) {
    std::lock_guard lock(mu_);
    head_tokens_[model] += tokens;
}

std::string Metrics::render(const std::vector<std::pair<std::string, SchedulerStats>>& models) const {
    std::string out;
    {
        std::lock_guard lock(mu_);
        header(out, "windowpane_requests_total", "counter", "HTTP requests answered, by endpoint and status.");
        for (const auto& [key, n] : requests_)
            sample(out, "windowpane_requests_total",
                   "endpoint=\"" + label(key.first) + "\",status=\"" + std::to_string(key.second) + "\"",
                   static_cast<double>(n));
        header(out, "windowpane_head_tokens_total", "counter", "Tokens read by task-head models (/classify, /score).");
        for (const auto& [model, n] : head_tokens_)
            sample(out, "windowpane_head_tokens_total", "model=\"" + label(model) + "\"", static_cast<double>(n));
    }
    struct Family {
        const char* name;
        const char* type;
        const char* help;
    };
    const Family families[] = {
        {"windowpane_generation_requests_total", "counter", "Generation requests the scheduler accepted."},
        {"windowpane_prompt_tokens_total", "counter", "Prompt tokens of accepted generation requests."},
        {"windowpane_completion_tokens_total", "counter", "Tokens generated."},
        {"windowpane_queue_depth", "gauge", "Requests waiting for a sequence slot."},
        {"windowpane_active_sequences", "gauge", "Sequences in the running batch."},
        {"windowpane_time_to_first_token_seconds", "summary", "From submission to the first generated token."},
        {"windowpane_decode_tokens_per_second", "gauge", "Generated tokens per second of decode steps, over the server's life."},
    };
    for (const Family& f : families) {
        header(out, f.name, f.type, f.help);
        for (const auto& [id, s] : models) {
            const std::string l = "model=\"" + label(id) + "\"";
            const std::string name = f.name;
            if (name == "windowpane_generation_requests_total") sample(out, name, l, static_cast<double>(s.requests));
            else if (name == "windowpane_prompt_tokens_total") sample(out, name, l, static_cast<double>(s.prompt_tokens));
            else if (name == "windowpane_completion_tokens_total") sample(out, name, l, static_cast<double>(s.completion_tokens));
            else if (name == "windowpane_queue_depth") sample(out, name, l, s.queued);
            else if (name == "windowpane_active_sequences") sample(out, name, l, s.active);
            else if (name == "windowpane_decode_tokens_per_second")
                sample(out, name, l, s.decode_seconds > 0 ? static_cast<double>(s.decode_tokens) / s.decode_seconds : 0);
            else {
                sample(out, name + "_sum", l, s.ttft_seconds_sum);
                sample(out, name + "_count", l, static_cast<double>(s.ttft_count));
            }
        }
    }
    return out;
}

}  // namespace wp::server
