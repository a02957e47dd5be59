#include "widgets/chat_pane.h"

#include <QHBoxLayout>
#include <QJsonArray>
#include <QKeyEvent>
#include <QLabel>
#include <QLocale>
#include <QPlainTextEdit>
#include <QProgressBar>
#include <QPushButton>
#include <QScrollArea>
#include <QScrollBar>
#include <QTimer>
#include <QVBoxLayout>

#include "engine/remote_models.h"
#include "engine/worker_thread.h"
#include "store/conversation_store.h"
#include "widgets/message_widget.h"
#include "widgets/settings_panel.h"
#include "widgets/units.h"

namespace wp::ui {

namespace {

QString titleFrom(const QString& text) {
    QString t = text.simplified();
    if (t.size() > 48) t = t.left(47) + QStringLiteral("\u2026");
    return t.isEmpty() ? QObject::tr("New chat") : t;
}

// A reply's tokens as stored in its stats: [text, probability, id, [[alternative, p], ...]].
QJsonArray tokensToJson(const QVector<TokenInfo>& tokens) {
    QJsonArray arr;
    for (const TokenInfo& t : tokens) {
        QJsonArray alts;
        for (const auto& a : t.top) alts.append(QJsonArray{a.text, a.probability});
        arr.append(QJsonArray{t.text, t.probability, t.id, alts});
    }
    return arr;
}

QVector<TokenInfo> tokensFromJson(const QJsonArray& arr) {
    QVector<TokenInfo> out;
    for (const auto& v : arr) {
        const QJsonArray a = v.toArray();
        TokenInfo t;
        t.text = a.at(0).toString();
        t.probability = static_cast<float>(a.at(1).toDouble());
        t.id = a.at(2).toInt();
        for (const auto& alt : a.at(3).toArray())
            t.top.push_back({alt.toArray().at(0).toString(), static_cast<float>(alt.toArray().at(1).toDouble())});
        out.push_back(t);
    }
    return out;
}

}  // namespace

ChatPane::ChatPane(WorkerThread& worker, ConversationStore& store, SettingsPanel& settings, QWidget* parent)
    : QWidget(parent), worker_(worker), store_(store), settings_(settings) {
    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(6, 6, 6, 6);
    modelLabel_ = new QLabel(this);
    modelLabel_->setObjectName("modelLabel");
    modelLabel_->setWordWrap(true);  // a long folder name wraps instead of widening the window
    layout->addWidget(modelLabel_);
    unavailable_ = new QLabel(this);
    unavailable_->setObjectName("chatUnavailable");
    unavailable_->setWordWrap(true);
    unavailable_->setMargin(10);
    unavailable_->setStyleSheet("QLabel { background: rgba(230, 160, 40, 0.18); border: 1px solid rgba(230, 160, 40, 0.6); "
                                "border-radius: 6px; }");
    unavailable_->setVisible(false);
    layout->addWidget(unavailable_);
    scroll_ = new QScrollArea(this);
    scroll_->setObjectName("chatScroll");
    scroll_->setWidgetResizable(true);
    messagesHost_ = new QWidget(scroll_);
    messagesLayout_ = new QVBoxLayout(messagesHost_);
    messagesLayout_->addStretch();
    scroll_->setWidget(messagesHost_);
    layout->addWidget(scroll_, 1);

    auto* gaugeRow = new QHBoxLayout;
    statusLabel_ = new QLabel(this);
    statusLabel_->setObjectName("replyStatus");
    statusLabel_->setWordWrap(true);  // a long stats line wraps rather than widen the window
    gaugeRow->addWidget(statusLabel_, 1);
    contextLabel_ = new QLabel(this);
    contextLabel_->setObjectName("contextLabel");
    gaugeRow->addWidget(contextLabel_);
    contextGauge_ = new QProgressBar(this);
    contextGauge_->setObjectName("contextGauge");
    contextGauge_->setMaximumWidth(160);
    contextGauge_->setTextVisible(false);
    gaugeRow->addWidget(contextGauge_);
    layout->addLayout(gaugeRow);

    auto* inputRow = new QHBoxLayout;
    input_ = new QPlainTextEdit(this);
    input_->setObjectName("messageInput");
    input_->setPlaceholderText(tr("Message the model (Enter sends, Shift+Enter for a new line)"));
    input_->setMaximumHeight(110);
    input_->installEventFilter(this);
    inputRow->addWidget(input_, 1);
    send_ = new QPushButton(tr("Send"), this);
    send_->setObjectName("sendButton");
    connect(send_, &QPushButton::clicked, this, [this] {
        if (isGenerating()) stopGeneration();
        else sendMessage(input_->toPlainText());
    });
    inputRow->addWidget(send_);
    layout->addLayout(inputRow);

    // The local worker's results count while the reply is the local worker's (the remote worker
    // numbers its requests on its own).
    InferenceWorker* w = worker_.worker();
    connect(w, &InferenceWorker::promptProgress, this, [this](quint64 id, int done, int total) {
        if (!requestRemote_) onPromptProgress(id, done, total);
    });
    connect(w, &InferenceWorker::tokenText, this, [this](quint64 id, const QString& text, const TokenInfo& info) {
        if (!requestRemote_) onToken(id, text, info);
    });
    connect(w, &InferenceWorker::stats, this, [this](quint64 id, const ReplyStats& st) {
        if (!requestRemote_) onStats(id, st);
    });
    connect(w, &InferenceWorker::finished, this, [this](quint64 id, const QString& text, const ReplyStats& st) {
        if (!requestRemote_) onFinished(id, text, st);
    });
    connect(w, &InferenceWorker::error, this, [this](quint64 id, const QString& message) {
        if (!requestRemote_) onError(id, message);
    });
    connect(&settings_, &SettingsPanel::changed, this, &ChatPane::saveConversationSettings);

    setModel({});
    updateContextGauge(0);
}

void ChatPane::setRemoteModels(RemoteModels* remote) {
    remote_ = remote;
    if (remote_ == nullptr) return;
    RemoteWorker* w = remote_->thread().worker();
    connect(w, &RemoteWorker::tokenText, this, [this](quint64 id, const QString& text, const TokenInfo& info) {
        if (requestRemote_) onToken(id, text, info);
    });
    connect(w, &RemoteWorker::stats, this, [this](quint64 id, const ReplyStats& st) {
        if (requestRemote_) onStats(id, st);
    });
    connect(w, &RemoteWorker::finished, this, [this](quint64 id, const QString& text, const ReplyStats& st) {
        if (requestRemote_) onFinished(id, text, st);
    });
    connect(w, &RemoteWorker::error, this, [this](quint64 id, const QString& message) {
        if (requestRemote_) onError(id, message);
    });
    connect(w, &RemoteWorker::retrying, this, &ChatPane::onRetrying);
    // The reply held while its key was read goes now: say so.
    connect(remote_, &RemoteModels::keyLoaded, this, [this](const QString& url) {
        if (requestRemote_ && request_ != 0 && !stopRequested_ && url == card_.remoteEndpoint && !remote_->keyPending(url))
            statusLabel_->setText(tr("Waiting for %1\u2026").arg(url));
    });
}

void ChatPane::setModel(const ModelCard& card) {
    card_ = card;
    if (card_.path.isEmpty())
        modelLabel_->setText(tr("<i>No model loaded</i>"));
    else if (card_.isRemote())
        modelLabel_->setText(tr("<b>%1</b> &nbsp; remote \u00b7 %2").arg(card_.name.toHtmlEscaped(), card_.remoteEndpoint.toHtmlEscaped()));
    else
        modelLabel_->setText(tr("<b>%1</b> &nbsp; %2 \u00b7 %3 parameters")
                                 .arg(card_.name.toHtmlEscaped(), card_.family)
                                 .arg(QLocale().toString(card_.parameters)));
    unavailable_->setText(card_.chatUnavailable);
    unavailable_->setVisible(!card_.chatUnavailable.isEmpty());
    input_->setEnabled(card_.chatUnavailable.isEmpty());
    input_->setPlaceholderText(card_.chatUnavailable.isEmpty()
                                   ? tr("Message the model (Enter sends, Shift+Enter for a new line)")
                                   : tr("This model cannot chat."));
    updateSendButton();
}

QString ChatPane::draft() const { return input_->toPlainText(); }
void ChatPane::setDraft(const QString& text) { input_->setPlainText(text); }

QList<MessageWidget*> ChatPane::messageWidgets() const { return messagesHost_->findChildren<MessageWidget*>(); }

// ---- conversations -------------------------------------------------------------------------

void ChatPane::setConversation(qint64 id) {
    conversation_ = id;
    emit conversationChanged(id);
}

void ChatPane::showConversation(qint64 id) {
    const auto conv = store_.conversation(id);
    if (!conv) return;
    loadingConversation_ = true;
    settings_.setSettings(GenerationSettings::fromJson(conv->settings));
    settings_.setSystemPrompt(conv->systemPrompt);
    loadingConversation_ = false;
    conversation_ = id;
    renderPath();
    emit conversationChanged(id);
}

void ChatPane::newConversation() {
    if (isGenerating()) return;
    setConversation(0);
    renderPath();
    emit conversationsChanged();
    updateContextGauge(0);
    input_->setFocus();
}

void ChatPane::saveConversationSettings() {
    if (!conversation_ || loadingConversation_) return;
    store_.setSettings(conversation_, settings_.settings().toJson());
    store_.setSystemPrompt(conversation_, settings_.systemPrompt());
}

QString ChatPane::statsText(const ReplyStats& s) {
    // A remote server that sent no usage gave no prompt count: none is shown rather than 0.
    QString t = s.promptTokens > 0 ? tr("%1 prompt tokens").arg(s.promptTokens) : QString();
    if (s.reusedPromptTokens > 0) t += tr(" (%1 cached)").arg(s.reusedPromptTokens);
    if (!t.isEmpty()) t += QStringLiteral(" \u00b7 ");
    t += tr("first token %1 ms \u00b7 %2 tokens").arg(s.timeToFirstTokenMs, 0, 'f', 0).arg(s.generatedTokens);
    // No rate where there is none to measure (one token, or a reply that arrived at once).
    if (s.tokensPerSecond > 0) t += tr(" \u00b7 %1 tokens/s").arg(s.tokensPerSecond, 0, 'f', 1);
    if (s.kvBytes > 0) t += tr(" \u00b7 KV cache %1").arg(humanBytes(static_cast<double>(s.kvBytes)));
    if (s.stopReason == "cancelled") t += tr(" \u00b7 stopped");
    else if (s.stopReason == "max_tokens") t += tr(" \u00b7 token limit reached");
    else if (s.stopReason == "context_full") t += tr(" \u00b7 context full");
    else if (s.stopReason == "incomplete") t += tr(" \u00b7 incomplete");
    return t;
}

// Detaches a message widget at once (messageWidgets() no longer lists it) and deletes it later:
// it may be emitting the signal that led here.
void ChatPane::discard(MessageWidget* w) {
    w->hide();
    w->setParent(nullptr);
    w->deleteLater();
}

void ChatPane::scrollToBottom() {
    QScrollBar* bar = scroll_->verticalScrollBar();
    QTimer::singleShot(0, this, [bar] { bar->setValue(bar->maximum()); });
}

void ChatPane::renderPath() {
    for (MessageWidget* w : messageWidgets()) discard(w);
    streaming_ = nullptr;
    if (!conversation_) {
        updateContextGauge(0);
        return;
    }
    qint64 used = 0;
    for (const StoredMessage& m : store_.activePath(conversation_)) {
        DisplayMessage d;
        d.id = m.id;
        d.role = m.role;
        d.content = m.content;
        d.stopped = m.stopped;
        const QList<qint64> sibs = store_.siblings(m.id);
        d.siblingCount = std::max<int>(1, static_cast<int>(sibs.size()));
        d.siblingIndex = std::max<int>(0, static_cast<int>(sibs.indexOf(m.id)));
        if (m.role == "assistant" && !m.stats.isEmpty()) {
            ReplyStats s;
            s.promptTokens = m.stats.value("prompt_tokens").toInt();
            s.reusedPromptTokens = m.stats.value("reused_prompt_tokens").toInt();
            s.generatedTokens = m.stats.value("generated_tokens").toInt();
            s.timeToFirstTokenMs = m.stats.value("time_to_first_token_ms").toDouble();
            s.tokensPerSecond = m.stats.value("tokens_per_second").toDouble();
            s.kvBytes = static_cast<qint64>(m.stats.value("kv_bytes").toDouble());
            s.stopReason = m.stats.value("stop_reason").toString();
            d.statsText = statsText(s);
            d.incomplete = m.stats.value("incomplete").toString();
            d.tokens = tokensFromJson(m.stats.value("tokens").toArray());
            used = static_cast<qint64>(m.stats.value("context_used").toDouble());
        }
        auto* w = new MessageWidget(d, messagesHost_);
        connect(w, &MessageWidget::editRequested, this, &ChatPane::editMessage);
        connect(w, &MessageWidget::regenerateRequested, this, &ChatPane::regenerate);
        connect(w, &MessageWidget::branchRequested, this, &ChatPane::switchBranch);
        messagesLayout_->insertWidget(messagesLayout_->count() - 1, w);
    }
    updateContextGauge(used);
    scrollToBottom();
}

// ---- chatting ------------------------------------------------------------------------------

void ChatPane::sendMessage(const QString& rawText) {
    const QString text = rawText.trimmed();
    if (text.isEmpty() || isGenerating()) return;
    if (card_.path.isEmpty()) {
        showError(modelLoading_ ? tr("The model is still loading.") : tr("No model is loaded. Open a model folder first."));
        return;
    }
    if (!card_.chatUnavailable.isEmpty()) {
        showError(card_.chatUnavailable);
        return;
    }
    if (!conversation_) {
        const qint64 id = store_.createConversation(titleFrom(text), card_.path, settings_.settings().toJson(),
                                                    settings_.systemPrompt());
        if (!id) {
            showError(tr("Cannot save the conversation: %1").arg(store_.lastError()));
            return;
        }
        setConversation(id);
    }
    const auto path = store_.activePath(conversation_);
    const qint64 parent = path.isEmpty() ? 0 : path.last().id;
    const qint64 userId = store_.addMessage(conversation_, parent, "user", text);
    if (!userId) {
        showError(tr("Cannot save the message: %1").arg(store_.lastError()));
        return;
    }
    store_.setModelPath(conversation_, card_.path);
    input_->clear();
    emit conversationsChanged();
    renderPath();
    startReply(userId);
}

void ChatPane::startReply(qint64 userMessageId) {
    // The turns from the root to the user message (not the whole active path: regenerating or
    // editing answers an earlier message).
    QList<ChatTurn> turns;
    for (qint64 id = userMessageId; id;) {
        const auto m = store_.message(id);
        if (!m) break;
        turns.prepend({m->role, m->content});
        id = m->parentId;
    }
    const QString system = settings_.systemPrompt().trimmed();
    if (!system.isEmpty() && card_.systemRoleSupported) turns.prepend({"system", system});

    DisplayMessage d;
    d.role = "assistant";
    d.streaming = true;
    streaming_ = new MessageWidget(d, messagesHost_);
    messagesLayout_->insertWidget(messagesLayout_->count() - 1, streaming_);
    replyParent_ = userMessageId;
    stopRequested_ = false;
    requestRemote_ = card_.isRemote();
    if (requestRemote_ && remote_ == nullptr) {  // no remote backend in this window
        discard(streaming_);
        streaming_ = nullptr;
        showError(tr("%1 is a remote model, and this window has no remote backend.").arg(card_.name));
        return;
    }
    request_ = requestRemote_ ? remote_->thread().nextRequestId() : worker_.nextRequestId();
    if (!requestRemote_) statusLabel_->setText(tr("Reading the prompt\u2026"));
    else if (remote_->keyPending(card_.remoteEndpoint)) statusLabel_->setText(tr("Reading the key\u2026"));
    else statusLabel_->setText(tr("Waiting for %1\u2026").arg(card_.remoteEndpoint));
    updateSendButton();
    emit generatingChanged(true);
    if (requestRemote_)
        remote_->generate(request_, card_.path, turns, settings_.settings());  // waits for a key being read
    else
        worker_.post(&InferenceWorker::generate, request_, card_.path, turns, settings_.settings());
}

void ChatPane::cancelRequest() {
    if (requestRemote_ && remote_ != nullptr) remote_->cancel(request_);
    else worker_.cancel(request_);
}

void ChatPane::stopGeneration() {
    if (!request_) return;
    // The reply ends with what is on screen now; the worker, which may be a few tokens ahead,
    // stops before its next token and the tokens still queued are dropped.
    stopRequested_ = true;
    cancelRequest();
}

void ChatPane::regenerate(qint64 assistantId) {
    if (isGenerating()) return;
    if (!card_.chatUnavailable.isEmpty()) {
        showError(card_.chatUnavailable);
        return;
    }
    const auto m = store_.message(assistantId);
    if (!m || !m->parentId) return;
    // Show the path up to the user message being answered again; the new reply becomes a sibling
    // of the old one.
    renderPath();
    bool after = false;
    for (MessageWidget* w : messageWidgets()) {
        if (after) discard(w);
        if (w->message().id == m->parentId) after = true;
    }
    startReply(m->parentId);
}

void ChatPane::editMessage(qint64 id, const QString& text) {
    if (isGenerating()) return;
    const auto m = store_.message(id);
    if (!m) return;
    if (m->role == "user" && !card_.chatUnavailable.isEmpty()) {  // the edit would wait for a reply that cannot come
        showError(card_.chatUnavailable);
        return;
    }
    const qint64 newId = store_.addMessage(conversation_, m->parentId, m->role, text.trimmed());
    if (!newId) {
        showError(tr("Cannot save the edit: %1").arg(store_.lastError()));
        return;
    }
    renderPath();
    if (m->role == "user") startReply(newId);
}

void ChatPane::switchBranch(qint64 id, int delta) {
    if (isGenerating()) return;
    const QList<qint64> sibs = store_.siblings(id);
    const int i = static_cast<int>(sibs.indexOf(id)) + delta;
    if (i < 0 || i >= sibs.size()) return;
    store_.selectBranch(sibs[i]);
    renderPath();
}

void ChatPane::keepUnfinishedReply() {
    if (!isGenerating() || !streaming_) return;
    cancelRequest();
    QJsonObject stats;
    stats.insert("tokens", tokensToJson(streaming_->message().tokens));
    stats.insert("stop_reason", "cancelled");
    if (!streaming_->message().content.isEmpty())
        store_.addMessage(conversation_, replyParent_, "assistant", streaming_->message().content, stats, true);
    request_ = 0;
    emit generatingChanged(false);
}

// ---- the worker's results ------------------------------------------------------------------

void ChatPane::onPromptProgress(quint64 id, int done, int total) {
    if (id != request_) return;
    statusLabel_->setText(done < total ? tr("Reading the prompt: %1 of %2 tokens").arg(done).arg(total)
                                       : tr("Generating\u2026"));
}

void ChatPane::onToken(quint64 id, const QString& text, const TokenInfo& info) {
    if (id != request_ || !streaming_ || stopRequested_) return;  // a late token of a stopped request
    QScrollBar* bar = scroll_->verticalScrollBar();
    const bool atBottom = bar->value() >= bar->maximum() - 40;
    streaming_->appendToken(info);
    if (atBottom) QTimer::singleShot(0, this, [bar] { bar->setValue(bar->maximum()); });
    emit tokenArrived(text);
}

void ChatPane::onStats(quint64 id, const ReplyStats& s) {
    if (id != request_) return;
    statusLabel_->setText(tr("Generating \u00b7 %1 tokens \u00b7 %2 tokens/s").arg(s.generatedTokens).arg(s.tokensPerSecond, 0, 'f', 1));
    updateContextGauge(s.contextUsed);
}

void ChatPane::onFinished(quint64 id, const QString& text, const ReplyStats& s) {
    if (id != request_) return;
    request_ = 0;
    const bool stopped = stopRequested_ || s.stopReason == "cancelled";
    ReplyStats final = s;
    QString reply = text;
    if (stopped && streaming_) {
        // Keep exactly what was shown when Stop was pressed.
        reply = streaming_->message().content;
        final.generatedTokens = static_cast<int>(streaming_->message().tokens.size());
        final.stopReason = "cancelled";
    }
    if (!reply.isEmpty() || !stopped) {
        // An incomplete reply (a remote stream cut) is saved as far as it came, marked in its stats.
        QJsonObject stats = final.toJson();
        if (streaming_) stats.insert("tokens", tokensToJson(streaming_->message().tokens));
        if (!store_.addMessage(conversation_, replyParent_, "assistant", reply, stats, stopped))
            showError(tr("Cannot save the reply: %1").arg(store_.lastError()));
    }
    stopRequested_ = false;
    statusLabel_->setText(final.incomplete.isEmpty() ? statsText(final)
                                                     : statsText(final) + QStringLiteral(": ") + final.incomplete);
    renderPath();
    updateContextGauge(s.contextUsed);
    emit conversationsChanged();
    updateSendButton();
    emit generatingChanged(false);
    emit replyFinished(reply);
}

void ChatPane::onError(quint64 id, const QString& message) {
    if (id != request_) return;
    request_ = 0;
    if (streaming_) discard(streaming_);
    streaming_ = nullptr;
    statusLabel_->clear();
    showError(message);
    updateSendButton();
    emit generatingChanged(false);
}

void ChatPane::onRetrying(quint64 id, int seconds, int attempt, int maxAttempts, const QString& why) {
    if (!requestRemote_ || id != request_) return;
    QString text = tr("The server is busy: trying again in %n s (retry %1 of %2)", nullptr, seconds).arg(attempt).arg(maxAttempts);
    if (!why.isEmpty()) text += QStringLiteral(" \u2014 ") + why;
    statusLabel_->setText(text);
}

// ---- display -------------------------------------------------------------------------------

void ChatPane::showError(const QString& message) {
    lastError_ = message;
    DisplayMessage d;
    d.error = true;
    d.content = message;
    auto* w = new MessageWidget(d, messagesHost_);
    messagesLayout_->insertWidget(messagesLayout_->count() - 1, w);
    emit errorShown(message);
    scrollToBottom();
}

void ChatPane::updateContextGauge(qint64 used) {
    const int ctx = card_.contextLength;
    contextGauge_->setRange(0, std::max(ctx, 1));
    contextGauge_->setValue(static_cast<int>(std::min<qint64>(used, ctx)));
    const double frac = ctx > 0 ? static_cast<double>(used) / ctx : 0;
    contextLabel_->setText(ctx > 0 ? tr("context %1 / %2").arg(used).arg(ctx) : QString());
    if (frac >= 0.9) {
        contextLabel_->setText(contextLabel_->text() + tr(" \u2014 nearly full: start a new chat"));
        contextLabel_->setStyleSheet("color: #c0392b; font-weight: bold;");
    } else {
        contextLabel_->setStyleSheet({});
    }
}

void ChatPane::updateSendButton() {
    send_->setText(isGenerating() ? tr("Stop") : tr("Send"));
    send_->setToolTip(isGenerating() ? tr("Stop the reply (Esc)") : tr("Send (Enter)"));
    send_->setEnabled(isGenerating() || (!card_.path.isEmpty() && card_.chatUnavailable.isEmpty()));
}

bool ChatPane::eventFilter(QObject* o, QEvent* e) {
    if (o == input_ && e->type() == QEvent::KeyPress) {
        auto* k = static_cast<QKeyEvent*>(e);
        if ((k->key() == Qt::Key_Return || k->key() == Qt::Key_Enter) && !(k->modifiers() & Qt::ShiftModifier)) {
            sendMessage(input_->toPlainText());
            return true;
        }
    }
    return QWidget::eventFilter(o, e);
}

}  // namespace wp::ui
