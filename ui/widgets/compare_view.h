// Two or three models side by side: one prompt goes to all of them, the replies stream in
// parallel panes (each model on its own worker thread), with per-model stats, how each tokenizer
// splits the prompt, and the same layer's attention mask of each model next to each other. The
// panes scroll sideways in a window too narrow for three mask views.
#pragma once

#include <QVector>
#include <QWidget>
#include <memory>

#include "engine/types.h"

class QComboBox;
class QLabel;
class QLineEdit;
class QPushButton;
class QSpinBox;
class QTextBrowser;

namespace wp::ui {

class MaskView;

class CompareView : public QWidget {
    Q_OBJECT
public:
    explicit CompareView(QWidget* parent = nullptr);
    ~CompareView() override;

    static constexpr int kMaxModels = 3;

    // Loads `path` into pane `slot` (0..2) on that pane's own worker.
    void setModel(int slot, const QString& path);
    void setCandidateModels(const QStringList& paths);  // offered in each pane's chooser
    QStringList candidateLabels(int slot) const;         // what pane `slot`'s chooser offers
    void setPrompt(const QString& prompt);
    // Sends the prompt to every loaded model.
    void run();
    void stopAll();
    bool isRunning() const;
    bool isLoading() const;
    int loadedCount() const;
    QString replyText(int slot) const;
    QStringList tokenPieces(int slot) const;
    const ModelCard& card(int slot) const;
    void setMaskLayer(int layer);
    void setMaxTokens(int n);

signals:
    void allFinished();
    void modelLoaded(int slot);
    void modelFailed(int slot, const QString& message);

private:
    struct Pane;
    void updatePane(Pane& p);
    void updateMasks();
    void updateButtons();

    std::vector<std::unique_ptr<Pane>> panes_;
    QLineEdit* prompt_ = nullptr;
    QPushButton* run_ = nullptr;
    QPushButton* stop_ = nullptr;
    QSpinBox* layer_ = nullptr;
    QSpinBox* maxTokens_ = nullptr;
};

}  // namespace wp::ui
