#include "wp/model/question_answering.h"

#include <algorithm>
#include <cctype>
#include <cmath>

#include "wp/error.h"

namespace wp {

namespace {

// Softmax over the context's tokens [begin, end): the pipeline masks the rest to -10000 first,
// which leaves them no probability.
std::vector<double> context_softmax(const std::vector<float>& logits, int begin, int end) {
    std::vector<double> p(logits.size(), 0.0);
    const double top = *std::max_element(logits.begin() + begin, logits.begin() + end);
    double sum = 0;
    for (int t = begin; t < end; ++t) sum += p[static_cast<std::size_t>(t)] = std::exp(logits[static_cast<std::size_t>(t)] - top);
    for (int t = begin; t < end; ++t) p[static_cast<std::size_t>(t)] /= sum;
    return p;
}

}  // namespace

QuestionAnswering answer_question(const Model& model, const Tokenizer& tok, std::string_view question,
                                  std::string_view context, int top_k, int max_answer_tokens) {
    const ModelConfig& c = model.config();  // question_answering_logits checks the head
    if (top_k < 1) throw Error("top-k must be at least 1");
    if (max_answer_tokens < 1) throw Error("the longest answer must be at least one token");
    QuestionAnswering r;
    r.ids = tok.encode(question, true);
    const std::vector<int> context_ids = tok.encode(context, false);
    if (context_ids.empty()) throw Error("the context is empty");
    r.context_begin = static_cast<int>(r.ids.size());
    r.ids.insert(r.ids.end(), context_ids.begin(), context_ids.end());
    if (c.max_position_embeddings > 0 && r.ids.size() > static_cast<std::size_t>(c.max_position_embeddings))
        throw Error("the question and context have " + std::to_string(r.ids.size()) +
                    " tokens; the model takes at most " + std::to_string(c.max_position_embeddings));
    r.logits = question_answering_logits(model, r.ids);

    const int begin = r.context_begin, end = static_cast<int>(r.ids.size());
    const std::vector<double> ps = context_softmax(r.logits.start, begin, end);
    const std::vector<double> pe = context_softmax(r.logits.end, begin, end);
    struct Candidate {
        double score;
        int s, e;
    };
    std::vector<Candidate> all;
    for (int s = begin; s < end; ++s)
        for (int e = s; e < std::min(end, s + max_answer_tokens); ++e)
            all.push_back({ps[static_cast<std::size_t>(s)] * pe[static_cast<std::size_t>(e)], s, e});
    const std::size_t k = std::min(all.size(), static_cast<std::size_t>(top_k));
    std::partial_sort(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(k), all.end(),
                      [](const Candidate& a, const Candidate& b) { return a.score > b.score || (a.score == b.score && a.s < b.s); });
    const std::vector<ByteSpan> spans = token_spans(tok, context_ids, context);
    for (std::size_t i = 0; i < k; ++i) {
        Answer a;
        a.score = all[i].score;
        a.start_token = all[i].s;
        a.end_token = all[i].e;
        a.span = {spans[static_cast<std::size_t>(a.start_token - begin)].begin,
                  spans[static_cast<std::size_t>(a.end_token - begin)].end};
        // Without the space a token carries before its word.
        while (a.span.begin < a.span.end && std::isspace(static_cast<unsigned char>(context[a.span.begin]))) ++a.span.begin;
        while (a.span.end > a.span.begin && std::isspace(static_cast<unsigned char>(context[a.span.end - 1]))) --a.span.end;
        a.text = std::string(context.substr(a.span.begin, a.span.end - a.span.begin));
        r.answers.push_back(std::move(a));
    }
    return r;
}

}  // namespace wp
