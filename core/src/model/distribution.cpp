#include "model/distribution.h"

#include <cmath>

namespace wp {

RowStats row_stats(const float* z, int n) {
    float m = z[0];
    for (int i = 1; i < n; ++i) m = z[i] > m ? z[i] : m;
    // H = lse - sum(p z) = log S - sum(e (z - m)) / S with e = exp(z - m), S = sum(e).
    double s = 0, ez = 0;
    for (int i = 0; i < n; ++i) {
        const double d = static_cast<double>(z[i]) - m;
        const double e = std::exp(d);
        s += e;
        ez += e * d;
    }
    return {m + std::log(s), std::log(s) - ez / s};
}

void top_k(const float* z, int n, int k, int* ids, float* values) {
    // Insertion into a short sorted list: k is small next to the vocabulary, and scanning ids in
    // order with a strict comparison keeps the lower id ahead of an equal later one.
    int have = 0;
    for (int i = 0; i < n; ++i) {
        const float v = z[i];
        if (have == k && !(v > values[k - 1])) continue;
        int j = have < k ? have++ : k - 1;
        while (j > 0 && v > values[j - 1]) {
            values[j] = values[j - 1];
            ids[j] = ids[j - 1];
            --j;
        }
        values[j] = v;
        ids[j] = i;
    }
}

}  // namespace wp
