// The compare view's divergence worker: holds the two models of a divergence run (one when A and B
// are the same file at the same precision) and runs divergeText. Lives on its own QThread
// (DivergenceThread), apart from the panes' InferenceWorkers, so a long text never holds up a
// pane's reply. Requests carry ids and cancel as InferenceWorker's do. The models stay between
// runs (a re-run on another text loads nothing) until unload(): the view posts it when the user
// leaves Divergence mode, a pane loads another model, or the view closes.
#pragma once

#include <QObject>
#include <QString>
#include <atomic>
#include <memory>
#include <vector>

#include "engine/divergence_types.h"

namespace wp {
class LoadedModel;
}

namespace wp::ui {

class DivergenceWorker : public QObject {
    Q_OBJECT
public:
    DivergenceWorker();
    ~DivergenceWorker() override;

    // Thread-safe: request `id` and every earlier one stop before their next pass (a model load
    // in progress finishes first).
    void cancel(quint64 requestId);

    // Thread-safe, for tests and diagnostics: the models held now (0..2), and how many model
    // loads this worker has done in all.
    int heldModels() const { return heldCount_.load(); }
    int modelLoads() const { return loads_.load(); }

public slots:
    // Loads A and B unless already held, then compares them on `text`. A and B the same file at
    // the same precision are one model, loaded once and run once per side. Emits progress, then
    // diverged or error (a load that fails names model A or B; a refusal, such as two
    // vocabularies, is an error with its reason); nothing when cancelled.
    void diverge(quint64 requestId, const wp::ui::DivergenceModel& a, const wp::ui::DivergenceModel& b,
                 const QString& text);
    // Frees the models held.
    void unload();

signals:
    // `stage` is what runs ("Loading …", "Comparing"), `fraction` its part done.
    void progress(quint64 requestId, const QString& stage, double fraction);
    void diverged(quint64 requestId, const wp::ui::DivergenceViewData& data);
    void error(quint64 requestId, const QString& message);

private:
    struct Held {
        QString path, precision;
        std::shared_ptr<LoadedModel> model;
    };
    std::shared_ptr<LoadedModel> load(quint64 requestId, const QString& path, const DivergenceModel& m);
    void setHeld(std::vector<Held> held);

    std::vector<Held> held_;  // the last run's models, at most two
    std::atomic<int> heldCount_{0};
    std::atomic<int> loads_{0};
    std::atomic<quint64> cancelUpTo_{0};
    std::atomic<quint64> current_{0};
    std::atomic<bool> cancelFlag_{false};
};

}  // namespace wp::ui
