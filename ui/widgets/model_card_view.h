// The Model dock: what the loaded model is — family, size, weights and compute precision,
// context, attention shape, KV cache per token, tokenizer, chat template, and each layer's
// attention (global or sliding with its window). Scrolls, so it never widens the window.
#pragma once

#include <QScrollArea>

#include "engine/types.h"

class QLabel;

namespace wp::ui {

class ModelCardView : public QScrollArea {
    Q_OBJECT
public:
    explicit ModelCardView(QWidget* parent = nullptr);

    // An empty card.path shows how to open a model instead.
    void setCard(const ModelCard& card);

private:
    QLabel* label_ = nullptr;
};

}  // namespace wp::ui
