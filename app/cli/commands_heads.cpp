// Task-head commands: classify (sequence classification, token classification, question-answering
// logits) on token ids, a text, a file of texts or conversations; answer (extractive question
// answering). The heads' semantics: core's wp/model/task_heads.h, entities.h, question_answering.h.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <unistd.h>
#include <vector>

#include "command.h"
#include "decode_kernels.h"
#include "model_argument.h"
#include "standard_input.h"
#include "wp/chat/chat_template.h"
#include "wp/error.h"
#include "wp/generate/chat_session.h"
#include "wp/model/entities.h"
#include "wp/model/model.h"
#include "wp/model/question_answering.h"
#include "wp/model/task_heads.h"
#include "wp/tokenizer/token_offsets.h"
#include "wp/tokenizer/tokenizer.h"

namespace wp::cli {

namespace {

using ojson = nlohmann::ordered_json;

LoadOptions load_options(const Args& a) {
    LoadOptions lo;
    if (a.has("precision")) lo.precision = parse_precision(a.str("precision"));
    lo.threads = threads_option(a, 0);
    return with_decode_choice(lo);
}

void check_length(const ModelConfig& c, std::size_t tokens) {
    if (c.max_position_embeddings > 0 && tokens > static_cast<std::size_t>(c.max_position_embeddings))
        throw Error("the input has " + std::to_string(tokens) + " tokens; the model takes at most " +
                    std::to_string(c.max_position_embeddings));
}

void put_sequence(ojson& out, const SequenceClassification& r) {
    out["logits"] = r.logits;
    out["pooled_index"] = r.pooled_index;
    out["label"] = r.label;
    out["score"] = r.score;
}

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw Error("cannot read " + path);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

// One text per line (a final newline ends the last line; "\r\n" counts as a newline).
std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> lines;
    std::size_t at = 0;
    while (at < text.size()) {
        std::size_t nl = text.find('\n', at);
        if (nl == std::string::npos) nl = text.size();
        std::string line = text.substr(at, nl - at);
        if (!line.empty() && line.back() == '\r') line.pop_back();
        lines.push_back(std::move(line));
        at = nl + 1;
    }
    return lines;
}

std::vector<ChatMessage> conversation_of(const nlohmann::json& j, std::size_t n) {
    const nlohmann::json& msgs = j.is_object() && j.contains("messages") ? j["messages"] : j;
    if (!msgs.is_array() || msgs.empty())
        throw Error("conversation " + std::to_string(n) + " is not a list of {\"role\", \"content\"} messages");
    std::vector<ChatMessage> out;
    for (const auto& m : msgs) {
        if (!m.is_object() || !m.contains("role") || !m["role"].is_string() || !m.contains("content") ||
            !m["content"].is_string())
            throw Error("conversation " + std::to_string(n) + ": each message needs a \"role\" and a \"content\" string");
        out.push_back({m["role"].get<std::string>(), m["content"].get<std::string>()});
    }
    return out;
}

// A conversation (a list of messages, or {"messages": [...]}), a list of them, or JSON Lines of them.
std::vector<std::vector<ChatMessage>> conversations_in(const std::string& path) {
    const std::string text = read_file(path);
    std::vector<nlohmann::json> items;
    try {
        const nlohmann::json j = nlohmann::json::parse(text);
        const bool many = j.is_array() && !j.empty() && (j[0].is_array() || (j[0].is_object() && j[0].contains("messages")));
        if (many) items.assign(j.begin(), j.end());
        else items.push_back(j);
    } catch (const nlohmann::json::parse_error&) {
        std::size_t n = 0;
        for (const std::string& line : lines_of(text)) {
            ++n;
            if (line.find_first_not_of(" \t") == std::string::npos) continue;
            try {
                items.push_back(nlohmann::json::parse(line));
            } catch (const nlohmann::json::parse_error& e) {
                throw Error(path + ": neither JSON nor JSON Lines (line " + std::to_string(n) + ": " + e.what() + ")");
            }
        }
    }
    std::vector<std::vector<ChatMessage>> out;
    for (std::size_t i = 0; i < items.size(); ++i) out.push_back(conversation_of(items[i], i + 1));
    if (out.empty()) throw Error(path + " holds no conversation");
    return out;
}

// Many inputs through classify_sequences, printed as JSON Lines in input order (each as soon as
// every earlier input's line is out); an input that cannot run (empty, too long, a template
// error) gets an "error" line. Progress and the rate go to stderr. Returns the exit status: 1
// when any input failed.
int classify_many(const Model& model, std::vector<std::vector<int>> inputs, const std::vector<std::string>& errors,
                  const std::vector<ojson>& extra, int batch_tokens) {
    const ModelConfig& c = model.config();
    std::vector<std::size_t> runnable;  // input numbers of the ids below
    std::vector<std::vector<int>> ids;
    for (std::size_t i = 0; i < inputs.size(); ++i)
        if (errors[i].empty()) runnable.push_back(i), ids.push_back(std::move(inputs[i]));
    const bool tty = isatty(STDERR_FILENO) != 0;
    const auto t0 = std::chrono::steady_clock::now();
    std::size_t tokens = 0, printed = 0, failed = 0, done = 0;
    std::vector<std::optional<SequenceClassification>> waiting(ids.size());
    std::size_t next = 0;  // the next of `ids` to print
    auto print_up_to = [&](std::size_t input) {  // error lines of inputs before `input`
        for (; printed < input; ++printed) {
            ojson e = extra[printed];
            e["error"] = errors[printed];
            std::printf("%s\n", e.dump().c_str());
            ++failed;
        }
    };
    classify_sequences(model, ids, batch_tokens, [&](std::size_t k, SequenceClassification&& r) {
        waiting[k] = std::move(r);
        ++done;
        const std::size_t before = next;
        for (; next < ids.size() && waiting[next]; ++next) {
            const std::size_t input = runnable[next];
            print_up_to(input);
            ojson o = extra[input];
            o["task"] = head_name(c.head);
            o["input_ids"] = ids[next];
            put_sequence(o, *waiting[next]);
            std::printf("%s\n", o.dump().c_str());
            waiting[next].reset();
            tokens += ids[next].size();
            printed = input + 1;
        }
        if (next != before) std::fflush(stdout);  // lines go out as they are ready, also into a pipe
        if (tty && done % 64 == 0) std::fprintf(stderr, "\r%zu / %zu inputs", done, ids.size());
        return true;
    });
    print_up_to(inputs.size());
    std::fflush(stdout);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (tty) std::fprintf(stderr, "\r");
    std::fprintf(stderr, "%zu inputs, %zu tokens in %.2f s: %.1f inputs/s, %.0f tokens/s%s\n", ids.size(), tokens, s,
                 static_cast<double>(ids.size()) / s, static_cast<double>(tokens) / s,
                 failed ? (", " + std::to_string(failed) + " could not run (their lines say why)").c_str() : "");
    return failed ? 1 : 0;
}

int run_classify(const Args& a) {
    const std::string dir = model_dir(a);
    const bool from_stdin = !a.positional().empty() && a.positional()[0] == "-";
    const int sources = a.has("ids") + a.has("text") + from_stdin + a.has("file") + a.has("messages");
    if (sources != 1) throw UsageError("give exactly one of --ids, --text, - (standard input), --file or --messages");
    const std::string aggregate = a.str("aggregate", "none");
    if (aggregate != "none" && aggregate != "simple") throw UsageError("--aggregate takes none or simple");
    const int batch_tokens = static_cast<int>(a.integer("batch-tokens", 512));
    if (batch_tokens < 1) throw UsageError("--batch-tokens must be at least 1");

    const bool many = a.has("file") || a.has("messages");
    // Conversations need the model's chat template; LoadedModel brings it with the tokenizer.
    std::unique_ptr<LoadedModel> loaded;
    std::unique_ptr<Model> bare;
    if (a.has("messages")) loaded = LoadedModel::load(dir, {}, load_options(a));
    else bare = Model::load(dir, {}, load_options(a));
    const Model& model = loaded ? loaded->model() : *bare;
    note_decode_choice(model);
    const ModelConfig& c = model.config();
    if (c.head == Head::CausalLM)
        throw Error(dir + ": a causal language model has no task head; classify takes a *ForSequenceClassification, "
                          "*ForTokenClassification or *ForQuestionAnswering model");
    if (many && c.head != Head::SequenceClassification)
        throw UsageError(std::string(a.has("file") ? "--file" : "--messages") + " is for sequence classification; " +
                         c.architecture + " is a " + head_name(c.head) + " model");
    if (aggregate == "simple" && c.head != Head::TokenClassification)
        throw UsageError("--aggregate is for token classification; " + c.architecture + " is a " + head_name(c.head) + " model");

    if (many) {
        std::vector<std::vector<int>> inputs;
        std::vector<std::string> errors;
        std::vector<ojson> extra;
        if (a.has("file")) {
            const auto tok = Tokenizer::load(dir);
            std::size_t n = 0;
            for (const std::string& line : lines_of(read_file(a.str("file")))) {
                extra.push_back({{"line", ++n}});
                std::string error;
                std::vector<int> ids;
                try {
                    ids = tok->encode(line, true);
                    if (ids.empty()) throw Error("the line has no tokens");
                    check_length(c, ids.size());
                } catch (const Error& e) {
                    error = e.what();
                }
                inputs.push_back(std::move(ids));
                errors.push_back(std::move(error));
            }
            if (inputs.empty()) throw Error(a.str("file") + " holds no text");
        } else {
            std::size_t n = 0;
            for (const auto& conversation : conversations_in(a.str("messages"))) {
                extra.push_back({{"conversation", ++n}});
                std::string error;
                std::vector<int> ids;
                try {
                    // As a reward model's apply_chat_template(tokenize=True): the template writes
                    // the special tokens itself, and there is no generation prompt.
                    ids = loaded->tokenizer().encode(loaded->render(conversation, false), false);
                    if (ids.empty()) throw Error("the conversation renders to no tokens");
                    check_length(c, ids.size());
                } catch (const Error& e) {
                    error = e.what();
                }
                inputs.push_back(std::move(ids));
                errors.push_back(std::move(error));
            }
        }
        return classify_many(model, std::move(inputs), errors, extra, batch_tokens);
    }

    std::vector<int> ids;
    std::string text;
    std::unique_ptr<Tokenizer> tok;
    if (a.has("ids")) {
        ids = parse_ids(a.str("ids"));
        if (aggregate == "simple") throw UsageError("--aggregate needs the text (--text or -) to place the entities in");
    } else {
        text = a.has("text") ? a.str("text") : read_standard_input();
        if (from_stdin && !text.empty() && text.back() == '\n') text.pop_back();
        tok = Tokenizer::load(dir);
        ids = tok->encode(text, true);
    }
    check_length(c, ids.size());
    ojson out;
    out["task"] = head_name(c.head);
    out["input_ids"] = ids;
    if (c.head == Head::SequenceClassification) {
        const SequenceClassification r = classify_sequence(model, ids);
        put_sequence(out, r);
        if (!a.flag("json")) {
            std::printf("%s: %s %.4f (pooled token %d of %zu)\n", c.architecture.c_str(), r.label.c_str(), r.score,
                        r.pooled_index, ids.size());
            for (std::size_t i = 0; i < r.logits.size(); ++i)
                std::printf("  %-20s logit %9.4f\n", c.labels[i].c_str(), r.logits[i]);
            return 0;
        }
    } else if (c.head == Head::TokenClassification) {
        const TokenClassification r = classify_tokens(model, ids);
        ojson rows = ojson::array();
        for (std::size_t t = 0; t < ids.size(); ++t)
            rows.push_back(std::vector<float>(r.logits.begin() + static_cast<std::ptrdiff_t>(t * r.num_labels),
                                              r.logits.begin() + static_cast<std::ptrdiff_t>((t + 1) * r.num_labels)));
        out["logits"] = rows;
        out["labels"] = r.labels;
        std::vector<Entity> entities;
        if (aggregate == "simple") {
            entities = group_entities(r, ids, *tok, text);
            // The pipeline's field names; offsets in characters, as Python counts them.
            ojson list = ojson::array();
            for (const Entity& e : entities)
                list.push_back({{"entity_group", e.group},
                                {"score", e.score},
                                {"word", e.text},
                                {"start", char_offset(text, e.span.begin)},
                                {"end", char_offset(text, e.span.end)}});
            out["entities"] = list;
        }
        if (!a.flag("json")) {
            if (aggregate == "simple") {
                if (entities.empty()) std::printf("no entities\n");
                for (const Entity& e : entities)
                    std::printf("%-8s %.4f  [%zu, %zu)  %s\n", e.group.c_str(), e.score, char_offset(text, e.span.begin),
                                char_offset(text, e.span.end), e.text.c_str());
                return 0;
            }
            for (std::size_t t = 0; t < ids.size(); ++t)
                std::printf("%6d  %-12s %s\n", ids[t], r.labels[t].c_str(), tok ? tok->piece(ids[t]).c_str() : "");
            return 0;
        }
    } else {
        const QuestionAnsweringLogits r = question_answering_logits(model, ids);
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

int run_answer(const Args& a) {
    const std::string dir = model_dir(a);
    const std::string question = a.str("question");
    const bool from_stdin = !a.positional().empty() && a.positional()[0] == "-";
    if (a.has("context") == from_stdin) throw UsageError("give exactly one of --context or - (standard input)");
    std::string context = from_stdin ? read_standard_input() : a.str("context");
    if (from_stdin && !context.empty() && context.back() == '\n') context.pop_back();
    const int top_k = static_cast<int>(a.integer("top-k", 1));
    const int max_tokens = static_cast<int>(a.integer("max-answer-tokens", 30));
    if (top_k < 1) throw UsageError("--top-k must be at least 1");
    if (max_tokens < 1) throw UsageError("--max-answer-tokens must be at least 1");
    const auto model = Model::load(dir, {}, load_options(a));
    note_decode_choice(*model);
    const ModelConfig& c = model->config();
    if (c.head != Head::QuestionAnswering)
        throw Error(dir + ": " + (c.architecture.empty() ? std::string("a causal language model") : c.architecture) +
                    " is not a question-answering model; answer takes a *ForQuestionAnswering model");
    const auto tok = Tokenizer::load(dir);
    const QuestionAnswering r = answer_question(*model, *tok, question, context, top_k, max_tokens);
    if (!a.flag("json")) {
        for (const Answer& ans : r.answers)
            std::printf("%.4f  [%zu, %zu)  %s\n", ans.score, char_offset(context, ans.span.begin),
                        char_offset(context, ans.span.end), ans.text.c_str());
        return 0;
    }
    ojson out;
    out["task"] = head_name(c.head);
    out["input_ids"] = r.ids;
    out["context_start_token"] = r.context_begin;
    // The pipeline's fields: score, start and end (characters of the context), answer.
    ojson answers = ojson::array();
    for (const Answer& ans : r.answers)
        answers.push_back({{"score", ans.score},
                           {"start", char_offset(context, ans.span.begin)},
                           {"end", char_offset(context, ans.span.end)},
                           {"answer", ans.text},
                           {"start_token", ans.start_token},
                           {"end_token", ans.end_token}});
    out["answers"] = answers;
    std::printf("%s\n", out.dump().c_str());
    return 0;
}

}  // namespace

const CommandGroup& head_commands() {
    static const CommandGroup group{
        "Task heads (DIR: a *ForSequenceClassification, *ForTokenClassification or *ForQuestionAnswering model)",
        {
            {"classify", "A task-head model's outputs for token ids, a text, a file of texts or conversations",
             {"--model PATH (--ids 2,17,5 | --text TEXT | -) [--json] [--aggregate simple]",
              "--model PATH (--file TEXTS | --messages FILE.json) [--batch-tokens 512]"},
             "Runs the ids (or the text, tokenized with the model's special tokens; - reads it from standard\n"
             "input) through the model's head, as transformers does. Sequence classification: the logits\n"
             "at the pooled token (the rightmost that is not the pad token) and, as the text-classification\n"
             "pipeline reports it, the label and score (sigmoid for one label, else the softmax of the\n"
             "arg-max). Token classification: each token's logits and label; --aggregate simple groups\n"
             "B-/I- tokens into entities with their text and character offsets (the pipeline's\n"
             "aggregation_strategy=\"simple\"; \"O\" dropped). Question answering: start and end logits\n"
             "(answer gives the spans). --json: one object (task, input_ids and the fields above).\n"
             "Sequence classification of many inputs: --file, one text per line; --messages, a\n"
             "conversation ([{\"role\", \"content\"}, ...] or {\"messages\": [...]}), a list of them or JSON\n"
             "Lines of them, each rendered with the model's chat template as reward models expect. Out:\n"
             "JSON Lines, one object per input in input order (its line or conversation number; \"error\"\n"
             "for one that cannot run, and exit status 1). Inputs run side by side in forward passes of up\n"
             "to --batch-tokens tokens; the rate goes to stderr.\n",
             {{"json"}, {"model", "ids", "text", "file", "messages", "aggregate", "batch-tokens", "precision", "threads"}, 1},
             run_classify},
            {"answer", "The best answer spans of a question-answering model in a context",
             {"--model PATH --question Q (--context C | -) [--top-k 1] [--max-answer-tokens 30] [--json]"},
             "Extractive question answering as transformers' question-answering pipeline does it: the\n"
             "question then the context in one sequence; start and end logits turned into probabilities\n"
             "over the context's tokens; spans start <= end < start + --max-answer-tokens scored\n"
             "start * end; the best --top-k, each with its score, character offsets in the context and text.\n"
             "- reads the context from standard input.\n",
             {{"json"}, {"model", "question", "context", "top-k", "max-answer-tokens", "precision", "threads"}, 1},
             run_answer},
        }};
    return group;
}

}  // namespace wp::cli
