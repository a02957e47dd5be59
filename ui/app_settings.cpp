#include "app_settings.h"

#include <QSettings>

namespace wp::ui {

AppSettings::AppSettings(QString file) : file_(std::move(file)) {}

std::unique_ptr<QSettings> AppSettings::open() const {
    if (file_.isEmpty()) return std::make_unique<QSettings>();
    return std::make_unique<QSettings>(file_, QSettings::IniFormat);
}

QStringList AppSettings::recentModels() const { return open()->value("models/recent").toStringList(); }

void AppSettings::addRecentModel(const QString& path) {
    auto s = open();
    QStringList recent = s->value("models/recent").toStringList();
    recent.removeAll(path);
    recent.prepend(path);
    while (recent.size() > kMaxRecentModels) recent.removeLast();
    s->setValue("models/recent", recent);
}

QString AppSettings::lastModel() const { return open()->value("models/last").toString(); }
void AppSettings::setLastModel(const QString& path) { open()->setValue("models/last", path); }

QString AppSettings::precision() const { return open()->value("models/precision").toString(); }
void AppSettings::setPrecision(const QString& precision) { open()->setValue("models/precision", precision); }
QString AppSettings::kvCache() const { return open()->value("models/kv_cache").toString(); }
void AppSettings::setKvCache(const QString& type) { open()->setValue("models/kv_cache", type); }

QString AppSettings::theme() const { return open()->value("view/theme", "system").toString(); }
void AppSettings::setTheme(const QString& theme) { open()->setValue("view/theme", theme); }

QString AppSettings::draft() const { return open()->value("chat/draft").toString(); }
void AppSettings::setDraft(const QString& text) { open()->setValue("chat/draft", text); }

QList<RemoteEndpoint> AppSettings::remoteEndpoints() const {
    auto s = open();
    QList<RemoteEndpoint> out;
    const int n = s->beginReadArray("remote/endpoints");
    for (int i = 0; i < n; ++i) {
        s->setArrayIndex(i);
        RemoteEndpoint e{s->value("url").toString(), s->value("models").toStringList()};
        if (!e.url.isEmpty()) out.push_back(e);
    }
    s->endArray();
    return out;
}

void AppSettings::setRemoteEndpoints(const QList<RemoteEndpoint>& endpoints) {
    auto s = open();
    s->remove("remote/endpoints");
    s->beginWriteArray("remote/endpoints", static_cast<int>(endpoints.size()));
    for (int i = 0; i < endpoints.size(); ++i) {
        s->setArrayIndex(i);
        s->setValue("url", endpoints[i].url);
        s->setValue("models", endpoints[i].models);
    }
    s->endArray();
}

QByteArray AppSettings::windowGeometry() const { return open()->value("window/geometry").toByteArray(); }
QByteArray AppSettings::windowState() const { return open()->value("window/state").toByteArray(); }

void AppSettings::setWindowLayout(const QByteArray& geometry, const QByteArray& state) {
    auto s = open();
    s->setValue("window/geometry", geometry);
    s->setValue("window/state", state);
}

}  // namespace wp::ui
