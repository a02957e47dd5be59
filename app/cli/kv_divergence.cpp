#include "kv_divergence.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <span>
#include <vector>

#include <nlohmann/json.hpp>


#include "wp/error.h"
#include "wp/io/file_util.h"
#include "wp/model/model.h"
#include "wp/tokenizer/tokenizer.h"

namespace wp::cli {

namespace {

// Log-probabilities of one row of logits, in double.
void log_softmax(std::span<const float> logits, std::vector<double>& out) {
    out.resize(logits.size());
    const double m = *std::max_element(logits.begin(), logits.end());
    double s = 0;
    for (float x : logits) s += std::exp(x - m);
    const double lse = m + std::log(s);
    for (std::size_t i = 0; i < logits.size(); ++i) out[i] = logits[i] - lse;
}

}  // namespace

int kv_divergence(const KvDivergenceOptions& o) {
    LoadOptions lo;
    lo.precision = o.precision;
    lo.threads = o.threads;
    lo.kernels.int8_queries = o.int8_queries;
    lo.kernels.int16_probabilities = o.int16_probabilities;
    const auto model = Model::load(o.model_dir, {}, lo);
    const ModelConfig& c = model->config();
    const auto tok = Tokenizer::load(o.model_dir);
    std::vector<int> ids = tok->encode(read_text_file(o.text_file), true);
    std::size_t limit = static_cast<std::size_t>(o.max_tokens);
    if (c.max_position_embeddings > 0) limit = std::min(limit, static_cast<std::size_t>(c.max_position_embeddings));
    if (ids.size() > limit) ids.resize(limit);
    if (ids.size() < 2) throw Error(o.text_file.string() + ": the text is shorter than two tokens");
    Context ref(c, model->default_cache(), 0, o.against), got(c, model->default_cache(), 0, o.kv);
    std::vector<double> lr, lg, kls;
    kls.reserve(ids.size());
    std::size_t same_top = 0;
    for (std::size_t t = 0; t < ids.size(); ++t) {
        const std::span<const int> one(&ids[t], 1);
        log_softmax(model->forward(ref, one, LogitsMode::Last), lr);
        log_softmax(model->forward(got, one, LogitsMode::Last), lg);
        double kl = 0;
        for (std::size_t i = 0; i < lr.size(); ++i) kl += std::exp(lr[i]) * (lr[i] - lg[i]);
        kls.push_back(std::max(kl, 0.0));
        same_top += std::max_element(lr.begin(), lr.end()) - lr.begin() == std::max_element(lg.begin(), lg.end()) - lg.begin();
    }
    double mean = 0;
    for (double k : kls) mean += k;
    mean /= static_cast<double>(kls.size());
    std::vector<double> sorted = kls;
    std::sort(sorted.begin(), sorted.end());
    const double p99 = sorted[std::min(sorted.size() - 1, sorted.size() * 99 / 100)];
    const double top = static_cast<double>(same_top) / static_cast<double>(kls.size());
    if (o.json) {
        nlohmann::ordered_json j;
        j["tokens"] = kls.size();
        j["kv"] = kv_type_name(o.kv);
        j["against"] = kv_type_name(o.against);
        j["precision"] = precision_name(model->precision());
        j["kl_mean"] = mean;
        j["kl_p99"] = p99;
        j["kl_max"] = sorted.back();
        j["top1_agreement"] = top;
        std::printf("%s\n", j.dump().c_str());
        return 0;
    }
    std::printf("%s KV cache against %s, %s weights, %zu tokens, one at a time\n", kv_type_name(o.kv),
                kv_type_name(o.against), precision_name(model->precision()), kls.size());
    std::printf("  KL(%s || %s) per token: mean %.3g, 99th percentile %.3g, max %.3g nats\n", kv_type_name(o.against),
                kv_type_name(o.kv), mean, p99, sorted.back());
    std::printf("  top token the same at %.2f%% of positions\n", 100.0 * top);
    return 0;
}

}  // namespace wp::cli
