#include "widgets/message_widget.h"

#include <QApplication>
#include <QClipboard>
#include <QDateTime>
#include <QHBoxLayout>
#include <QHelpEvent>
#include <QLabel>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QStackedWidget>
#include <QTextBrowser>
#include <QTextCursor>
#include <QTimer>
#include <QToolButton>
#include <QToolTip>
#include <QVBoxLayout>
#include <QResizeEvent>
#include <algorithm>
#include <cmath>

#include "widgets/mask_view.h"

namespace wp::ui {

namespace {

QString roleTitle(const QString& role) {
    if (role == "user") return QObject::tr("You");
    if (role == "assistant") return QObject::tr("Model");
    if (role == "system") return QObject::tr("System");
    return role;
}

// Probability -> background: confident tokens stay almost clear, doubtful ones turn warm.
QColor probabilityColor(float p, bool dark) {
    const float doubt = 1.0f - std::clamp(p, 0.0f, 1.0f);
    QColor c = QColor::fromHsvF(0.08 + 0.25 * (1.0 - doubt), 0.85, dark ? 0.55 : 1.0);
    c.setAlphaF(0.15 + 0.6 * doubt);
    return c;
}

}  // namespace

MessageWidget::MessageWidget(const DisplayMessage& msg, QWidget* parent) : QFrame(parent), msg_(msg) {
    setObjectName(msg.error ? "errorMessage" : msg.role == "user" ? "userMessage" : "assistantMessage");
    setFrameShape(QFrame::StyledPanel);
    setSizePolicy(QSizePolicy::Preferred, QSizePolicy::Maximum);  // as tall as the content, no more
    auto* outer = new QVBoxLayout(this);
    outer->setContentsMargins(10, 6, 10, 6);
    outer->setSpacing(2);

    auto* header = new QHBoxLayout;
    role_ = new QLabel(msg.error ? tr("Error") : roleTitle(msg.role), this);
    QFont bold = role_->font();
    bold.setBold(true);
    role_->setFont(bold);
    header->addWidget(role_);
    prev_ = new QToolButton(this);
    prev_->setText(QStringLiteral("\u2039"));
    prev_->setToolTip(tr("Previous version"));
    branch_ = new QLabel(this);
    next_ = new QToolButton(this);
    next_->setText(QStringLiteral("\u203a"));
    next_->setToolTip(tr("Next version"));
    header->addWidget(prev_);
    header->addWidget(branch_);
    header->addWidget(next_);
    header->addStretch();
    connect(prev_, &QToolButton::clicked, this, [this] { emit branchRequested(msg_.id, -1); });
    connect(next_, &QToolButton::clicked, this, [this] { emit branchRequested(msg_.id, +1); });

    if (!msg.error) {
        tokensButton_ = new QToolButton(this);
        tokensButton_->setText(tr("Tokens"));
        tokensButton_->setToolTip(tr("Show the generated tokens coloured by probability; hover one for the alternatives"));
        tokensButton_->setCheckable(true);
        tokensButton_->setVisible(msg.role == "assistant");
        connect(tokensButton_, &QToolButton::toggled, this, [this](bool) { render(); });
        header->addWidget(tokensButton_);
        auto* copy = new QToolButton(this);
        copy->setText(tr("Copy"));
        copy->setObjectName("copyButton");
        connect(copy, &QToolButton::clicked, this, [this] { QApplication::clipboard()->setText(msg_.content); });
        header->addWidget(copy);
        auto* edit = new QToolButton(this);
        edit->setText(tr("Edit"));
        edit->setObjectName("editButton");
        edit->setToolTip(tr("Edit this message; the conversation branches and the old version stays reachable"));
        connect(edit, &QToolButton::clicked, this, &MessageWidget::startEdit);
        header->addWidget(edit);
        if (msg.role == "assistant") {
            auto* regen = new QToolButton(this);
            regen->setText(tr("Regenerate"));
            regen->setObjectName("regenerateButton");
            connect(regen, &QToolButton::clicked, this, [this] { emit regenerateRequested(msg_.id); });
            header->addWidget(regen);
        }
        for (QToolButton* b : findChildren<QToolButton*>()) b->setEnabled(!msg.streaming || b == tokensButton_);
    }
    outer->addLayout(header);

    stack_ = new QStackedWidget(this);
    body_ = new QTextBrowser(this);
    body_->setObjectName("messageBody");
    body_->setOpenExternalLinks(true);
    body_->setFrameShape(QFrame::NoFrame);
    body_->setVerticalScrollBarPolicy(Qt::ScrollBarAlwaysOff);
    body_->setHorizontalScrollBarPolicy(Qt::ScrollBarAlwaysOff);
    body_->viewport()->installEventFilter(this);
    body_->installEventFilter(this);
    body_->document()->setDocumentMargin(2);
    body_->viewport()->setAutoFillBackground(false);
    stack_->addWidget(body_);
    editor_ = new QPlainTextEdit(this);
    auto* editPage = new QWidget(this);
    auto* editLayout = new QVBoxLayout(editPage);
    editLayout->setContentsMargins(0, 0, 0, 0);
    editLayout->addWidget(editor_);
    auto* editButtons = new QHBoxLayout;
    editButtons->addStretch();
    auto* cancel = new QPushButton(tr("Cancel"), editPage);
    auto* save = new QPushButton(msg.role == "user" ? tr("Save && send") : tr("Save"), editPage);
    save->setObjectName("saveEditButton");
    editButtons->addWidget(cancel);
    editButtons->addWidget(save);
    editLayout->addLayout(editButtons);
    stack_->addWidget(editPage);
    connect(cancel, &QPushButton::clicked, this, [this] {
        stack_->setCurrentIndex(0);
        fitHeight();
    });
    connect(save, &QPushButton::clicked, this, [this] {
        const QString text = editor_->toPlainText();
        stack_->setCurrentIndex(0);
        if (text != msg_.content) emit editRequested(msg_.id, text);
    });
    outer->addWidget(stack_);

    stats_ = new QLabel(this);
    stats_->setObjectName("messageStats");
    stats_->setWordWrap(true);
    QPalette pal = stats_->palette();
    pal.setColor(QPalette::WindowText, pal.color(QPalette::PlaceholderText));
    stats_->setPalette(pal);
    outer->addWidget(stats_);

    setStatsText(msg.statsText);
    render();
}

bool MessageWidget::showingTokens() const { return tokensButton_ && tokensButton_->isChecked(); }

void MessageWidget::setShowTokens(bool on) {
    if (tokensButton_) tokensButton_->setChecked(on);
}

void MessageWidget::setStatsText(const QString& text) {
    msg_.statsText = text;
    stats_->setText(text);
    stats_->setVisible(!text.isEmpty());
}

void MessageWidget::appendToken(const TokenInfo& token) {
    msg_.content += token.text;
    msg_.tokens.push_back(token);
    const qint64 now = QDateTime::currentMSecsSinceEpoch();
    if (now - lastRender_ >= 50) {
        render();
    } else if (!renderPending_) {
        renderPending_ = true;
        QTimer::singleShot(50, this, [this] {
            renderPending_ = false;
            render();
        });
    }
}

void MessageWidget::finishStreaming(const QString& fullText, bool stopped) {
    msg_.content = fullText;
    msg_.streaming = false;
    msg_.stopped = stopped;
    for (QToolButton* b : findChildren<QToolButton*>()) b->setEnabled(true);
    render();
}

void MessageWidget::render() {
    lastRender_ = QDateTime::currentMSecsSinceEpoch();
    const bool branches = msg_.siblingCount > 1 && !msg_.error;
    prev_->setVisible(branches);
    next_->setVisible(branches);
    branch_->setVisible(branches);
    branch_->setText(QStringLiteral("%1/%2").arg(msg_.siblingIndex + 1).arg(msg_.siblingCount));
    prev_->setEnabled(msg_.siblingIndex > 0 && !msg_.streaming);
    next_->setEnabled(msg_.siblingIndex + 1 < msg_.siblingCount && !msg_.streaming);
    // The token view needs probabilities: a remote server that sent no logprobs gave none.
    const bool anyProbability =
        std::any_of(msg_.tokens.begin(), msg_.tokens.end(), [](const TokenInfo& t) { return t.probability >= 0; });
    if (tokensButton_) tokensButton_->setVisible(msg_.role == "assistant" && anyProbability);

    tokenStart_.clear();
    if (showingTokens()) {
        const bool dark = palette().color(QPalette::Base).lightness() < 128;
        QTextDocument* doc = body_->document();
        doc->clear();
        QTextCursor cur(doc);
        for (const TokenInfo& t : msg_.tokens) {
            tokenStart_.push_back(cur.position());
            QTextCharFormat f;
            if (t.probability >= 0) f.setBackground(probabilityColor(t.probability, dark));
            cur.insertText(t.text.isEmpty() ? QStringLiteral("\u2205") : t.text, f);
        }
    } else if (msg_.error || msg_.role == "system") {
        body_->setPlainText(msg_.content);
    } else {
        QString md = msg_.content;
        if (msg_.streaming) md += QStringLiteral(" \u258d");
        if (msg_.stopped) md += QStringLiteral("\n\n*") + tr("(stopped)") + QStringLiteral("*");
        if (!msg_.incomplete.isEmpty())
            md += QStringLiteral("\n\n*") + tr("(incomplete: %1)").arg(msg_.incomplete.toHtmlEscaped()) + QStringLiteral("*");
        body_->setMarkdown(md);
    }
    fitHeight();
}

void MessageWidget::fitHeight() {
    // The body is as tall as its text at the current width (the chat scrolls, not each message).
    const int w = body_->width() > 50 ? body_->width() : std::max(200, width() - 24);
    body_->document()->setTextWidth(w);
    const int h = static_cast<int>(std::ceil(body_->document()->size().height())) + 4;
    body_->setFixedHeight(std::max(h, 20));
    stack_->setFixedHeight(stack_->currentIndex() == 1 ? std::max(editor_->sizeHint().height(), 140) : std::max(h, 20));
}

void MessageWidget::resizeEvent(QResizeEvent* event) {
    QFrame::resizeEvent(event);
    fitHeight();
}

void MessageWidget::startEdit() {
    editor_->setPlainText(msg_.content);
    stack_->setCurrentIndex(1);
    fitHeight();
    editor_->setFocus();
}

QString MessageWidget::tokenTooltipAt(int position) const {
    if (tokenStart_.isEmpty() || position < tokenStart_.front()) return {};
    const auto it = std::upper_bound(tokenStart_.begin(), tokenStart_.end(), position);
    const int index = static_cast<int>(it - tokenStart_.begin()) - 1;
    if (index < 0 || index >= msg_.tokens.size()) return {};
    const TokenInfo& t = msg_.tokens[index];
    QString tip = tr("<b>%1</b> &nbsp; p = %2 &nbsp; (token %3, id %4)")
                      .arg(MaskView::visibleToken(t.text).toHtmlEscaped())
                      .arg(t.probability >= 0 ? QString::number(t.probability, 'f', 3) : tr("not sent"))
                      .arg(index + 1)
                      .arg(t.id >= 0 ? QString::number(t.id) : tr("not sent"));
    if (!t.top.isEmpty()) {
        tip += QStringLiteral("<table>");
        for (const TokenAlternativeInfo& a : t.top)
            tip += QStringLiteral("<tr><td>%1</td><td align=right>&nbsp;%2</td></tr>")
                       .arg(MaskView::visibleToken(a.text).toHtmlEscaped())
                       .arg(a.probability, 0, 'f', 3);
        tip += QStringLiteral("</table>");
    }
    return tip;
}

bool MessageWidget::eventFilter(QObject* watched, QEvent* event) {
    if (watched == body_ && event->type() == QEvent::Resize) {
        const int w = static_cast<QResizeEvent*>(event)->size().width();
        if (w != static_cast<int>(body_->document()->textWidth())) QTimer::singleShot(0, this, &MessageWidget::fitHeight);
    }
    if (watched == body_->viewport() && event->type() == QEvent::ToolTip && showingTokens()) {
        auto* help = static_cast<QHelpEvent*>(event);
        const QString tip = tokenTooltipAt(body_->cursorForPosition(help->pos()).position());
        if (tip.isEmpty()) QToolTip::hideText();
        else QToolTip::showText(help->globalPos(), tip, body_);
        return true;
    }
    return QFrame::eventFilter(watched, event);
}

}  // namespace wp::ui
