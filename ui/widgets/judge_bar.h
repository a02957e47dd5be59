// The compare view's "Judge with…" control: a chooser of one-label sequence-classification
// (reward) models — "No judge", the library's reward models, "Choose folder…" — and a line saying
// how the judge is (loading, loaded, or why it could not be used). It only chooses and shows;
// CompareView loads the judge and runs it.
#pragma once

#include <QWidget>

class QComboBox;
class QLabel;

namespace wp::ui {

class JudgeBar : public QWidget {
    Q_OBJECT
public:
    explicit JudgeBar(QWidget* parent = nullptr);

    // The reward models offered (folders); the current choice stays chosen.
    void setCandidates(const QStringList& paths);
    QStringList labels() const;  // what the chooser offers, in order
    // Shows `path` as the chosen judge (added to the chooser when it is not offered); empty: No judge.
    void showChosen(const QString& path);

    enum class State { None, Loading, Ready, Failed };
    void setState(State state, const QString& text);
    State state() const { return state_; }
    QString statusText() const;

signals:
    void judgeChosen(const QString& path);  // empty: no judge

protected:
    void resizeEvent(QResizeEvent* e) override;

private:
    void elide();

    QComboBox* chooser_ = nullptr;
    QLabel* status_ = nullptr;
    State state_ = State::None;
    QString text_;  // the status line whole; the label shows it elided to its width
};

}  // namespace wp::ui
