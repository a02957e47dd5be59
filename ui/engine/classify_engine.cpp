#include "engine/classify_engine.h"

#include <QCoreApplication>
#include <algorithm>
#include <cmath>
#include <tuple>

#include "wp/error.h"
#include "wp/generate/chat_session.h"
#include "wp/model/entities.h"
#include "wp/model/question_answering.h"
#include "wp/model/task_heads.h"
#include "wp/tokenizer/token_offsets.h"

namespace wp::ui {

namespace {

QString tr(const char* text) { return QCoreApplication::translate("wp::ui::ClassifyEngine", text); }

void checkFits(std::size_t tokens, const ModelConfig& cfg) {
    if (tokens == 0) throw Error(tr("The text has no tokens.").toStdString());
    if (cfg.max_position_embeddings > 0 && tokens > static_cast<std::size_t>(cfg.max_position_embeddings))
        throw Error(tr("The text is too long: %1 tokens, and the model takes at most %2.")
                        .arg(tokens)
                        .arg(cfg.max_position_embeddings)
                        .toStdString());
}

int argmax(const QVector<double>& v) {
    return v.isEmpty() ? 0 : static_cast<int>(std::max_element(v.begin(), v.end()) - v.begin());
}

void fillSequence(ClassifyResult& r, const SequenceClassification& s) {
    r.kind = ClassifyResult::Kind::Sequence;
    r.pooledIndex = s.pooled_index;
    for (float x : s.logits) r.logits << x;
    if (r.logits.size() == 1) {
        // A reward model: its one logit is the reward; a softmax over one label is always 1.
        r.scores << 1.0 / (1.0 + std::exp(-r.logits[0]));
    } else if (!r.logits.isEmpty()) {
        const double top = *std::max_element(r.logits.begin(), r.logits.end());
        double sum = 0;
        for (double x : r.logits) sum += std::exp(x - top);
        for (double x : r.logits) r.scores << std::exp(x - top) / sum;
    }
    r.best = argmax(r.logits);
}

// A byte span of a text as UTF-16 offsets, given the text's utf16Offsets `at`: clamped to the
// text, and never ending before it begins.
std::pair<int, int> utf16Span(const std::vector<int>& at, const ByteSpan& span) {
    const std::size_t bytes = at.size() - 1;
    const int begin = at[std::min(span.begin, bytes)];
    return {begin, std::max(begin, at[std::min(span.end, bytes)])};
}

void fillTokens(ClassifyResult& r, const TokenClassification& t, std::span<const int> ids, const Tokenizer& tok,
                const std::string& utf8) {
    r.kind = ClassifyResult::Kind::Tokens;
    const std::vector<int> at = utf16Offsets(utf8);
    const std::vector<float> probs = token_probabilities(t);
    const std::vector<ByteSpan> spans = token_spans(tok, ids, utf8);
    const int L = t.num_labels;
    for (std::size_t i = 0; i < ids.size(); ++i) {
        TokenLabels tl;
        const int one[1] = {ids[i]};
        tl.piece = QString::fromStdString(tok.decode(one, false));
        std::tie(tl.begin, tl.end) = utf16Span(at, spans[i]);
        const float* p = probs.data() + i * static_cast<std::size_t>(L);
        tl.probabilities = QVector<float>(p, p + L);
        tl.best = L > 0 ? static_cast<int>(std::max_element(p, p + L) - p) : 0;
        r.tokenLabels << tl;
    }
    for (const Entity& e : group_entities(t, ids, tok, utf8)) {
        EntityInfo info;
        info.group = QString::fromStdString(e.group);
        info.score = e.score;
        std::tie(info.begin, info.end) = utf16Span(at, e.span);
        info.text = QString::fromStdString(e.text);
        info.firstToken = e.first_token;
        info.lastToken = e.last_token;
        r.entities << info;
    }
}

}  // namespace

std::vector<int> utf16Offsets(std::string_view s) {
    std::vector<int> out(s.size() + 1);
    int units = 0;
    for (std::size_t i = 0; i < s.size(); ++i) {
        const auto b = static_cast<unsigned char>(s[i]);
        if ((b & 0xC0) == 0x80) {  // inside a character: where it starts
            out[i] = out[i - (i > 0 ? 1 : 0)];
            continue;
        }
        out[i] = units;
        units += b >= 0xF0 ? 2 : 1;  // four-byte characters are surrogate pairs in UTF-16
    }
    out[s.size()] = units;
    return out;
}

ClassifyResult classifyText(const LoadedModel& lm, const QString& text) {
    const ModelConfig& cfg = lm.model().config();
    if (cfg.head != Head::SequenceClassification && cfg.head != Head::TokenClassification)
        throw Error(tr("%1 is not a sequence- or token-classification model.")
                        .arg(QString::fromStdString(cfg.architecture.empty() ? std::string("A causal LM") : cfg.architecture))
                        .toStdString());
    if (text.trimmed().isEmpty()) throw Error(tr("Type a text to classify.").toStdString());
    const std::string utf8 = text.toStdString();
    const std::vector<int> ids = lm.tokenizer().encode(utf8, /*add_special_tokens=*/true);
    checkFits(ids.size(), cfg);

    ClassifyResult r;
    r.text = QString::fromStdString(utf8);  // the offsets count this text (a lone surrogate became U+FFFD)
    for (const std::string& l : cfg.labels) r.labels << QString::fromStdString(l);
    r.tokens = static_cast<int>(ids.size());
    if (cfg.head == Head::SequenceClassification) fillSequence(r, classify_sequence(lm.model(), ids));
    else fillTokens(r, classify_tokens(lm.model(), ids), ids, lm.tokenizer(), utf8);
    return r;
}

AnswerResult answerQuestion(const LoadedModel& lm, const QString& question, const QString& context, int topK) {
    if (question.trimmed().isEmpty()) throw Error(tr("Type a question.").toStdString());
    if (context.trimmed().isEmpty()) throw Error(tr("Paste a context to find the answer in.").toStdString());
    const std::string q = question.toStdString(), c = context.toStdString();
    const QuestionAnswering qa = answer_question(lm.model(), lm.tokenizer(), q, c, std::max(topK, 1));
    const std::vector<int> at = utf16Offsets(c);
    AnswerResult r;
    r.question = QString::fromStdString(q);
    r.context = QString::fromStdString(c);
    r.tokens = static_cast<int>(qa.ids.size());
    for (const Answer& a : qa.answers) {
        AnswerInfo info;
        info.score = a.score;
        std::tie(info.begin, info.end) = utf16Span(at, a.span);
        info.text = QString::fromStdString(a.text);
        info.startToken = a.start_token;
        info.endToken = a.end_token;
        r.answers << info;
    }
    return r;
}

}  // namespace wp::ui
