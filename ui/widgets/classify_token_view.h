// The Classify tab for a token-classification model: a text, then the same text with each entity
// (tokens grouped as transformers' "simple" aggregation does) coloured by its label's group, a
// legend of the groups, the entities as a table, and on hover each token's label probabilities.
#pragma once

#include <QVector>

#include "engine/classify_types.h"
#include "engine/types.h"
#include "widgets/classify_view_base.h"

class QLabel;
class QPlainTextEdit;
class QTableWidget;
class QTextBrowser;

namespace wp::ui {

class ClassifyTokenView : public ClassifyViewBase {
    Q_OBJECT
public:
    explicit ClassifyTokenView(WorkerThread& worker, QWidget* parent = nullptr);

    void setModel(const ModelCard& card);
    void setText(const QString& text);
    QString text() const;
    void classify();  // Classify, Ctrl+Enter; emits resultShown

    const ClassifyResult& result() const { return result_; }
    // The token at character `pos` of the shown text (-1: none) and its hover text.
    int tokenAt(int pos) const;
    // The offset in the shown text of a position in rendered()'s document (-1: a label tag).
    int textOffset(int documentPosition) const;
    QString tokenTooltip(int token) const;
    // The coloured stretches of the shown text, [begin, end) with their group, as drawn.
    struct Span {
        int begin = 0, end = 0;
        QString group;
    };
    QVector<Span> coloredSpans() const;
    QTextBrowser* rendered() const { return rendered_; }
    QTableWidget* entityTable() const { return table_; }

protected:
    bool eventFilter(QObject* o, QEvent* e) override;
    void changeEvent(QEvent* e) override;

private:
    void submit() override { classify(); }
    void show(const ClassifyResult& r);
    void render();
    void buildLegend();

    QStringList groups_;  // the model's entity groups, in colour order
    ClassifyResult result_;
    QVector<int> tokenOfChar_;  // per character of result_.text: its token, or -1
    QPlainTextEdit* input_ = nullptr;
    QLabel* legend_ = nullptr;
    QTextBrowser* rendered_ = nullptr;
    QTableWidget* table_ = nullptr;
};

}  // namespace wp::ui
