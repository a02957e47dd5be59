#include "engine/divergence_engine.h"

#include <QObject>
#include <algorithm>
#include <string>
#include <vector>

#include "engine/classify_engine.h"
#include "wp/error.h"
#include "wp/generate/chat_session.h"
#include "wp/model/divergence.h"
#include "wp/tokenizer/token_offsets.h"

namespace wp::ui {

DivergenceViewData divergeText(const LoadedModel& a, const QString& nameA, const LoadedModel& b, const QString& nameB,
                               const QString& text, const std::function<void(double)>& progress,
                               const std::atomic<bool>* cancel) {
    // Checked before any pass: with another vocabulary the same id is another token, and every
    // number below would compare unrelated things.
    try {
        check_same_vocabulary(a.tokenizer(), b.tokenizer());
    } catch (const Error& e) {
        throw Error(QObject::tr("%1 and %2 cannot be compared token for token: %3.")
                        .arg(nameA, nameB, QString::fromStdString(e.what()))
                        .toStdString());
    }
    const std::string utf8 = text.toStdString();
    const Tokenizer& tok = a.tokenizer();
    const std::vector<int> ids = tok.encode(utf8, true);
    if (ids.size() < 2)
        throw Error(QObject::tr("The text needs at least two tokens: one to read and one to predict.").toStdString());

    DivergenceOptions options;
    options.top_k = 5;
    options.progress = progress;
    options.cancel = cancel;
    const Divergence d = diverge(a.model(), b.model(), ids, options);

    DivergenceViewData v;
    v.nameA = nameA;
    v.nameB = nameB;
    v.text = text;
    const std::vector<int> at = utf16Offsets(utf8);
    const std::size_t bytes = at.size() - 1;
    const std::vector<ByteSpan> spans = token_spans(tok, ids, utf8);
    for (std::size_t i = 0; i < ids.size(); ++i) {
        v.ids << ids[i];
        const int one[1] = {ids[i]};
        v.pieces << QString::fromStdString(tok.decode(one, false));
        const int begin = at[std::min(spans[i].begin, bytes)];
        v.begin << begin;
        v.end << std::max(begin, at[std::min(spans[i].end, bytes)]);
    }
    const auto decoded = [&](int id) {
        const int one[1] = {id};
        return QString::fromStdString(tok.decode(one, false));
    };
    v.topK = d.top_k;
    for (std::size_t t = 0; t < d.positions.size(); ++t) {
        const TokenDivergence& p = d.positions[t];
        v.kl << p.kl;
        v.sameTop << p.same_top;
        v.logprobA << p.logprob_a;
        v.logprobB << p.logprob_b;
        for (int k = 0; k < d.top_k; ++k) {
            const std::size_t i = t * static_cast<std::size_t>(d.top_k) + static_cast<std::size_t>(k);
            v.topIdA << d.top_ids_a[i];
            v.topIdB << d.top_ids_b[i];
            v.topTextA << decoded(d.top_ids_a[i]);
            v.topTextB << decoded(d.top_ids_b[i]);
            v.topProbA << d.top_probs_a[i];
            v.topProbB << d.top_probs_b[i];
        }
    }
    const DivergenceSummary& s = d.summary;
    v.stats = {s.tokens, s.mean_kl, s.median_kl, s.p99_kl, s.max_kl, s.mean_kl_error, s.same_top, s.ppl_a, s.ppl_b, s.ppl_ratio};
    return v;
}

}  // namespace wp::ui
