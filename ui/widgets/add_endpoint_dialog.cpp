#include "widgets/add_endpoint_dialog.h"

#include <QFormLayout>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QListWidget>
#include <QPushButton>
#include <QVBoxLayout>

#include "engine/remote_model_ref.h"
#include "engine/remote_models.h"

namespace wp::ui {

AddEndpointDialog::AddEndpointDialog(RemoteModels& remote, QWidget* parent) : QDialog(parent), remote_(remote) {
    setWindowTitle(tr("Add Endpoint"));
    auto* layout = new QVBoxLayout(this);
    auto* intro = new QLabel(tr("A server that speaks the OpenAI chat API: vLLM, llama.cpp's llama-server, "
                                "windowpane-cli serve, Ollama, TGI, \u2026 Its models join the library and the "
                                "compare view's pickers."),
                             this);
    intro->setWordWrap(true);
    layout->addWidget(intro);
    auto* form = new QFormLayout;
    url_ = new QLineEdit(this);
    url_->setObjectName("endpointUrl");
    url_->setPlaceholderText(QStringLiteral("http://127.0.0.1:8080"));
    form->addRow(tr("Address"), url_);
    key_ = new QLineEdit(this);
    key_->setObjectName("endpointKey");
    key_->setEchoMode(QLineEdit::Password);
    key_->setPlaceholderText(tr("optional"));
    form->addRow(tr("API key"), key_);
    layout->addLayout(form);
    keyNote_ = new QLabel(tr("The key is kept in the system's secret store, never in Windowpane's settings."), this);
    keyNote_->setObjectName("endpointKeyNote");
    keyNote_->setWordWrap(true);
    layout->addWidget(keyNote_);
    list_ = new QListWidget(this);
    list_->setObjectName("endpointModels");
    list_->setSelectionMode(QAbstractItemView::NoSelection);
    layout->addWidget(list_, 1);
    status_ = new QLabel(this);
    status_->setObjectName("endpointStatus");
    status_->setWordWrap(true);
    status_->setTextInteractionFlags(Qt::TextSelectableByMouse);
    layout->addWidget(status_);

    auto* buttons = new QHBoxLayout;
    connect_ = new QPushButton(tr("Connect"), this);
    connect_->setObjectName("endpointConnect");
    connect_->setDefault(true);
    add_ = new QPushButton(tr("Add"), this);
    add_->setObjectName("endpointAdd");
    add_->setEnabled(false);
    auto* cancel = new QPushButton(tr("Cancel"), this);
    buttons->addWidget(connect_);
    buttons->addStretch(1);
    buttons->addWidget(add_);
    buttons->addWidget(cancel);
    layout->addLayout(buttons);

    connect(connect_, &QPushButton::clicked, this, &AddEndpointDialog::connectToServer);
    connect(url_, &QLineEdit::returnPressed, this, &AddEndpointDialog::connectToServer);
    connect(add_, &QPushButton::clicked, this, [this] {
        if (add_->text() == tr("Done")) accept();
        else addEndpoint();
    });
    connect(cancel, &QPushButton::clicked, this, &QDialog::reject);
    // A changed address or key must be connected again before it is added.
    for (QLineEdit* f : {url_, key_})
        connect(f, &QLineEdit::textEdited, this, [this] {
            add_->setEnabled(false);
            add_->setText(tr("Add"));
        });
    connect(&remote_, &RemoteModels::modelsListed, this, [this](quint64 id, const QStringList& models) {
        if (id != request_) return;
        request_ = 0;
        connect_->setEnabled(true);
        models_ = models;
        list_->clear();
        list_->addItems(models);
        add_->setEnabled(true);
        setStatus(tr("%n model(s) at %1.", nullptr, static_cast<int>(models.size())).arg(endpoint_), false);
    });
    connect(&remote_, &RemoteModels::listFailed, this, [this](quint64 id, const QString& message) {
        if (id != request_) return;
        request_ = 0;
        connect_->setEnabled(true);
        setStatus(message, true);
    });
    connect(&remote_, &RemoteModels::keyStored, this, [this](const QString& url, bool persistent, const QString& message) {
        if (url != endpoint_ || !isVisible()) return;
        if (persistent) {
            accept();
            return;
        }
        // Never a plain file instead: the key lives until the app quits, and the user knows it.
        keyNote_->setText(tr("No secret store answered (%1): the key is kept in memory for this session only, "
                             "not saved. Add the endpoint again with its key after a restart.")
                              .arg(message));
        keyNote_->setStyleSheet(QStringLiteral("QLabel { color: #b9770e; font-weight: bold; }"));
        this->layout()->activate();  // the longer, bold note needs more lines now, not at the next layout pass
        setStatus(tr("Added %1.").arg(endpoint_), false);
        add_->setText(tr("Done"));
        add_->setEnabled(true);
    });
    resize(560, 420);
}

void AddEndpointDialog::connectToServer() {
    QString why;
    const QString url = normalizeEndpointUrl(url_->text(), &why);
    models_.clear();
    list_->clear();
    add_->setEnabled(false);
    add_->setText(tr("Add"));
    if (url.isEmpty()) {
        setStatus(why, true);
        return;
    }
    endpoint_ = url;
    connect_->setEnabled(false);
    setStatus(tr("Asking %1 for its models\u2026").arg(url + QStringLiteral("/models")), false);
    request_ = remote_.listModels(url, key_->text().trimmed());
}

void AddEndpointDialog::addEndpoint() {
    if (models_.isEmpty() || endpoint_.isEmpty()) return;
    const QString key = key_->text().trimmed();
    add_->setEnabled(false);
    remote_.addEndpoint(endpoint_, models_, key);  // keyStored follows (at once without a key)
    emit endpointAdded(endpoint_);
}

QString AddEndpointDialog::statusText() const { return status_->text() + QLatin1Char('\n') + keyNote_->text(); }

void AddEndpointDialog::setStatus(const QString& text, bool isError) {
    status_->setText(text);
    status_->setStyleSheet(isError ? QStringLiteral("QLabel { color: #c0392b; }") : QString());
}

}  // namespace wp::ui
