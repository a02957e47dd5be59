// The compare view's divergence mode: two of its loaded models (or one at two precisions) read the
// same text, and every token is shaded by how far the two next-token distributions that predicted
// it part (KL). A summary line above, a tooltip per token with both models' top-5, and a table of
// the tokens sorted by KL that jumps to a token in the text (a model over the result, sorted by
// the view itself: tens of thousands of rows show at once). The models run on the view's own
// worker thread (DivergenceThread), which keeps them between runs until release().
#pragma once

#include <QList>
#include <QVector>
#include <QWidget>

#include "engine/divergence_thread.h"
#include "engine/divergence_types.h"

class QComboBox;
class QLabel;
class QPlainTextEdit;
class QProgressBar;
class QPushButton;
class QTableView;
class QTextBrowser;

namespace wp::ui {

class DivergenceView : public QWidget {
    Q_OBJECT
public:
    explicit DivergenceView(QWidget* parent = nullptr);
    ~DivergenceView() override;

    // A loaded compare pane that can be model A or B.
    struct Candidate {
        int slot = 0;       // the pane, 0..2
        QString name;       // the pane's model as the library names it
        QString path;
        QString precision;  // as the pane loaded it
    };
    // Offered as A and B; a choice still offered stays, else A is the first and B the second.
    void setCandidates(const QList<Candidate>& candidates);
    QStringList candidateLabels() const;
    // Picks pane `slot`'s model as A (or B) at `precision` (empty: as the pane loaded it); false
    // when that pane is not offered.
    bool chooseA(int slot, const QString& precision = {});
    bool chooseB(int slot, const QString& precision = {});
    void setText(const QString& text);
    QString text() const;

    void run();
    void stop();
    // Stops a run and frees the worker's models: leaving Divergence mode, a pane loading another
    // model, closing. The next run loads them again.
    void release();
    // Shows `data` as the result of a run (what a finished run calls).
    void showResult(const DivergenceViewData& data);
    // The worker, for its signals and counters (tests); call its slots through the view.
    DivergenceWorker* worker() const { return worker_.worker(); }
    bool isRunning() const { return requestId_ != 0; }
    bool hasResult() const { return data_.positions() > 0; }
    const DivergenceViewData& result() const { return data_; }
    QString statusText() const;   // progress, a refusal or an error; empty when a result shows
    QString summaryText() const;  // the summary line as plain text
    QString tokenToolTip(int token) const;  // what hovering token `token` (an index into ids) shows
    int tokenAt(const QPoint& viewportPos) const;  // the token under a point of the text; -1: none
    QRect tokenRect(int token) const;              // its first character in the text's viewport
    // Scrolls the text to token `token` and marks it, as a click on its row does.
    void jumpToToken(int token);
    int markedToken() const { return marked_; }
    int tokenInRow(int row) const;  // the token the table's row `row` shows, as sorted now

signals:
    void finished();  // a result, a refusal or an error is shown
    void conversationRequested();  // "Use current conversation": the compare view answers with setText

protected:
    bool eventFilter(QObject* watched, QEvent* event) override;

private:
    class TableModel;
    void render();
    void showStatus(const QString& html, const QString& plain);
    void updateButtons();
    void fillPrecision(QComboBox* precision, QComboBox* model);
    bool choose(QComboBox* model, QComboBox* precision, int slot, const QString& precisionName);

    DivergenceThread worker_{QStringLiteral("compare-divergence")};
    QList<Candidate> candidates_;
    quint64 requestId_ = 0;
    DivergenceViewData data_;
    double scale_ = 0;  // the KL shaded fullest
    int marked_ = -1;
    QString status_;

    QComboBox* modelA_ = nullptr;
    QComboBox* precisionA_ = nullptr;
    QComboBox* modelB_ = nullptr;
    QComboBox* precisionB_ = nullptr;
    QPushButton* run_ = nullptr;
    QPushButton* stop_ = nullptr;
    QProgressBar* progress_ = nullptr;
    QPlainTextEdit* input_ = nullptr;
    QPushButton* useConversation_ = nullptr;
    QLabel* summary_ = nullptr;
    QTextBrowser* tokens_ = nullptr;
    QTableView* table_ = nullptr;
    TableModel* model_ = nullptr;
    QLabel* legend_ = nullptr;
};

}  // namespace wp::ui
