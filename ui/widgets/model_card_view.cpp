#include "widgets/model_card_view.h"

#include <QLabel>
#include <QLocale>

#include "widgets/units.h"

namespace wp::ui {

ModelCardView::ModelCardView(QWidget* parent) : QScrollArea(parent) {
    label_ = new QLabel(this);
    label_->setObjectName("modelCard");
    label_->setWordWrap(true);
    label_->setAlignment(Qt::AlignTop | Qt::AlignLeft);
    label_->setTextInteractionFlags(Qt::TextSelectableByMouse);
    label_->setMargin(8);
    setWidgetResizable(true);
    setWidget(label_);
    setCard({});
}

void ModelCardView::setCard(const ModelCard& card) {
    if (card.path.isEmpty()) {
        label_->setText(tr("Open a model folder or a GGUF file (File \u2192 Open Model Folder\u2026 or Open GGUF "
                           "File\u2026), or drop one on the window."));
        return;
    }
    if (card.isRemote()) {  // only the server knows its shape
        label_->setText(tr("<h3>%1</h3><p>A remote model, served at <b>%2</b>.</p><p>Its architecture, weights and "
                           "tokenizer are the server's: replies stream from it, and the token view shows the "
                           "probabilities it sends (logprobs). The Attention tab needs a local model.</p>")
                            .arg(card.name.toHtmlEscaped(), card.remoteEndpoint.toHtmlEscaped()));
        return;
    }
    int sliding = 0;
    QString layers;
    for (int l = 0; l < card.layers.size(); ++l) {
        const LayerInfo& li = card.layers[l];
        sliding += li.sliding;
        layers += QStringLiteral("<tr><td>%1</td><td>%2</td></tr>")
                      .arg(l)
                      .arg(li.sliding ? tr("sliding, window %1").arg(li.window) : tr("global"));
    }
    // What the head on the body does; a task head's labels, the first dozen of them.
    QString task = tr("text generation (causal LM)");
    if (card.isTaskHead()) {
        const int n = static_cast<int>(card.labels.size());
        if (card.head == QLatin1String("question-answering")) task = tr("extractive question answering");
        else if (n == 1) task = tr("reward model (sequence classification, 1 label)");
        else task = tr("%1 (%2 labels)").arg(QString(card.head).replace('-', ' ')).arg(n);
        QStringList shown = card.labels.mid(0, 12);
        if (n > 12) shown << tr("… %1 more").arg(n - 12);
        task = QStringLiteral("<b>%1</b><br><small>%2%3</small>")
                   .arg(task, card.architecture.toHtmlEscaped(),
                        shown.isEmpty() ? QString() : QStringLiteral(": ") + shown.join(", ").toHtmlEscaped());
    }
    // A GGUF file's tensor types and what each became under the weights line, one a line (never
    // broken inside: "Q4_K → q8 (169, converted)").
    QString weights = tr("%1, computed in %2").arg(card.dtype, card.precision);
    for (const QString& c : card.weightConversions)
        weights += QStringLiteral("<br><small>%1</small>").arg(c.toHtmlEscaped().replace(' ', QStringLiteral("&nbsp;")));
    const QString templateSource = card.singleFile
                                       ? (card.builtinTemplate ? tr("built-in (the file has none)") : tr("from the GGUF file"))
                                       : (card.builtinTemplate ? tr("built-in (the folder has none)") : tr("from the model folder"));
    label_->setText(
        tr("<h3>%1</h3><table cellspacing=3>"
           "<tr><td>Family</td><td><b>%2</b></td></tr>"
           "<tr><td>Task</td><td>%18</td></tr>"
           "<tr><td>Parameters</td><td>%3</td></tr>"
           "<tr><td>Weights</td><td>%4</td></tr>"
           "<tr><td>Context</td><td>%5 tokens</td></tr>"
           "<tr><td>Vocabulary</td><td>%6</td></tr>"
           "<tr><td>Attention</td><td>%7 heads, %8 KV heads, head dim %9</td></tr>"
           "<tr><td>KV cache</td><td>%10 per token (%11 cache)</td></tr>"
           "<tr><td>Tokenizer</td><td>%12</td></tr>"
           "<tr><td>Chat template</td><td>%13</td></tr></table>"
           "<p><b>Layers</b> (%14 global, %15 sliding)</p><table cellspacing=2>%16</table><p><small>%17</small></p>")
            .arg(card.name.toHtmlEscaped(), card.family, QLocale().toString(card.parameters), weights)
            .arg(card.contextLength)
            .arg(card.vocabSize)
            .arg(card.heads)
            .arg(card.kvHeads)
            .arg(card.headDim)
            .arg(humanBytes(static_cast<double>(card.kvBytesPerToken)), tr("%1, %2").arg(card.defaultCache, card.kvType),
                 card.tokenizer.toHtmlEscaped(), templateSource)
            .arg(card.layers.size() - sliding)
            .arg(sliding)
            .arg(layers, card.path.toHtmlEscaped(), task));
}

}  // namespace wp::ui
