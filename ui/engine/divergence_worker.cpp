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

void DivergenceWorker::unload() { setHeld({}); }

void DivergenceWorker::setHeld(std::vector<Held> held) {
    held_ = std::move(held);
    heldCount_ = static_cast<int>(held_.size());
}

std::shared_ptr<LoadedModel> DivergenceWorker::load(quint64 requestId, const QString& path, const DivergenceModel& m) {
    for (const Held& h : held_)
        if (h.path == path && h.precision == m.precision) return h.model;
    const QString stage = tr("Loading %1").arg(m.name);
    emit progress(requestId, stage, 0);
    LoadOptions options;
    if (!m.precision.isEmpty()) options.precision = parse_precision(m.precision.toStdString());
    options.decode_choice_file = default_decode_choice_file();
    ++loads_;
    std::shared_ptr<LoadedModel> lm =
        LoadedModel::load(path.toStdString(), [&](double f) { emit progress(requestId, stage, f); }, options);
    std::vector<Held> held = held_;
    held.push_back({path, m.precision, lm});
    setHeld(std::move(held));
    return lm;
}

void DivergenceWorker::diverge(quint64 requestId, const DivergenceModel& a, const DivergenceModel& b, const QString& text) {
    // In this order: a cancel() that raised cancelUpTo_ after the check below sees current_ set
    // and sets the flag after it was cleared, so no Stop is lost.
    cancelFlag_ = false;
    current_ = requestId;
    if (requestId <= cancelUpTo_.load()) cancelFlag_ = true;
    if (cancelFlag_) return;  // Stop or a new run came first: nobody waits for it
    const QString keyA = QDir::cleanPath(a.path), keyB = QDir::cleanPath(b.path);
    // What this run does not use goes first: the old pair and the new one need not fit in memory
    // together.
    std::vector<Held> kept;
    for (const Held& h : held_)
        if ((h.path == keyA && h.precision == a.precision) || (h.path == keyB && h.precision == b.precision)) kept.push_back(h);
    setHeld(std::move(kept));
    const auto name = [](const LoadedModel& lm, const DivergenceModel& m) {
        const QString shown = m.name.isEmpty() ? modelDisplayName(m.path) : m.name;
        return QStringLiteral("%1 (%2)").arg(shown, QString::fromLatin1(precision_name(lm.model().precision())));
    };
    const auto loadOrSay = [&](const QString& side, const QString& key, const DivergenceModel& m) -> std::shared_ptr<LoadedModel> {
        try {
            return load(requestId, key, m);
        } catch (const Cancelled&) {
            throw;
        } catch (const std::exception& e) {
            throw Error(tr("Could not load model %1 (%2): %3")
                            .arg(side, m.name.isEmpty() ? modelDisplayName(m.path) : m.name, QString::fromStdString(e.what()))
                            .toStdString());
        }
    };
    try {
        const std::shared_ptr<LoadedModel> ma = loadOrSay(QStringLiteral("A"), keyA, a);
        if (cancelFlag_) return;
        // The same file at the same precision is one model, run once per side (wp::diverge takes
        // the same object twice, each pass with a context of its own); at two precisions it is
        // mapped twice, and the page cache holds its pages once.
        const std::shared_ptr<LoadedModel> mb =
            keyB == keyA && b.precision == a.precision ? ma : loadOrSay(QStringLiteral("B"), keyB, b);
        if (cancelFlag_) return;
        const QString comparing = tr("Comparing");
        emit progress(requestId, comparing, 0);
        const DivergenceViewData data = divergeText(
            *ma, name(*ma, a), *mb, name(*mb, b), text, [&](double f) { emit progress(requestId, comparing, f); },
            &cancelFlag_);
        emit diverged(requestId, data);
    } catch (const Cancelled&) {
        // Stopped: the view has moved on already.
    } catch (const std::exception& e) {
        emit error(requestId, QString::fromStdString(e.what()));
    }
}

}  // namespace wp::ui
