#include "engine/view_input.h"

#include <QObject>

#include "wp/error.h"
#include "wp/generate/chat_session.h"

namespace wp::ui {

std::vector<int> encodeViewInput(const LoadedModel& lm, const QString& text, const QList<ChatTurn>& conversation) {
    const Tokenizer& tok = lm.tokenizer();
    std::vector<int> ids;
    if (!text.isEmpty()) {
        ids = tok.encode(text.toStdString(), true);
    } else {
        std::vector<ChatMessage> messages;
        for (const ChatTurn& t : conversation) messages.push_back({t.role.toStdString(), t.content.toStdString()});
        if (messages.empty()) throw Error(QObject::tr("There is no conversation to show yet.").toStdString());
        ids = tok.encode(lm.render(messages, false), false);
    }
    const int context = lm.model().config().max_position_embeddings;
    if (ids.empty()) throw Error(QObject::tr("The text has no tokens.").toStdString());
    if (static_cast<qint64>(ids.size()) > context)
        throw Error(QObject::tr("%1 tokens do not fit the model's context of %2.").arg(ids.size()).arg(context).toStdString());
    return ids;
}

QStringList tokenPieces(const Tokenizer& tok, std::span<const int> ids) {
    QStringList pieces;
    pieces.reserve(static_cast<qsizetype>(ids.size()));
    for (int id : ids) {
        const int one[1] = {id};
        pieces << QString::fromStdString(tok.decode(one, false));
    }
    return pieces;
}

}  // namespace wp::ui
