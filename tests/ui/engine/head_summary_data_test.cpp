// The head-summary grid's numbers against the reference attention probabilities of the shared
// fixtures (../shared/fixtures/*/reference/*.attn.f32, [layers, heads, T, T]): the probabilities go
// through the path the worker takes (one AttentionTrace::one_layer_at_a_time, each layer summarised
// by HeadSummaryData::addLayer and cleared before the next), and through addRecorded, and are read back as the grid reads them (HeadSummaryData::value);
// the expected values are computed here with plain loops from the definitions.
#include <gtest/gtest.h>

#include <QDir>
#include <QFile>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "engine/head_summary_data.h"
#include "wp/attention/trace.h"
#include "wp/model/model_config.h"

namespace wp::ui {
namespace {

QString sharedDir() {
    const QByteArray env = qgetenv("WP_SHARED_DIR");
    return env.isEmpty() ? QStringLiteral(WP_SHARED_DIR) : QString::fromUtf8(env);
}

struct Reference {
    int layers = 0, heads = 0, T = 0;
    std::vector<float> attn;         // [layers, heads, T, T]
    std::vector<std::uint8_t> mask;  // [layers, T, T]
    float p(int l, int h, int q, int k) const { return attn[((static_cast<std::size_t>(l) * heads + h) * T + q) * T + k]; }
    bool allowed(int l, int q, int k) const { return mask[(static_cast<std::size_t>(l) * T + q) * T + k] != 0; }
};

QByteArray readAll(const QString& path) {
    QFile f(path);
    return f.open(QIODevice::ReadOnly) ? f.readAll() : QByteArray();
}

Reference load(const QString& dir, const QString& name) {
    Reference r;
    const QJsonObject j = QJsonDocument::fromJson(readAll(dir + "/" + name + ".json")).object();
    const QJsonArray shape = j.value("attn_shape").toArray();
    r.layers = shape.at(0).toInt();
    r.heads = shape.at(1).toInt();
    r.T = shape.at(2).toInt();
    const QByteArray a = readAll(dir + "/" + j.value("attn_file").toString());
    r.attn.resize(a.size() / sizeof(float));
    std::memcpy(r.attn.data(), a.data(), r.attn.size() * sizeof(float));
    const QByteArray m = readAll(dir + "/" + j.value("masks_file").toString());
    r.mask.assign(m.begin(), m.end());
    return r;
}

// The definitions, one row at a time (rows 1 .. T-1), from the reference and its mask file.
struct Expected {
    double entropy = 0, first = 0, distance = 0, window = 0;
};
Expected expected(const Reference& r, int l, int h) {
    Expected e;
    const int rows = r.T - 1;
    // The window: how many keys the reference mask lets the last row see, when that is fewer than
    // a causal row would (the layer slides).
    int visible = 0;
    for (int k = 0; k < r.T; ++k) visible += r.allowed(l, r.T - 1, k);
    const bool sliding = visible < r.T;
    for (int q = 1; q < r.T; ++q) {
        std::vector<double> row;  // keys 0 .. q
        double total = 0;
        for (int k = 0; k <= q; ++k) {
            row.push_back(r.p(l, h, q, k));
            total += row.back();
        }
        for (int k = 0; k <= q; ++k) {
            if (row[k] > 0) e.entropy -= row[k] * std::log(row[k]);
            e.distance += row[k] * (q - k);
        }
        e.first += row[0];
        if (sliding) {
            int inWindow = 0;
            for (int k = 0; k <= q; ++k) inWindow += r.allowed(l, q, k);
            // The fewest nearest keys whose probabilities reach 90 % of the row.
            double mass = 0;
            int needed = 0;
            while (needed < inWindow && mass < 0.9 * total) mass += row[q - needed++];
            e.window += static_cast<double>(needed) / inWindow;
        }
    }
    e.entropy /= rows;
    e.first /= rows;
    e.distance /= rows;
    e.window = sliding ? e.window / rows : NAN;
    return e;
}

void check(const char* folder, const char* name) {
    const QString modelDir = sharedDir() + "/fixtures/" + folder;
    if (!QFile::exists(modelDir + "/config.json")) {
        if (!qEnvironmentVariableIsEmpty("CI")) FAIL() << "shared fixture " << folder << " missing (CI is set)";
        GTEST_SKIP() << "shared fixtures not found at " << sharedDir().toStdString();
    }
    const Reference ref = load(modelDir + "/reference", name);
    ASSERT_GT(ref.T, 1);
    ASSERT_EQ(ref.attn.size(), static_cast<std::size_t>(ref.layers) * ref.heads * ref.T * ref.T);
    const ModelConfig cfg = ModelConfig::load(modelDir.toStdString());
    ASSERT_EQ(cfg.num_layers, ref.layers);

    // As the worker does it: every layer through the one layer's storage, summarised, then cleared;
    // the masked entries are never written (the engine leaves them to clear()).
    HeadSummaryData data;
    data.reset(cfg.layer_masks, ref.heads, ref.T);
    AttentionTrace rolling = AttentionTrace::one_layer_at_a_time(ref.layers, ref.heads, ref.T);
    ASSERT_EQ(rolling.data().size(), static_cast<std::size_t>(ref.heads) * ref.T * ref.T);
    for (int l = 0; l < ref.layers; ++l) {
        for (int h = 0; h < ref.heads; ++h)
            for (int q = 0; q < ref.T; ++q)
                for (int k = 0; k < ref.T; ++k)
                    if (ref.p(l, h, q, k) != 0.0f) rolling.row(l, h, q)[k] = ref.p(l, h, q, k);
        data.addLayer(rolling, l);
        rolling.clear();
    }
    // And a trace of every layer at once.
    HeadSummaryData whole;
    whole.reset(cfg.layer_masks, ref.heads, ref.T);
    AttentionTrace all(ref.layers, ref.heads, ref.T);
    for (int l = 0; l < ref.layers; ++l)
        for (int h = 0; h < ref.heads; ++h)
            for (int q = 0; q < ref.T; ++q)
                for (int k = 0; k < ref.T; ++k) all.row(l, h, q)[k] = ref.p(l, h, q, k);
    whole.addRecorded(all);

    using M = HeadSummaryData::Metric;
    for (int l = 0; l < ref.layers; ++l)
        for (int h = 0; h < ref.heads; ++h) {
            SCOPED_TRACE(testing::Message() << folder << "/" << name << " layer " << l << " head " << h);
            const Expected e = expected(ref, l, h);
            for (M m : {M::Entropy, M::FirstToken, M::MeanDistance})
                EXPECT_NEAR(whole.value(l, h, m), data.value(l, h, m), 1e-12);
            EXPECT_NEAR(data.value(l, h, M::Entropy), e.entropy, 1e-4);
            EXPECT_NEAR(data.value(l, h, M::FirstToken), e.first, 1e-4);
            EXPECT_NEAR(data.value(l, h, M::MeanDistance), e.distance, 1e-4);
            if (std::isnan(e.window)) {
                EXPECT_TRUE(std::isnan(data.value(l, h, M::WindowUsed)));
            } else {
                EXPECT_NEAR(data.value(l, h, M::WindowUsed), e.window, 1e-4);
            }
        }
}

TEST(HeadSummaryData, GemmaMatchesTheReferenceAttention) {
    check("tiny-gemma", "seq40");
    check("tiny-gemma", "chat19");
}
TEST(HeadSummaryData, Gemma2SlidingAndGlobalLayersMatchTheReferenceAttention) {
    check("tiny-gemma2", "seq40");
    check("tiny-gemma2", "seq12");
    check("tiny-gemma2", "chat19");
}
TEST(HeadSummaryData, Qwen2MatchesTheReferenceAttention) {
    check("tiny-qwen2", "seq40");
    check("tiny-qwen2", "chat69");
}

}  // namespace
}  // namespace wp::ui
