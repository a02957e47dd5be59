#include "widgets/divergence_view.h"

#include <QAbstractTextDocumentLayout>
#include <QComboBox>
#include <QEvent>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QHelpEvent>
#include <QLabel>
#include <QPlainTextEdit>
#include <QProgressBar>
#include <QPushButton>
#include <QScrollBar>
#include <QSplitter>
#include <QAbstractTableModel>
#include <QItemSelectionModel>
#include <QTableView>
#include <QTextBlock>
#include <QTextBrowser>
#include <QTextCursor>
#include <QTextDocument>
#include <QToolTip>
#include <QVBoxLayout>
#include <algorithm>
#include <cmath>
#include <numeric>

#include "widgets/mask_view.h"

namespace wp::ui {

namespace {

const QStringList kPrecisions = {QStringLiteral("f32"), QStringLiteral("bf16"), QStringLiteral("q8"), QStringLiteral("q4")};

// The floor of the shading's scale: below it two distributions are the same to the eye, and a
// run of a model against itself (KL 0 up to rounding) stays unshaded.
constexpr double kMinScale = 1e-4;

// A KL or a log-probability short enough for a table cell, readable from 1e-6 to 10.
QString number(double v) {
    if (v == 0) return QStringLiteral("0");
    if (std::abs(v) < 1e-3) return QString::number(v, 'e', 2);
    return QString::number(v, 'f', std::abs(v) < 1 ? 4 : 3);
}

QString percent(double share) { return QString::number(100.0 * share, 'f', 1) + QLatin1Char('%'); }

// The shade of a token predicted with divergence `kl`, on a scale that is fullest at `scale`:
// linear, so the few worst tokens stand out from the many small ones; a tenth of it and less is
// left unshaded.
QColor shade(double kl, double scale) {
    const double t = std::clamp(kl / scale, 0.0, 1.0);
    if (t < 0.1) return {};
    return QColor(226, 74, 51, static_cast<int>(std::lround(220 * t)));
}

enum Column { kIndex, kToken, kKl, kLogprobA, kLogprobB, kTop, kColumns };

}  // namespace

// The table: one row per prediction, read from the result on demand (no item per cell), sorted
// here on the plain numbers rather than through a proxy's QVariant comparisons.
class DivergenceView::TableModel : public QAbstractTableModel {
public:
    using QAbstractTableModel::QAbstractTableModel;

    void setResult(const DivergenceViewData* d, double scale) {
        beginResetModel();
        d_ = d;
        scale_ = scale;
        order_.resize(d_ ? d_->positions() : 0);
        std::iota(order_.begin(), order_.end(), 0);
        rowOf_ = order_;
        endResetModel();
    }

    int rowCount(const QModelIndex& parent = {}) const override { return parent.isValid() ? 0 : static_cast<int>(order_.size()); }
    int columnCount(const QModelIndex& parent = {}) const override { return parent.isValid() ? 0 : kColumns; }

    // The token row `row` shows (an index into ids; position t predicts token t + 1); -1: none.
    int tokenInRow(int row) const { return row >= 0 && row < order_.size() ? order_[row] + 1 : -1; }
    int rowOfToken(int token) const { return token >= 1 && token - 1 < rowOf_.size() ? rowOf_[token - 1] : -1; }

    QVariant data(const QModelIndex& index, int role) const override {
        if (!d_ || !index.isValid() || index.row() >= order_.size()) return {};
        const int t = order_[index.row()];
        const int token = t + 1;
        switch (role) {
            case Qt::DisplayRole:
                switch (index.column()) {
                    case kIndex: return QString::number(token + 1);  // counted from 1, as shown
                    case kToken: return MaskView::visibleToken(d_->pieces[token]);
                    case kKl: return number(d_->kl[t]);
                    case kLogprobA: return QString::number(d_->logprobA[t], 'f', 3);
                    case kLogprobB: return QString::number(d_->logprobB[t], 'f', 3);
                    case kTop: return d_->sameTop[t] ? QStringLiteral("\u2713") : QStringLiteral("\u2717");
                }
                break;
            case Qt::TextAlignmentRole:
                if (index.column() == kTop) return QVariant::fromValue(Qt::Alignment(Qt::AlignCenter));
                if (index.column() != kToken) return QVariant::fromValue(Qt::AlignRight | Qt::AlignVCenter);
                break;
            case Qt::BackgroundRole:
                if (index.column() == kKl)
                    if (const QColor c = shade(d_->kl[t], scale_); c.isValid()) return c;
                break;
            case Qt::UserRole:
                return token;
        }
        return {};
    }

    QVariant headerData(int section, Qt::Orientation orientation, int role) const override {
        if (orientation != Qt::Horizontal) return {};
        if (role == Qt::DisplayRole) {
            switch (section) {
                case kIndex: return tr("#");
                case kToken: return tr("Token");
                case kKl: return tr("KL");
                case kLogprobA: return tr("log p A");
                case kLogprobB: return tr("log p B");
                case kTop: return tr("Top-1");
            }
        } else if (role == Qt::ToolTipRole) {
            if (section == kKl) return tr("KL(A \u2016 B) in nats of the two predictions of this token");
            if (section == kTop) return tr("Whether both models' most probable token is the same");
        }
        return {};
    }

    void sort(int column, Qt::SortOrder order) override {
        if (!d_ || order_.isEmpty()) return;
        emit layoutAboutToBeChanged({}, QAbstractItemModel::VerticalSortHint);
        const QModelIndexList from = persistentIndexList();
        QVector<int> fromPositions;
        fromPositions.reserve(from.size());
        for (const QModelIndex& i : from) fromPositions << order_[i.row()];
        // Ties keep the text's order, whichever way the column goes.
        const auto by = [&](auto key) {
            std::stable_sort(order_.begin(), order_.end(), [&](int a, int b) {
                return order == Qt::AscendingOrder ? key(a) < key(b) : key(b) < key(a);
            });
        };
        const DivergenceViewData& d = *d_;
        switch (column) {
            case kToken: {
                QStringList shown;
                shown.reserve(d.positions());
                for (int t = 0; t < d.positions(); ++t) shown << MaskView::visibleToken(d.pieces[t + 1]);
                by([&](int t) -> const QString& { return shown[t]; });
                break;
            }
            case kKl: by([&](int t) { return d.kl[t]; }); break;
            case kLogprobA: by([&](int t) { return d.logprobA[t]; }); break;
            case kLogprobB: by([&](int t) { return d.logprobB[t]; }); break;
            case kTop: by([&](int t) { return d.sameTop[t]; }); break;
            default: by([](int t) { return t; }); break;
        }
        for (int row = 0; row < order_.size(); ++row) rowOf_[order_[row]] = row;
        QModelIndexList to;
        to.reserve(from.size());
        for (qsizetype i = 0; i < from.size(); ++i) to << index(rowOf_[fromPositions[i]], from[i].column());
        changePersistentIndexList(from, to);
        emit layoutChanged({}, QAbstractItemModel::VerticalSortHint);
    }

private:
    const DivergenceViewData* d_ = nullptr;
    double scale_ = 1;
    QVector<int> order_;  // row -> position
    QVector<int> rowOf_;  // position -> row
};

DivergenceView::DivergenceView(QWidget* parent) : QWidget(parent) {
    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(0, 0, 0, 0);

    auto* models = new QHBoxLayout;
    auto addModel = [&](const QString& caption, const QString& name, QComboBox*& model, QComboBox*& precision) {
        auto* label = new QLabel(caption, this);
        models->addWidget(label);
        model = new QComboBox(this);
        model->setObjectName(QStringLiteral("divergenceModel%1").arg(name));
        model->setSizeAdjustPolicy(QComboBox::AdjustToContents);
        model->setMinimumContentsLength(12);
        label->setBuddy(model);
        models->addWidget(model);
        precision = new QComboBox(this);
        precision->setObjectName(QStringLiteral("divergencePrecision%1").arg(name));
        precision->addItems(kPrecisions);
        precision->setToolTip(tr("The precision the model is loaded in for this comparison"));
        models->addWidget(precision);
        QComboBox* p = precision;
        QComboBox* m = model;
        connect(model, &QComboBox::currentIndexChanged, this, [this, p, m] { fillPrecision(p, m); });
    };
    addModel(tr("Model A"), QStringLiteral("A"), modelA_, precisionA_);
    models->addSpacing(12);
    addModel(tr("Model B"), QStringLiteral("B"), modelB_, precisionB_);
    models->addSpacing(12);
    run_ = new QPushButton(tr("Run"), this);
    run_->setObjectName("divergenceRun");
    run_->setToolTip(tr("Both models read the text; each token is shaded by KL(A \u2016 B) of the predictions of it"));
    connect(run_, &QPushButton::clicked, this, &DivergenceView::run);
    models->addWidget(run_);
    stop_ = new QPushButton(tr("Stop"), this);
    stop_->setObjectName("divergenceStop");
    connect(stop_, &QPushButton::clicked, this, &DivergenceView::stop);
    models->addWidget(stop_);
    progress_ = new QProgressBar(this);
    progress_->setObjectName("divergenceProgress");
    progress_->setRange(0, 1000);
    progress_->setTextVisible(true);
    progress_->setVisible(false);
    models->addWidget(progress_, 1);
    models->addStretch();
    layout->addLayout(models);

    auto* input = new QHBoxLayout;
    input_ = new QPlainTextEdit(this);
    input_->setObjectName("divergenceText");
    input_->setPlaceholderText(tr("A text both models read: type or paste it, or use the current conversation"));
    input_->setFixedHeight(input_->fontMetrics().lineSpacing() * 4 + 12);
    input->addWidget(input_, 1);
    useConversation_ = new QPushButton(tr("Use current\nconversation"), this);
    useConversation_->setObjectName("divergenceUseConversation");
    useConversation_->setToolTip(tr("The chat's open conversation, or else the compare prompt and every pane's reply"));
    connect(useConversation_, &QPushButton::clicked, this, &DivergenceView::conversationRequested);
    input->addWidget(useConversation_, 0, Qt::AlignTop);
    layout->addLayout(input);

    summary_ = new QLabel(this);
    summary_->setObjectName("divergenceSummary");
    summary_->setWordWrap(true);
    summary_->setTextFormat(Qt::RichText);
    summary_->setTextInteractionFlags(Qt::TextSelectableByMouse);
    layout->addWidget(summary_);

    auto* split = new QSplitter(Qt::Horizontal, this);
    tokens_ = new QTextBrowser(split);
    tokens_->setObjectName("divergenceTokens");
    tokens_->setOpenLinks(false);
    tokens_->viewport()->installEventFilter(this);  // a tooltip per token
    QFont textFont = tokens_->font();
    textFont.setPointSizeF(textFont.pointSizeF() * 1.15);  // shades read better on larger glyphs
    tokens_->setFont(textFont);
    table_ = new QTableView(split);
    table_->setObjectName("divergenceTable");
    model_ = new TableModel(table_);
    table_->setModel(model_);
    table_->verticalHeader()->setVisible(false);
    table_->verticalHeader()->setSectionResizeMode(QHeaderView::Fixed);
    table_->verticalHeader()->setDefaultSectionSize(table_->fontMetrics().lineSpacing() + 6);
    table_->setEditTriggers(QAbstractItemView::NoEditTriggers);
    table_->setSelectionBehavior(QAbstractItemView::SelectRows);
    table_->setSelectionMode(QAbstractItemView::SingleSelection);
    table_->setWordWrap(false);
    table_->horizontalHeader()->setSectionResizeMode(QHeaderView::Interactive);
    table_->horizontalHeader()->setSectionResizeMode(kToken, QHeaderView::Stretch);
    table_->setSortingEnabled(true);
    table_->setToolTip(tr("Click a token to find it in the text; sort by KL for the worst"));
    connect(table_->selectionModel(), &QItemSelectionModel::currentRowChanged, this, [this](const QModelIndex& current) {
        if (current.isValid()) jumpToToken(tokenInRow(current.row()));
    });
    split->addWidget(tokens_);
    split->addWidget(table_);
    split->setStretchFactor(0, 3);
    split->setStretchFactor(1, 2);
    layout->addWidget(split, 1);

    legend_ = new QLabel(this);
    legend_->setObjectName("divergenceLegend");
    legend_->setTextFormat(Qt::RichText);
    layout->addWidget(legend_);

    DivergenceWorker* w = worker_.worker();
    connect(w, &DivergenceWorker::progress, this, [this](quint64 id, const QString& stage, double f) {
        if (id != requestId_) return;
        progress_->setValue(static_cast<int>(std::lround(f * 1000)));
        progress_->setFormat(stage + QStringLiteral("\u2026 %p%"));
        status_ = stage;
    });
    connect(w, &DivergenceWorker::diverged, this, [this](quint64 id, const DivergenceViewData& data) {
        if (id != requestId_) return;
        showResult(data);
    });
    connect(w, &DivergenceWorker::error, this, [this](quint64 id, const QString& message) {
        if (id != requestId_) return;
        requestId_ = 0;
        data_ = {};
        render();  // no result of other models left beside the reason
        showStatus(QStringLiteral("<span style='color:#c0392b'>%1</span>").arg(message.toHtmlEscaped()), message);
        updateButtons();
        emit finished();
    });

    render();
    updateButtons();
}

// The models go with the view: a run still going stops before its next pass, and the worker
// (deleted with its thread) frees them.
DivergenceView::~DivergenceView() { release(); }

// ---- choosing models and text --------------------------------------------------------------

void DivergenceView::setCandidates(const QList<Candidate>& candidates) {
    const int slotA = modelA_->currentData().isValid() ? modelA_->currentData().toInt() : -1;
    const int slotB = modelB_->currentData().isValid() ? modelB_->currentData().toInt() : -1;
    const QString precA = precisionA_->currentText(), precB = precisionB_->currentText();
    candidates_ = candidates;
    for (QComboBox* box : {modelA_, modelB_}) {
        QSignalBlocker block(box);
        box->clear();
        for (const Candidate& c : candidates_) box->addItem(tr("%1: %2").arg(QString::number(c.slot + 1), c.name), c.slot);
    }
    // A choice still offered stays (with its precision); else panes 1 and 2.
    if (!choose(modelA_, precisionA_, slotA, precA) && !candidates_.isEmpty()) choose(modelA_, precisionA_, candidates_[0].slot, {});
    if (!choose(modelB_, precisionB_, slotB, precB) && !candidates_.isEmpty())
        choose(modelB_, precisionB_, candidates_[std::min<qsizetype>(1, candidates_.size() - 1)].slot, {});
    updateButtons();
}

QStringList DivergenceView::candidateLabels() const {
    QStringList out;
    for (int i = 0; i < modelA_->count(); ++i) out << modelA_->itemText(i);
    return out;
}

bool DivergenceView::choose(QComboBox* model, QComboBox* precision, int slot, const QString& precisionName) {
    const int index = model->findData(slot);
    if (slot < 0 || index < 0) return false;
    model->setCurrentIndex(index);
    fillPrecision(precision, model);
    if (!precisionName.isEmpty() && kPrecisions.contains(precisionName)) precision->setCurrentText(precisionName);
    return true;
}

bool DivergenceView::chooseA(int slot, const QString& precision) { return choose(modelA_, precisionA_, slot, precision); }
bool DivergenceView::chooseB(int slot, const QString& precision) { return choose(modelB_, precisionB_, slot, precision); }

// A newly chosen model comes at the precision its pane loaded it in.
void DivergenceView::fillPrecision(QComboBox* precision, QComboBox* model) {
    const int slot = model->currentData().isValid() ? model->currentData().toInt() : -1;
    for (const Candidate& c : candidates_)
        if (c.slot == slot && kPrecisions.contains(c.precision)) precision->setCurrentText(c.precision);
}

void DivergenceView::setText(const QString& text) { input_->setPlainText(text); }
QString DivergenceView::text() const { return input_->toPlainText(); }

// ---- running -------------------------------------------------------------------------------

void DivergenceView::run() {
    if (isRunning()) return;
    const auto chosen = [this](QComboBox* box, QComboBox* precision) {
        for (const Candidate& c : candidates_)
            if (box->currentData().isValid() && c.slot == box->currentData().toInt())
                return DivergenceModel{c.path, precision->currentText(), c.name};
        return DivergenceModel{};
    };
    const DivergenceModel a = chosen(modelA_, precisionA_), b = chosen(modelB_, precisionB_);
    if (a.path.isEmpty() || b.path.isEmpty()) {
        const QString why = tr("Load a model in a pane first (Replies), then pick it as A and B.");
        showStatus(QStringLiteral("<i>%1</i>").arg(why.toHtmlEscaped()), why);
        return;
    }
    const QString text = input_->toPlainText();
    if (text.trimmed().isEmpty()) {
        const QString why = tr("Type or paste a text for both models to read, or use the current conversation.");
        showStatus(QStringLiteral("<i>%1</i>").arg(why.toHtmlEscaped()), why);
        return;
    }
    requestId_ = worker_.nextRequestId();
    status_ = tr("Starting");
    progress_->setValue(0);
    progress_->setFormat(tr("Starting\u2026"));
    worker_.post(&DivergenceWorker::diverge, requestId_, a, b, text);
    updateButtons();
}

void DivergenceView::stop() {
    if (!isRunning()) return;
    worker_.cancel(requestId_);  // thread-safe; a late result no longer matches and is dropped
    requestId_ = 0;
    showStatus(QStringLiteral("<i>%1</i>").arg(tr("Stopped.")), tr("Stopped."));
    updateButtons();
}

void DivergenceView::release() {
    stop();
    worker_.post(&DivergenceWorker::unload);  // after the stopped run, which returns at its next check
}

void DivergenceView::showResult(const DivergenceViewData& data) {
    requestId_ = 0;
    data_ = data;
    status_.clear();
    render();
    updateButtons();
    emit finished();
}

void DivergenceView::updateButtons() {
    const bool running = isRunning();
    run_->setEnabled(!running && !candidates_.isEmpty());
    stop_->setEnabled(running);
    progress_->setVisible(running);
    for (QWidget* w : std::initializer_list<QWidget*>{modelA_, modelB_, precisionA_, precisionB_, useConversation_})
        w->setEnabled(!running);
}

QString DivergenceView::statusText() const { return isRunning() || !hasResult() ? status_ : QString(); }

void DivergenceView::showStatus(const QString& html, const QString& plain) {
    status_ = plain;
    summary_->setText(html);
}

// ---- the result ----------------------------------------------------------------------------

QString DivergenceView::summaryText() const {
    if (!hasResult()) return {};
    const DivergenceStats& s = data_.stats;
    return tr("Mean KL %1 \u00b1 %2 nats \u00b7 median %3 \u00b7 p99 %4 \u00b7 max %5 \u00b7 top-1 agreement %6 \u00b7 "
              "PPL A %7 \u00b7 PPL B %8 \u00b7 ratio %9")
        .arg(number(s.meanKl), number(s.meanKlError), number(s.medianKl), number(s.p99Kl), number(s.maxKl),
             percent(s.sameTop), QString::number(s.pplA, 'f', 3), QString::number(s.pplB, 'f', 3),
             QString::number(s.pplRatio, 'f', 4));
}

void DivergenceView::render() {
    marked_ = -1;
    tokens_->setExtraSelections({});
    model_->setResult(nullptr, 1);
    if (!hasResult()) {
        tokens_->clear();
        summary_->setText(QStringLiteral("<i>%1</i>")
                              .arg(tr("Pick two models of the panes (or one at two precisions) and a text: each token "
                                      "is shaded by how far the two models' predictions of it part.")));
        legend_->clear();
        return;
    }
    const DivergenceViewData& d = data_;
    const DivergenceStats& s = d.stats;
    scale_ = std::max(s.p99Kl, kMinScale);
    // Two lines: how far the distributions part, then what that does to each model's reading of
    // the text, and which models these are.
    summary_->setText(tr("Mean KL <b>%1</b> \u00b1 %2 nats \u00b7 median %3 \u00b7 p99 %4 \u00b7 max %5 \u00b7 top-1 "
                         "agreement <b>%6</b>")
                          .arg(number(s.meanKl), number(s.meanKlError), number(s.medianKl), number(s.p99Kl),
                               number(s.maxKl), percent(s.sameTop)) +
                      QStringLiteral("<br>") +
                      tr("Perplexity A <b>%1</b> \u00b7 B <b>%2</b> \u00b7 ratio B/A <b>%3</b> \u2014 A %4, B %5, %6 "
                         "predictions")
                          .arg(QString::number(s.pplA, 'f', 3), QString::number(s.pplB, 'f', 3),
                               QString::number(s.pplRatio, 'f', 4), d.nameA.toHtmlEscaped(), d.nameB.toHtmlEscaped(),
                               QString::number(s.tokens)));
    summary_->setToolTip(summaryText());

    // The text as it was given, then each shaded token's characters in its shade: document
    // positions are the text's UTF-16 offsets (the text comes from a QPlainTextEdit, whose line
    // ends are single characters already), so a token's span is also its place in the document.
    // One insert and a format per shaded token, in a document of its own that no layout follows
    // yet; the browser then lays it out lazily from the top: 32k tokens show in tens of ms.
    auto* doc = new QTextDocument(tokens_);
    doc->setUndoRedoEnabled(false);
    doc->setDefaultFont(tokens_->font());
    QTextCursor cursor(doc);
    cursor.beginEditBlock();  // and no layout yet: the cursor computes no places on screen
    cursor.insertText(d.text, QTextCharFormat());
    const int last = doc->characterCount() - 1;
    QHash<QRgb, QTextCharFormat> formats;  // one per shade: a format is looked up by its properties
    for (int i = 1; i < d.ids.size(); ++i) {  // the first token has no prediction
        if (d.begin[i] >= d.end[i]) continue;  // a special token, or a byte inside a character
        const QColor c = shade(d.kl[i - 1], scale_);
        if (!c.isValid()) continue;
        auto f = formats.find(c.rgba());
        if (f == formats.end()) {
            f = formats.insert(c.rgba(), QTextCharFormat());
            f->setBackground(c);
        }
        cursor.setPosition(std::min(d.begin[i], last));
        cursor.setPosition(std::min(d.end[i], last), QTextCursor::KeepAnchor);
        cursor.setCharFormat(*f);
    }
    cursor.endEditBlock();
    QTextDocument* old = tokens_->document();
    const bool ours = old->parent() == tokens_;  // else the browser's first, which it deletes itself
    tokens_->setDocument(doc);
    if (ours) delete old;
    tokens_->moveCursor(QTextCursor::Start);

    {
        QSignalBlocker block(table_->selectionModel());
        model_->setResult(&data_, scale_);
        // Widths from the widest text each column can hold rather than sized to the contents,
        // which would measure rows again on every sort.
        const QFontMetrics fm = table_->fontMetrics();
        const auto fit = [&](int column, const QString& widest) {
            table_->setColumnWidth(column, std::max(fm.horizontalAdvance(widest) + 12,
                                                    table_->horizontalHeader()->sectionSizeHint(column)));
        };
        fit(kIndex, QString(QString::number(d.ids.size()).size(), QLatin1Char('0')));
        fit(kKl, QStringLiteral("0.00e-00"));
        fit(kLogprobA, QStringLiteral("-00.000"));
        fit(kLogprobB, QStringLiteral("-00.000"));
        fit(kTop, QStringLiteral("\u2713"));
        table_->sortByColumn(kKl, Qt::DescendingOrder);  // the worst tokens first
        table_->scrollToTop();
    }

    QString ramp;
    for (double f : {0.0, 0.05, 0.2, 0.45, 0.7, 1.0}) {
        const QColor c = shade(f * scale_, scale_);
        ramp += QStringLiteral("<span style='background-color:%1'>&nbsp;&nbsp;&nbsp;&nbsp;</span>")
                    .arg(c.isValid() ? c.name(QColor::HexArgb) : QStringLiteral("transparent"));
    }
    legend_->setText(tr("Shade: KL of the prediction of each token, 0 %1 %2 nats (p99) and above. Hover a token for "
                        "both models' top %3.")
                         .arg(ramp, number(scale_), QString::number(d.topK)));
}

int DivergenceView::tokenInRow(int row) const { return model_->tokenInRow(row); }

void DivergenceView::jumpToToken(int token) {
    if (!hasResult() || token < 0 || token >= data_.ids.size()) return;
    marked_ = token;
    QTextCursor c(tokens_->document());
    c.setPosition(data_.begin[token]);
    c.setPosition(data_.end[token], QTextCursor::KeepAnchor);
    QTextEdit::ExtraSelection mark;
    mark.cursor = c;
    mark.format.setBackground(QColor(31, 78, 156));
    mark.format.setForeground(Qt::white);
    mark.format.setFontWeight(QFont::Bold);
    tokens_->setExtraSelections({mark});
    QTextCursor at(tokens_->document());
    at.setPosition(data_.begin[token]);
    tokens_->setTextCursor(at);
    tokens_->ensureCursorVisible();
    // The table follows a jump made elsewhere (a test, a future link).
    // Its currentRowChanged comes back here once, with the row already current.
    if (const int row = model_->rowOfToken(token); row >= 0 && table_->currentIndex().row() != row) {
        table_->selectionModel()->setCurrentIndex(model_->index(row, kToken),
                                                  QItemSelectionModel::ClearAndSelect | QItemSelectionModel::Rows);
        table_->scrollTo(model_->index(row, kToken));
    }
}

QString DivergenceView::tokenToolTip(int token) const {
    const DivergenceViewData& d = data_;
    if (!hasResult() || token < 0 || token >= d.ids.size()) return {};
    const QString piece = MaskView::visibleToken(d.pieces[token]).toHtmlEscaped();
    if (token == 0) return tr("<b>%1</b> \u2014 token 1: nothing predicts it").arg(piece);
    const int t = token - 1;
    // One arg() for all: a piece such as "%1" must not be taken for a place of the next one.
    QString html = tr("<b>%1</b> \u2014 token %2 \u00b7 KL <b>%3</b> nats \u00b7 %4")
                       .arg(piece, QString::number(token + 1), number(d.kl[t]),
                            d.sameTop[t] ? tr("same top-1") : tr("<span style='color:#c0392b'>different top-1</span>"));
    // "Model A" and "Model B" as the choosers above name them: full names would wrap the columns.
    html += QStringLiteral("<table cellspacing='0' cellpadding='2' style='margin-top:4px'><tr><th align='left' "
                           "colspan='2'>%1</th><th width='16'></th><th align='left' colspan='2'>%2</th></tr>")
                .arg(tr("Model A"), tr("Model B"));
    // The actual next token in bold, known by its id: two tokens can decode alike.
    const auto cell = [&](int id, const QString& text, float p) {
        const QString shown = MaskView::visibleToken(text).toHtmlEscaped();
        return QStringLiteral("<td>%1</td><td align='right'>%2</td>")
            .arg(id == d.ids[token] ? QStringLiteral("<b>") + shown + QStringLiteral("</b>") : shown, percent(p));
    };
    for (int k = 0; k < d.topK; ++k) {
        const int i = t * d.topK + k;
        html += QStringLiteral("<tr>%1<td></td>%2</tr>")
                    .arg(cell(d.topIdA[i], d.topTextA[i], d.topProbA[i]), cell(d.topIdB[i], d.topTextB[i], d.topProbB[i]));
    }
    html += QStringLiteral("</table>");
    html += tr("log p of this token: A <b>%1</b> (%2) \u00b7 B <b>%3</b> (%4)")
                .arg(QString::number(d.logprobA[t], 'f', 3), percent(std::exp(d.logprobA[t])),
                     QString::number(d.logprobB[t], 'f', 3), percent(std::exp(d.logprobB[t])));
    return html;
}

int DivergenceView::tokenAt(const QPoint& viewportPos) const {
    if (!hasResult()) return -1;
    const QPoint docPos = viewportPos + QPoint(tokens_->horizontalScrollBar()->value(), tokens_->verticalScrollBar()->value());
    int pos = tokens_->document()->documentLayout()->hitTest(docPos, Qt::ExactHit);
    if (pos < 0) return -1;
    // The hit rounds to the nearest gap between characters: left of it is the character before.
    QTextCursor c(tokens_->document());
    c.setPosition(pos);
    if (viewportPos.x() < tokens_->cursorRect(c).x() && pos > 0) --pos;
    const QVector<int>& b = data_.begin;
    for (int i = 0; i < b.size(); ++i)
        if (b[i] <= pos && pos < data_.end[i]) return i;
    return -1;
}

QRect DivergenceView::tokenRect(int token) const {
    if (!hasResult() || token < 0 || token >= data_.ids.size() || data_.begin[token] >= data_.end[token]) return {};
    QTextCursor c(tokens_->document());
    c.setPosition(data_.begin[token]);
    const QRect left = tokens_->cursorRect(c);
    c.setPosition(data_.begin[token] + 1);
    const QRect right = tokens_->cursorRect(c);
    return QRect(left.topLeft(), QPoint(std::max(right.x(), left.x() + 1), left.bottom()));
}

bool DivergenceView::eventFilter(QObject* watched, QEvent* event) {
    if (watched == tokens_->viewport() && event->type() == QEvent::ToolTip) {
        const auto* help = static_cast<QHelpEvent*>(event);
        const int token = tokenAt(help->pos());
        if (token >= 0)
            QToolTip::showText(help->globalPos(), tokenToolTip(token), tokens_->viewport(), tokenRect(token));
        else
            QToolTip::hideText();
        return true;
    }
    return QWidget::eventFilter(watched, event);
}

}  // namespace wp::ui
