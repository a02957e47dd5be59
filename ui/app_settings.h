// What the app remembers between runs: recent models, the compute precision, the theme, the unsent
// draft, the remote endpoints (their URLs and model ids; their API keys never: those are in the
// platform's secret store, engine/endpoint_keys.h), and the window's geometry and dock layout.
//
// Where: the user's QSettings (organization and application "windowpane": on Linux
// ~/.config/windowpane/windowpane.conf), or the INI file named by AppOptions::settingsFile — the
// tests and `windowpane --data-dir DIR` use their own file and never touch the user's.
// Durability: each setter writes through a QSettings that is closed (synced) when it returns.
// Threads: GUI thread only.
#pragma once

#include <QByteArray>
#include <QList>
#include <QString>
#include <QStringList>
#include <memory>

class QSettings;

namespace wp::ui {

// An OpenAI-compatible server added with "Add Endpoint…": its /v1 base URL and the model ids it
// listed.
struct RemoteEndpoint {
    QString url;
    QStringList models;
    bool operator==(const RemoteEndpoint&) const = default;
};

class AppSettings {
public:
    static constexpr int kMaxRecentModels = 10;

    explicit AppSettings(QString file = {});  // empty: the user's settings

    QStringList recentModels() const;  // most recent first
    void addRecentModel(const QString& path);
    QString lastModel() const;
    void setLastModel(const QString& path);
    QString precision() const;  // "", "f32", "bf16", "q8", "q4"; empty: the model's default
    void setPrecision(const QString& precision);
    QString kvCache() const;  // "", "f32", "f16", "q8"; empty: the precision's default
    void setKvCache(const QString& type);
    QString theme() const;  // "system", "light", "dark"
    void setTheme(const QString& theme);
    QString draft() const;  // what was typed but not sent
    void setDraft(const QString& text);
    QList<RemoteEndpoint> remoteEndpoints() const;  // in the order they were added
    void setRemoteEndpoints(const QList<RemoteEndpoint>& endpoints);
    // QWidget::saveGeometry() and QMainWindow::saveState() of the main window.
    QByteArray windowGeometry() const;
    QByteArray windowState() const;
    void setWindowLayout(const QByteArray& geometry, const QByteArray& state);

private:
    std::unique_ptr<QSettings> open() const;

    QString file_;
};

}  // namespace wp::ui
