// Task-head commands: classify (sequence classification, token classification, question-answering
// logits) on token ids or a text. The heads' semantics: core's wp/model/task_heads.h.
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "command.h"
#include "decode_kernels.h"
#include "model_argument.h"
#include "standard_input.h"
#include "wp/error.h"
#include "wp/model/model.h"
#include "wp/model/task_heads.h"
#include "wp/tokenizer/tokenizer.h"

namespace wp::cli {

namespace {

int run_classify(const Args& a) {
    const std::string dir = model_dir(a);
    const bool from_stdin = !a.positional().empty() && a.positional()[0] == "-";
    const int sources = a.has("ids") + a.has("text") + from_stdin;
    if (sources != 1) throw UsageError("give exactly one of --ids, --text or - (standard input)");
    LoadOptions lo;
    if (a.has("precision")) lo.precision = parse_precision(a.str("precision"));
    lo.threads = threads_option(a, 0);
    const auto model = Model::load(dir, {}, with_decode_choice(lo));
    note_decode_choice(*model);
    const ModelConfig& c = model->config();
    if (c.head == Head::CausalLM)
        throw Error(dir + ": a causal language model has no task head; classify takes a *ForSequenceClassification, "
                          "*ForTokenClassification or *ForQuestionAnswering model");
    std::vector<int> ids;
    if (a.has("ids")) {
        ids = parse_ids(a.str("ids"));
    } else {
        std::string text = a.has("text") ? a.str("text") : read_standard_input();
        if (from_stdin && !text.empty() && text.back() == '\n') text.pop_back();
        ids = Tokenizer::load(dir)->encode(text, true);
    }
    if (c.max_position_embeddings > 0 && ids.size() > static_cast<std::size_t>(c.max_position_embeddings))
        throw Error("the input has " + std::to_string(ids.size()) + " tokens; the model takes at most " +
                    std::to_string(c.max_position_embeddings));
    nlohmann::ordered_json out;
    out["task"] = head_name(c.head);
    out["input_ids"] = ids;
    if (c.head == Head::SequenceClassification) {
        const SequenceClassification r = classify_sequence(*model, ids);
        out["logits"] = r.logits;
        out["pooled_index"] = r.pooled_index;
        out["label"] = r.label;
        out["score"] = r.score;
        if (!a.flag("json")) {
            std::printf("%s: %s %.4f (pooled token %d of %zu)\n", c.architecture.c_str(), r.label.c_str(), r.score,
                        r.pooled_index, ids.size());
            for (std::size_t i = 0; i < r.logits.size(); ++i)
                std::printf("  %-20s logit %9.4f\n", c.labels[i].c_str(), r.logits[i]);
            return 0;
        }
    } else if (c.head == Head::TokenClassification) {
        const TokenClassification r = classify_tokens(*model, ids);
        nlohmann::ordered_json rows = nlohmann::ordered_json::array();
        for (std::size_t t = 0; t < ids.size(); ++t)
            rows.push_back(std::vector<float>(r.logits.begin() + static_cast<std::ptrdiff_t>(t * r.num_labels),
                                              r.logits.begin() + static_cast<std::ptrdiff_t>((t + 1) * r.num_labels)));
        out["logits"] = rows;
        out["labels"] = r.labels;
        if (!a.flag("json")) {
            for (std::size_t t = 0; t < ids.size(); ++t) std::printf("%6d  %s\n", ids[t], r.labels[t].c_str());
            return 0;
        }
    } else {
        const QuestionAnsweringLogits r = question_answering_logits(*model, ids);
        out["start_logits"] = r.start;
        out["end_logits"] = r.end;
        if (!a.flag("json")) {
            for (std::size_t t = 0; t < ids.size(); ++t)
                std::printf("%6d  start %9.4f  end %9.4f\n", ids[t], r.start[t], r.end[t]);
            return 0;
        }
    }
    std::printf("%s\n", out.dump().c_str());
    return 0;
}

}  // namespace

const CommandGroup& head_commands() {
    static const CommandGroup group{
        "Task heads (DIR: a *ForSequenceClassification, *ForTokenClassification or *ForQuestionAnswering model)",
        {
            {"classify", "A task-head model's outputs for token ids or a text",
             {"--model DIR (--ids 2,17,5 | --text TEXT | -) [--json] [--precision P] [--threads N]"},
             "Runs the ids (or the text, tokenized with the model's special tokens; - reads it from standard\n"
             "input) through the model's head, as transformers does. Sequence classification: the logits\n"
             "at the pooled token (the rightmost that is not the pad token) and, as the text-classification\n"
             "pipeline reports it, the label and score (sigmoid for one label, else the softmax of the\n"
             "arg-max). Token classification: each token's logits and label. Question answering: start and\n"
             "end logits. --json: one object (task, input_ids and the fields above).\n",
             {{"json"}, {"model", "ids", "text", "precision", "threads"}, 1},
             run_classify},
        }};
    return group;
}

}  // namespace wp::cli
