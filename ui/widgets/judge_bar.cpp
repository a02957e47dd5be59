#include "widgets/judge_bar.h"

#include <QComboBox>
#include <QDir>
#include <QFileDialog>
#include <QHBoxLayout>
#include <QLabel>
#include <QResizeEvent>

#include "engine/model_names.h"

namespace wp::ui {

namespace {
const QString kOpen = QStringLiteral("open");  // the item's data for "Choose folder…"
}

JudgeBar::JudgeBar(QWidget* parent) : QWidget(parent) {
    auto* layout = new QHBoxLayout(this);
    layout->setContentsMargins(0, 0, 0, 0);
    auto* caption = new QLabel(tr("Judge with"), this);
    layout->addWidget(caption);
    chooser_ = new QComboBox(this);
    chooser_->setObjectName("compareJudge");
    chooser_->setToolTip(tr("A one-label sequence-classification (reward) model that scores each pane's prompt and "
                            "reply when the replies end"));
    chooser_->setSizeAdjustPolicy(QComboBox::AdjustToContents);
    caption->setBuddy(chooser_);
    layout->addWidget(chooser_);
    status_ = new QLabel(this);
    status_->setObjectName("compareJudgeStatus");
    status_->setTextFormat(Qt::PlainText);
    // A long error must not widen the window: it is elided to the room there is, whole in the tooltip.
    status_->setSizePolicy(QSizePolicy::Ignored, QSizePolicy::Preferred);
    layout->addWidget(status_, 1);
    setCandidates({});
    setState(State::None, {});

    connect(chooser_, &QComboBox::activated, this, [this](int index) {
        QString path = chooser_->itemData(index).toString();
        if (path == kOpen) {
            path = QFileDialog::getExistingDirectory(this, tr("Choose a reward model folder"));
            if (path.isEmpty()) {  // cancelled: the choice before stays
                showChosen(chooser_->property("chosen").toString());
                return;
            }
            path = QDir::cleanPath(path);
        }
        showChosen(path);
        emit judgeChosen(path);
    });
}

void JudgeBar::setCandidates(const QStringList& paths) {
    const QString current = chooser_->currentData().toString();
    chooser_->clear();
    chooser_->addItem(tr("No judge"), QString());
    for (const QString& p : paths) chooser_->addItem(modelDisplayName(p), QDir::cleanPath(p));
    chooser_->addItem(tr("Choose folder\u2026"), kOpen);
    showChosen(current == kOpen ? QString() : current);
}

QStringList JudgeBar::labels() const {
    QStringList out;
    for (int i = 0; i < chooser_->count(); ++i) out << chooser_->itemText(i);
    return out;
}

void JudgeBar::showChosen(const QString& path) {
    int index = chooser_->findData(path);
    if (index < 0) {
        chooser_->insertItem(chooser_->count() - 1, modelDisplayName(path), path);  // before "Choose folder…"
        index = chooser_->count() - 2;
    }
    chooser_->setCurrentIndex(index);
    chooser_->setProperty("chosen", path);
}

void JudgeBar::setState(State state, const QString& text) {
    state_ = state;
    text_ = text;
    status_->setStyleSheet(state == State::Failed ? QStringLiteral("color: #c0392b") : QString());
    status_->setToolTip(text);
    elide();
    if (state == State::Failed || state == State::None) showChosen({});
}

QString JudgeBar::statusText() const { return text_; }

void JudgeBar::resizeEvent(QResizeEvent* e) {
    QWidget::resizeEvent(e);
    elide();
}

void JudgeBar::elide() { status_->setText(status_->fontMetrics().elidedText(text_, Qt::ElideRight, status_->width())); }

}  // namespace wp::ui
