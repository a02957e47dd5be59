// GET /metrics in Prometheus' text format (version 0.0.4): the server's request counts by endpoint
// and status, and each generative model's scheduler figures (tokens, queue depth, active
// sequences, time to first token, decode tokens/s). Thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "scheduler.h"

namespace wp::server {

class Metrics {
public:
    // One answered request. Paths other than the server's routes count as "other", so that
    // random paths cannot grow the label set.
    void count_request(const std::string& path, int status);
    // Tokens that task-head models (/classify, /score) read.
    void count_head_tokens(const std::string& model, std::uint64_t tokens);

    // The exposition, with `models` (id, its scheduler's stats) as they are now.
    std::string render(const std::vector<std::pair<std::string, SchedulerStats>>& models) const;

private:
    mutable std::mutex mu_;
    std::map<std::pair<std::string, int>, std::uint64_t> requests_;  // (endpoint, status) -> count
    std::map<std::string, std::uint64_t> head_tokens_;
};

}  // namespace wp::server
