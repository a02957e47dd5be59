#include "model/distribution.h"

#include <algorithm>
#include <cmath>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

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

PairStats pair_stats(const float* za, const float* zb, int n) {
    float ma = za[0], mb = zb[0];
    for (int i = 1; i < n; ++i) {
        ma = za[i] > ma ? za[i] : ma;
        mb = zb[i] > mb ? zb[i] : mb;
    }
    double sa = 0, sb = 0, cross = 0;
    for (int i = 0; i < n; ++i) {
        const double ea = std::exp(static_cast<double>(za[i]) - ma);
        sa += ea;
        sb += std::exp(static_cast<double>(zb[i]) - mb);
        cross += ea * (static_cast<double>(za[i]) - zb[i]);
    }
    PairStats p;
    p.lse_a = ma + std::log(sa);
    p.lse_b = mb + std::log(sb);
    const double kl = cross / sa - (p.lse_a - p.lse_b);
    p.kl = kl < 0 ? 0.0 : kl;  // rounding can leave -1e-17; a NaN (broken logits) must show, not read as 0
    return p;
}

void for_rows(int rows, int threads, const std::function<void(int begin, int end)>& fn) {
    const int parts = std::clamp(std::min(threads, rows / 2), 1, 16);
    if (parts == 1) {
        if (rows > 0) fn(0, rows);
        return;
    }
    std::vector<std::thread> others;
    others.reserve(static_cast<std::size_t>(parts - 1));
    const auto bound = [&](int p) { return static_cast<int>(static_cast<long long>(rows) * p / parts); };
    std::exception_ptr failed;
    std::mutex failed_mutex;
    const auto run = [&](int begin, int end) {
        try {
            fn(begin, end);
        } catch (...) {
            std::lock_guard<std::mutex> lock(failed_mutex);
            if (!failed) failed = std::current_exception();
        }
    };
    // Every started thread is joined, whatever throws (a std::thread destroyed unjoined ends the program).
    try {
        for (int p = 1; p < parts; ++p) others.emplace_back(run, bound(p), bound(p + 1));
    } catch (...) {
        for (std::thread& t : others) t.join();
        throw;
    }
    run(0, bound(1));
    for (std::thread& t : others) t.join();
    if (failed) std::rethrow_exception(failed);
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
