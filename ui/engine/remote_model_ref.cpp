#include "engine/remote_model_ref.h"

#include <QObject>
#include <QUrl>

namespace wp::ui {

namespace {
const QString kPrefix = QStringLiteral("remote:");
}

QString remoteModelPath(const QString& baseUrl, const QString& model) { return kPrefix + baseUrl + '#' + model; }

bool isRemoteModelPath(const QString& path) { return path.startsWith(kPrefix); }

std::optional<RemoteModelRef> parseRemoteModelPath(const QString& path) {
    if (!isRemoteModelPath(path)) return std::nullopt;
    const QString rest = path.mid(kPrefix.size());
    const qsizetype hash = rest.indexOf('#');
    if (hash <= 0 || hash + 1 >= rest.size()) return std::nullopt;
    return RemoteModelRef{rest.left(hash), rest.mid(hash + 1)};
}

QString normalizeEndpointUrl(const QString& input, QString* error) {
    QString text = input.trimmed();
    if (text.isEmpty()) {
        if (error) *error = QObject::tr("Enter the server's address, e.g. http://127.0.0.1:8080");
        return {};
    }
    if (!text.contains(QStringLiteral("://"))) text.prepend(QStringLiteral("http://"));  // "host:8080"
    QUrl url(text, QUrl::StrictMode);
    const QString scheme = url.scheme().toLower();
    if (!url.isValid() || url.host().isEmpty() || (scheme != "http" && scheme != "https")) {
        if (error) *error = QObject::tr("\"%1\" is not an http:// or https:// address.").arg(input.trimmed());
        return {};
    }
    // The API's base: the path up to and with /v1 (given or added); what follows it (a pasted
    // ".../v1/models" or ".../v1/chat/completions") is dropped.
    QString path = url.path();
    while (path.endsWith('/')) path.chop(1);
    const qsizetype v1 = path.indexOf(QStringLiteral("/v1"));
    if (v1 >= 0 && (v1 + 3 == path.size() || path.at(v1 + 3) == '/')) path = path.left(v1 + 3);
    else path += QStringLiteral("/v1");
    url.setPath(path);
    url.setQuery(QString());
    url.setFragment(QString());
    url.setUserInfo(QString());  // a key goes in the key field, never into settings with the URL
    url.setScheme(scheme);
    if (error) error->clear();
    return url.toString(QUrl::FullyEncoded);
}

QString remoteModelLabel(const RemoteModelRef& ref) {
    const QUrl url(ref.baseUrl);
    const QString host = url.port() > 0 ? QStringLiteral("%1:%2").arg(url.host()).arg(url.port()) : url.host();
    return QStringLiteral("%1 @ %2").arg(ref.model, host);
}

ModelCard remoteModelCard(const RemoteModelRef& ref) {
    ModelCard card;
    card.path = remoteModelPath(ref.baseUrl, ref.model);
    card.name = remoteModelLabel(ref);
    card.family = QObject::tr("remote");
    card.precision = QObject::tr("server's");
    card.remoteEndpoint = ref.baseUrl;
    card.tokenizer = QObject::tr("the server's");
    return card;
}

QString remoteViewUnavailable(const QString& modelName) {
    return QObject::tr("%1 runs on a remote server, which sends only the reply's tokens (and their probabilities "
                       "when it gives logprobs). Attention, the logit lens, the head summary, divergence and "
                       "classification need the model's weights on this computer: open a local model for them.")
        .arg(modelName);
}

}  // namespace wp::ui
