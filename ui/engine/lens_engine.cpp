#include "engine/lens_engine.h"

#include <QObject>
#include <algorithm>
#include <cmath>

#include "engine/view_input.h"
#include "wp/error.h"
#include "wp/generate/chat_session.h"
#include "wp/model/logit_lens.h"

namespace wp::ui {

LensViewData computeLens(const LoadedModel& lm, std::vector<int> ids, int first, int count, int topK,
                         const std::function<void(double)>& progress, const std::atomic<bool>* cancel) {
    const ModelConfig& cfg = lm.model().config();
    if (cfg.head != Head::CausalLM)
        throw Error(QObject::tr("This is a %1 model: it has no language-model head to read its layers out with, "
                                "so there is no logit lens.")
                        .arg(QString::fromLatin1(head_name(cfg.head)).replace('-', ' '))
                        .toStdString());
    const int T = static_cast<int>(ids.size());
    count = std::min(count <= 0 ? T : count, kMaxLensPositions);
    first = first < 0 ? std::max(0, T - count) : std::clamp(first, 0, T - 1);
    count = std::clamp(count, 1, T - first);

    LensOptions options;
    options.top_k = std::clamp(topK, 1, LensOptions::kMaxTopK);
    options.first = first;
    options.count = count;
    options.progress = progress;
    options.cancel = cancel;
    const LogitLens lens = logit_lens(lm.model(), ids, options);

    LensViewData data;
    data.tokens = tokenPieces(lm.tokenizer(), ids);
    data.layers = lens.layers;
    data.topK = lens.top_k;
    data.first = static_cast<int>(lens.first);
    data.count = lens.positions;
    data.topIds = lens.top_ids;
    data.topProbs.resize(lens.top_logprobs.size());
    std::transform(lens.top_logprobs.begin(), lens.top_logprobs.end(), data.topProbs.begin(),
                   [](float lp) { return std::exp(lp); });
    data.entropy = lens.entropy;
    // Each distinct id decoded once: a few hundred pieces at most.
    for (int id : data.topIds)
        if (!data.pieces.contains(id)) {
            const int one[1] = {id};
            data.pieces.insert(id, QString::fromStdString(lm.tokenizer().decode(one, false)));
        }
    data.ids = std::move(ids);  // before nextId, which reads it
    for (int c = 0; c < data.count; ++c)
        if (const int next = data.nextId(c); next >= 0 && !data.pieces.contains(next))
            data.pieces.insert(next, data.tokens[data.first + c + 1]);
    return data;
}

}  // namespace wp::ui
