// Cosmic-ray spike removal (Whitaker & Hayes 2018) with the narrowness check, as in
// pace_edge.preprocess.despike.
#include <cmath>

#include "pace/preprocess.hpp"

namespace pace {

namespace {

// Signed modified z-scores of the first differences (length n - 1).
Vec jump_scores(const Vec& x) {
    const size_t m = x.size() - 1;
    Vec d(m), dev(m), absdev(m), z(m, 0.0);
    for (size_t i = 0; i < m; ++i) d[i] = x[i + 1] - x[i];
    const double med = median(d);
    for (size_t i = 0; i < m; ++i) {
        dev[i] = d[i] - med;
        absdev[i] = std::fabs(dev[i]);
    }
    double scale = median(absdev) / 0.6745;
    if (!(scale > 0)) scale = 1.253314 * mean(absdev);
    if (scale > 0)
        for (size_t i = 0; i < m; ++i) z[i] = dev[i] / scale;
    return z;
}

double replacement(const Vec& row, const std::vector<bool>& bad, size_t j, int window) {
    const size_t n = row.size(), w = size_t(window);
    const size_t lo = j >= w ? j - w : 0, hi = std::min(n, j + w + 1);
    Vec good;
    for (size_t k = lo; k < hi; ++k)
        if (!bad[k]) good.push_back(row[k]);
    if (!good.empty()) return mean(good);
    Vec near;
    for (size_t k = j; k-- > 0;) {
        if (!bad[k]) {
            near.push_back(row[k]);
            break;
        }
    }
    for (size_t k = j + 1; k < n; ++k) {
        if (!bad[k]) {
            near.push_back(row[k]);
            break;
        }
    }
    return near.empty() ? row[j] : mean(near);
}

}  // namespace

std::vector<bool> spike_mask(const Vec& x, double threshold, int window) {
    const size_t n = x.size();
    std::vector<bool> mask(n, false);
    if (n < 2) return mask;
    const Vec z = jump_scores(x);
    std::vector<bool> up(n - 1), down(n - 1), candidate(n, false);
    bool any = false;
    for (size_t i = 0; i + 1 < n; ++i) {
        up[i] = z[i] > threshold;
        down[i] = z[i] < -threshold;
        if (up[i] || down[i]) {
            candidate[i] = candidate[i + 1] = true;
            any = true;
        }
    }
    if (!any) return mask;
    for (size_t start = 0; start < n;) {
        if (!candidate[start]) {
            ++start;
            continue;
        }
        size_t stop = start;
        while (stop < n && candidate[stop]) ++stop;
        const bool at_end = start == 0 || stop == n;
        bool has_up = false, has_down = false;
        for (size_t i = start; i + 1 < stop; ++i) {
            has_up = has_up || up[i];
            has_down = has_down || down[i];
        }
        if (stop - start <= size_t(2 * window + 1) && ((has_up && has_down) || at_end)) {
            const size_t from = start + (start > 0 ? 1 : 0), to = stop - (stop < n ? 1 : 0);
            for (size_t k = from; k < to; ++k) mask[k] = true;
        }
        start = stop;
    }
    return mask;
}

Vec despike(const Vec& x, double threshold, int window) {
    const std::vector<bool> mask = spike_mask(x, threshold, window);
    Vec out = x;
    for (size_t j = 0; j < x.size(); ++j)
        if (mask[j]) out[j] = replacement(x, mask, j, window);
    return out;
}

}  // namespace pace
