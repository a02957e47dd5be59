#include "widgets/classify_token_view.h"

#include <QAbstractTextDocumentLayout>
#include <QEvent>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QHelpEvent>
#include <QLabel>
#include <QPlainTextEdit>
#include <QScrollBar>
#include <QSplitter>
#include <QTableWidget>
#include <QTextBlock>
#include <QTextBrowser>
#include <QTextCursor>
#include <QToolTip>
#include <QVBoxLayout>

#include "widgets/label_colors.h"

namespace wp::ui {

namespace {

// Stored on the shown document's entity fragments, so the drawn spans can be read back.
constexpr int kGroupProperty = QTextFormat::UserProperty + 1;
constexpr int kTextOffsetProperty = QTextFormat::UserProperty + 2;

QString visible(QString piece) {
    piece.replace(QLatin1Char('\n'), QStringLiteral("\u21b5")).replace(QLatin1Char('\t'), QStringLiteral("\u21e5"));
    return piece.toHtmlEscaped().replace(QLatin1Char(' '), QStringLiteral("\u00b7"));
}

}  // namespace

ClassifyTokenView::ClassifyTokenView(WorkerThread& worker, QWidget* parent) : ClassifyViewBase(worker, parent) {
    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(0, 0, 0, 0);
    input_ = makeInput("classifyInput", tr("Text to label token by token (Ctrl+Enter classifies)"));
    input_->setMaximumHeight(120);
    layout->addWidget(input_);
    layout->addLayout(
        makeRunRow(tr("Classify"), tr("Classifying\u2026"), "classifyButton", tr("Label the text's tokens (Ctrl+Enter)")));

    legend_ = new QLabel(this);
    legend_->setObjectName("entityLegend");
    legend_->setTextFormat(Qt::RichText);
    legend_->setWordWrap(true);
    layout->addWidget(legend_);

    auto* split = new QSplitter(Qt::Vertical, this);
    rendered_ = new QTextBrowser(split);
    rendered_->setObjectName("entityText");
    rendered_->setOpenLinks(false);
    rendered_->viewport()->installEventFilter(this);
    rendered_->viewport()->setMouseTracking(true);
    QFont f = rendered_->font();
    f.setPointSizeF(f.pointSizeF() * 1.2);
    rendered_->setFont(f);
    table_ = new QTableWidget(0, 4, split);
    table_->setObjectName("entityTable");
    table_->setHorizontalHeaderLabels({tr("Entity"), tr("Label"), tr("Score"), tr("Tokens")});
    table_->horizontalHeader()->setSectionResizeMode(0, QHeaderView::Stretch);
    for (int c = 1; c < 4; ++c) table_->horizontalHeader()->setSectionResizeMode(c, QHeaderView::ResizeToContents);
    table_->verticalHeader()->setVisible(false);
    table_->verticalHeader()->setDefaultSectionSize(table_->fontMetrics().height() + 8);
    table_->setEditTriggers(QAbstractItemView::NoEditTriggers);
    table_->setSelectionBehavior(QAbstractItemView::SelectRows);
    table_->setSelectionMode(QAbstractItemView::SingleSelection);
    // A chosen entity is selected in the text, so it can be found in a long one.
    connect(table_, &QTableWidget::currentCellChanged, this, [this](int r) {
        if (r < 0 || r >= result_.entities.size()) return;
        const EntityInfo& e = result_.entities[r];
        for (QTextBlock b = rendered_->document()->begin(); b.isValid(); b = b.next())
            for (auto it = b.begin(); !it.atEnd(); ++it) {
                const QTextFragment fr = it.fragment();
                if (fr.charFormat().property(kTextOffsetProperty).toInt() == e.begin &&
                    fr.charFormat().hasProperty(kGroupProperty)) {
                    QTextCursor c(rendered_->document());
                    c.setPosition(fr.position());
                    c.setPosition(fr.position() + fr.length(), QTextCursor::KeepAnchor);
                    rendered_->setTextCursor(c);
                    return;
                }
            }
    });
    split->addWidget(rendered_);
    split->addWidget(table_);
    split->setStretchFactor(0, 3);
    split->setStretchFactor(1, 2);
    layout->addWidget(split, 1);

    showReplies(&InferenceWorker::classified, [this](const ClassifyResult& r) { show(r); });
}

void ClassifyTokenView::setModel(const ModelCard& card) {
    setModelPath(card.path);
    groups_ = entityGroups(card.labels);
    show({});
    status_->setText(tr("Labels: %1").arg(card.labels.join(", ")));
}

void ClassifyTokenView::setText(const QString& text) { input_->setPlainText(text); }
QString ClassifyTokenView::text() const { return input_->toPlainText(); }

void ClassifyTokenView::classify() {
    if (isBusy() || cannotRun(text().trimmed().isEmpty() ? tr("Type a text to classify.") : QString())) return;
    post(&InferenceWorker::classify, text());
}

void ClassifyTokenView::show(const ClassifyResult& r) {
    result_ = r;
    for (const EntityInfo& e : r.entities)  // a group the labels did not name still gets a colour
        if (!groups_.contains(e.group)) groups_ << e.group;
    tokenOfChar_.fill(-1, static_cast<int>(r.text.size()));
    for (int t = 0; t < r.tokenLabels.size(); ++t)
        for (int c = r.tokenLabels[t].begin; c < r.tokenLabels[t].end && c < tokenOfChar_.size(); ++c) tokenOfChar_[c] = t;
    buildLegend();
    render();

    table_->setRowCount(static_cast<int>(r.entities.size()));
    for (int i = 0; i < r.entities.size(); ++i) {
        const EntityInfo& e = r.entities[i];
        auto* label = new QTableWidgetItem(e.group);
        label->setBackground(groupBackground(static_cast<int>(groups_.indexOf(e.group)), palette()));
        auto* entity = new QTableWidgetItem(e.text);
        table_->setItem(i, 0, entity);
        table_->setItem(i, 1, label);
        table_->setItem(i, 2, new QTableWidgetItem(QString::number(e.score, 'f', 3)));
        table_->setItem(i, 3, new QTableWidgetItem(e.firstToken == e.lastToken ? QString::number(e.firstToken)
                                                                               : QStringLiteral("%1\u2013%2").arg(e.firstToken).arg(e.lastToken)));
    }
    if (!r.text.isEmpty())
        status_->setText(tr("%1 tokens, %2 entities. Hover a token for its label probabilities.").arg(r.tokens).arg(r.entities.size()));
}

void ClassifyTokenView::buildLegend() {
    QString html;
    for (int g = 0; g < groups_.size(); ++g)
        html += QStringLiteral("<span style='background-color:%1; color:%2'>&nbsp;<b>%3</b>&nbsp;</span>&nbsp;&nbsp; ")
                    .arg(groupBackground(g, palette()).name(), palette().color(QPalette::Text).name(),
                         groups_[g].toHtmlEscaped());
    legend_->setText(groups_.isEmpty() ? QString() : tr("Entities: %1 <span style='color:gray'>(other tokens: O)</span>").arg(html));
}

// The text in the document as typed, each entity's characters on its group's colour and followed
// by a small tag with the group's name; every fragment carries its offset in the text.
void ClassifyTokenView::render() {
    rendered_->clear();
    const QString& text = result_.text;
    if (text.isEmpty()) return;
    QTextCursor c(rendered_->document());
    // Room between the lines for the entities' backgrounds and tags.
    QTextBlockFormat spaced;
    spaced.setLineHeight(150, QTextBlockFormat::ProportionalHeight);
    c.setBlockFormat(spaced);
    QTextCharFormat plain;
    // Line by line: a fragment never crosses a block, and each must know its own offset.
    auto put = [&](int begin, int end, QTextCharFormat f) {
        for (int s = begin; s < end;) {
            int nl = static_cast<int>(text.indexOf(QLatin1Char('\n'), s));
            if (nl < 0 || nl >= end) nl = end;
            if (nl > s) {
                f.setProperty(kTextOffsetProperty, s);
                c.insertText(text.mid(s, nl - s), f);
            }
            if (nl < end) c.insertBlock();
            s = nl + 1;
        }
    };
    int at = 0;
    for (const EntityInfo& e : result_.entities) {
        // A character whose bytes fall in two entities' tokens is in both: drawn for the first.
        if (e.begin < at || e.end <= e.begin) continue;
        put(at, e.begin, plain);
        const int g = static_cast<int>(groups_.indexOf(e.group));
        QTextCharFormat ent;
        ent.setBackground(groupBackground(g, palette()));
        ent.setProperty(kGroupProperty, e.group);
        put(e.begin, e.end, ent);
        QTextCharFormat tag;
        tag.setBackground(groupBackground(g, palette()));
        tag.setForeground(groupAccent(g, palette()));
        tag.setFontWeight(QFont::Bold);
        tag.setFontPointSize(rendered_->font().pointSizeF() * 0.7);
        tag.setVerticalAlignment(QTextCharFormat::AlignMiddle);
        tag.setProperty(kTextOffsetProperty, -1);  // not part of the text
        c.insertText(QStringLiteral("\u2009") + e.group + QStringLiteral("\u2009"), tag);
        at = e.end;
    }
    put(at, static_cast<int>(text.size()), plain);
}

QVector<ClassifyTokenView::Span> ClassifyTokenView::coloredSpans() const {
    QVector<Span> out;
    for (QTextBlock b = rendered_->document()->begin(); b.isValid(); b = b.next())
        for (auto it = b.begin(); !it.atEnd(); ++it) {
            const QTextCharFormat f = it.fragment().charFormat();
            if (!f.hasProperty(kGroupProperty)) continue;
            const int begin = f.property(kTextOffsetProperty).toInt();
            out.push_back({begin, begin + it.fragment().length(), f.property(kGroupProperty).toString()});
        }
    return out;
}

int ClassifyTokenView::textOffset(int documentPosition) const {
    const QTextBlock b = rendered_->document()->findBlock(documentPosition);
    for (auto it = b.begin(); !it.atEnd(); ++it) {
        const QTextFragment f = it.fragment();
        if (!f.contains(documentPosition)) continue;
        const QVariant offset = f.charFormat().property(kTextOffsetProperty);
        return offset.isValid() && offset.toInt() >= 0 ? offset.toInt() + documentPosition - f.position() : -1;
    }
    return -1;
}

int ClassifyTokenView::tokenAt(int pos) const { return pos >= 0 && pos < tokenOfChar_.size() ? tokenOfChar_[pos] : -1; }

QString ClassifyTokenView::tokenTooltip(int token) const {
    if (token < 0 || token >= result_.tokenLabels.size()) return {};
    const TokenLabels& t = result_.tokenLabels[token];
    QString rows;
    for (int l = 0; l < t.probabilities.size(); ++l) {
        const QString name = result_.labels.value(l, QString::number(l)).toHtmlEscaped();
        const QString pct = QStringLiteral("%1%").arg(100.0 * t.probabilities[l], 0, 'f', 1);
        const int bar = static_cast<int>(t.probabilities[l] * 80 + 0.5);
        const QString cell = l == t.best ? QStringLiteral("<b>%1</b>") : QStringLiteral("%1");
        rows += QStringLiteral("<tr><td>%1</td><td align=right>%2</td><td><span style='color:%3'>%4</span></td></tr>")
                    .arg(cell.arg(name), cell.arg(pct), palette().color(QPalette::Highlight).name(),
                         QString(bar / 8, QChar(0x2588)));
    }
    return tr("<b>%1</b> &nbsp;token %2<table cellspacing=2>%3</table>").arg(visible(t.piece)).arg(token).arg(rows);
}

bool ClassifyTokenView::eventFilter(QObject* o, QEvent* e) {
    if (o == rendered_->viewport() && e->type() == QEvent::ToolTip) {
        auto* help = static_cast<QHelpEvent*>(e);
        // The character under the pointer: the cursor position nearest to it, or the one before
        // when the pointer is left of that position.
        QTextCursor c = rendered_->cursorForPosition(help->pos());
        int pos = c.position();
        if (help->pos().x() < rendered_->cursorRect(c).x() && pos > 0) --pos;
        const int token = tokenAt(textOffset(pos));
        if (token >= 0) QToolTip::showText(help->globalPos(), tokenTooltip(token), rendered_->viewport());
        else QToolTip::hideText();
        return true;
    }
    return ClassifyViewBase::eventFilter(o, e);  // Ctrl+Enter in the input
}

void ClassifyTokenView::changeEvent(QEvent* e) {
    if (e->type() == QEvent::PaletteChange && !result_.text.isEmpty()) {
        buildLegend();
        render();
    }
    QWidget::changeEvent(e);
}

}  // namespace wp::ui
