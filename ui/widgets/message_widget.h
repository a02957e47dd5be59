// One chat message: role, markdown body (or the generated tokens, coloured by probability, with
// hover details; a remote server's token without logprobs has probability < 0 and no colour), branch arrows, Copy / Edit / Regenerate, and the reply's stats.
#pragma once

#include <QFrame>
#include <QVector>

#include "engine/types.h"

class QLabel;
class QPlainTextEdit;
class QPushButton;
class QTextBrowser;
class QToolButton;
class QStackedWidget;

namespace wp::ui {

struct DisplayMessage {
    qint64 id = 0;               // store id; 0 while streaming
    QString role;                // user, assistant, system
    QString content;
    QString statsText;           // shown under an assistant reply
    int siblingIndex = 0;        // 0-based position among the branches at this point
    int siblingCount = 1;
    QVector<TokenInfo> tokens;   // generated tokens (assistant replies), for hover details
    bool streaming = false;
    bool stopped = false;
    QString incomplete;          // why the reply ended early (a remote stream cut): shown under it
    bool error = false;          // an error notice, not a message
};

class MessageWidget : public QFrame {
    Q_OBJECT
public:
    explicit MessageWidget(const DisplayMessage& msg, QWidget* parent = nullptr);

    const DisplayMessage& message() const { return msg_; }
    // Streaming: append text and token; the body re-renders at most every 50 ms.
    void appendToken(const TokenInfo& token);
    void setStatsText(const QString& text);
    // Renders pending streamed text now instead of at the next 50 ms tick.
    void flushRender() { render(); }
    void finishStreaming(const QString& fullText, bool stopped);
    bool showingTokens() const;
    void setShowTokens(bool on);
    // Tooltip text for the token at the body's character position (token view), or empty.
    QString tokenTooltipAt(int position) const;
    QTextBrowser* body() const { return body_; }

signals:
    void editRequested(qint64 id, const QString& newText);
    void regenerateRequested(qint64 id);
    void branchRequested(qint64 id, int delta);  // -1: previous branch, +1: next

protected:
    bool eventFilter(QObject* watched, QEvent* event) override;
    void resizeEvent(QResizeEvent* event) override;

private:
    void render();
    void fitHeight();
    void startEdit();

    DisplayMessage msg_;
    QLabel* role_ = nullptr;
    QLabel* branch_ = nullptr;
    QToolButton* prev_ = nullptr;
    QToolButton* next_ = nullptr;
    QToolButton* tokensButton_ = nullptr;
    QTextBrowser* body_ = nullptr;
    QPlainTextEdit* editor_ = nullptr;
    QStackedWidget* stack_ = nullptr;
    QLabel* stats_ = nullptr;
    QVector<int> tokenStart_;  // character offset of each token in token view
    qint64 lastRender_ = 0;
    bool renderPending_ = false;
};

}  // namespace wp::ui
