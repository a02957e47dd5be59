// "Add Endpoint…": an OpenAI-compatible server's address and optional API key. Connect asks the
// server for its models (GET {base}/v1/models, on the remote worker's thread) and lists them, or
// says why it cannot (unreachable, 401, not JSON); Add keeps the endpoint with its models
// (RemoteModels) and its key in the secret store, and says so when the key can only be kept for this
// session.
#pragma once

#include <QDialog>
#include <QStringList>

class QLabel;
class QLineEdit;
class QListWidget;
class QPushButton;

namespace wp::ui {

class RemoteModels;

class AddEndpointDialog : public QDialog {
    Q_OBJECT
public:
    explicit AddEndpointDialog(RemoteModels& remote, QWidget* parent = nullptr);

    QLineEdit* urlField() const { return url_; }
    QLineEdit* keyField() const { return key_; }
    // Lists the models of the address and key in the fields.
    void connectToServer();
    // Keeps the endpoint and its listed models (after a successful connect).
    void addEndpoint();
    QString statusText() const;
    QStringList listedModels() const { return models_; }
    QString endpointUrl() const { return endpoint_; }  // the normalised /v1 base of the last connect
    bool isConnecting() const { return request_ != 0; }

signals:
    void endpointAdded(const QString& url);

private:
    void setStatus(const QString& text, bool isError);

    RemoteModels& remote_;
    quint64 request_ = 0;
    QString endpoint_;
    QStringList models_;
    QLineEdit* url_ = nullptr;
    QLineEdit* key_ = nullptr;
    QListWidget* list_ = nullptr;
    QLabel* status_ = nullptr;
    QLabel* keyNote_ = nullptr;
    QPushButton* connect_ = nullptr;
    QPushButton* add_ = nullptr;
};

}  // namespace wp::ui
