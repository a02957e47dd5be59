#include "widgets/classify_view_base.h"

#include <QHBoxLayout>
#include <QKeyEvent>
#include <QLabel>
#include <QPlainTextEdit>
#include <QPushButton>

namespace wp::ui {

ClassifyViewBase::ClassifyViewBase(WorkerThread& worker, QWidget* parent) : QWidget(parent), worker_(worker) {
    connect(worker_.worker(), &InferenceWorker::error, this, [this](quint64 id, const QString& message) {
        if (id != request_) return;
        setBusy(false);
        status_->setText(message);
        emit resultShown();
    });
}

QString ClassifyViewBase::status() const { return status_->text(); }

QHBoxLayout* ClassifyViewBase::makeRunRow(const QString& idle, const QString& busy, const QString& objectName,
                                          const QString& toolTip) {
    idleText_ = idle;
    busyText_ = busy;
    auto* row = new QHBoxLayout;
    run_ = new QPushButton(idle, this);
    run_->setObjectName(objectName);
    run_->setToolTip(toolTip);
    connect(run_, &QPushButton::clicked, this, &ClassifyViewBase::submit);
    row->addWidget(run_);
    status_ = new QLabel(this);
    status_->setObjectName("classifyStatus");
    status_->setWordWrap(true);  // an error can be long: wrap rather than widen the window
    row->addWidget(status_, 1);
    return row;
}

QPlainTextEdit* ClassifyViewBase::makeInput(const QString& objectName, const QString& placeholder) {
    submitInput_ = new QPlainTextEdit(this);
    submitInput_->setObjectName(objectName);
    submitInput_->setPlaceholderText(placeholder);
    submitInput_->installEventFilter(this);
    return submitInput_;
}

void ClassifyViewBase::setModelPath(const QString& path) {
    modelPath_ = path;
    setBusy(false);  // forgets the request
}

bool ClassifyViewBase::cannotRun(const QString& problem) {
    const QString shown = modelPath_.isEmpty() ? tr("No model is loaded.") : problem;
    if (shown.isEmpty()) return false;
    status_->setText(shown);
    emit resultShown();
    return true;
}

void ClassifyViewBase::setBusy(bool busy) {
    if (!busy) request_ = 0;
    run_->setEnabled(!busy);
    run_->setText(busy ? busyText_ : idleText_);
    if (busy) status_->setText(tr("Running the model\u2026"));
    busyChanged(busy);
}

bool ClassifyViewBase::eventFilter(QObject* o, QEvent* e) {
    if (o == submitInput_ && submitInput_ && e->type() == QEvent::KeyPress) {
        auto* k = static_cast<QKeyEvent*>(e);
        if ((k->key() == Qt::Key_Return || k->key() == Qt::Key_Enter) && (k->modifiers() & Qt::ControlModifier)) {
            submit();
            return true;
        }
    }
    return QWidget::eventFilter(o, e);
}

}  // namespace wp::ui
