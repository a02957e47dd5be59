#include "engine/divergence_worker.h"

#include <QDir>
#include <exception>

#include "engine/divergence_engine.h"
#include "engine/model_names.h"
#include "wp/error.h"
#include "wp/generate/chat_session.h"
#include "wp/model/decode_kernel_choice.h"
#include "wp/model/precision.h"

namespace wp::ui {

DivergenceWorker::DivergenceWorker() { qRegisterMetaType<wp::ui::DivergenceViewData>(); }

DivergenceWorker::~DivergenceWorker() = default;

void DivergenceWorker::cancel(quint64 requestId) {
    quint64 prev = cancelUpTo_.load();
    while (prev < requestId && !cancelUpTo_.compare_exchange_weak(prev, requestId)) {
    }
    if (current_.load() <= requestId) cancelFlag_ = true;
}

void DivergenceWorker::unload() { held_.clear(); }

std::shared_ptr<LoadedModel> DivergenceWorker::load(quint64 requestId, const QString& path, const QString& precision) {
    for (const Held& h : held_)
        if (h.path == path && h.precision == precision) return h.model;
    const QString stage = tr("Loading %1").arg(modelDisplayName(path));
    emit progress(requestId, stage, 0);
    LoadOptions options;
    if (!precision.isEmpty()) options.precision = parse_precision(precision.toStdString());
    options.decode_choice_file = default_decode_choice_file();
    std::shared_ptr<LoadedModel> lm =
        LoadedModel::load(path.toStdString(), [&](double f) { emit progress(requestId, stage, f); }, options);
    held_.push_back({path, precision, lm});
    return lm;
}

void DivergenceWorker::diverge(quint64 requestId, const QString& pathA, const QString& precisionA, const QString& pathB,
                               const QString& precisionB, const QString& text) {
    current_ = requestId;
    cancelFlag_ = requestId <= cancelUpTo_.load();
    if (cancelFlag_) return;  // Stop or a new run came first: nobody waits for it
    const QString keyA = QDir::cleanPath(pathA), keyB = QDir::cleanPath(pathB);
    // What this run does not use goes first: the old pair and the new one need not fit in memory
    // together.
    std::erase_if(held_, [&](const Held& h) {
        return !(h.path == keyA && h.precision == precisionA) && !(h.path == keyB && h.precision == precisionB);
    });
    const auto name = [](const LoadedModel& lm, const QString& path) {
        return QStringLiteral("%1 (%2)").arg(modelDisplayName(path), QString::fromLatin1(precision_name(lm.model().precision())));
    };
    try {
        const std::shared_ptr<LoadedModel> a = load(requestId, keyA, precisionA);
        if (cancelFlag_) return;
        // The same file at the same precision is one model read twice; at two precisions it is
        // mapped twice, and the page cache holds its pages once.
        const std::shared_ptr<LoadedModel> b = keyB == keyA && precisionB == precisionA ? a : load(requestId, keyB, precisionB);
        if (cancelFlag_) return;
        const QString comparing = tr("Comparing");
        emit progress(requestId, comparing, 0);
        const DivergenceViewData data = divergeText(
            *a, name(*a, keyA), *b, name(*b, keyB), text, [&](double f) { emit progress(requestId, comparing, f); },
            &cancelFlag_);
        emit diverged(requestId, data);
    } catch (const Cancelled&) {
        // Stopped: the view has moved on already.
    } catch (const std::exception& e) {
        emit error(requestId, QString::fromStdString(e.what()));
    }
}

}  // namespace wp::ui
