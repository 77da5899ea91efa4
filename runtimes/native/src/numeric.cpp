#include "pace/numeric.hpp"

#include <algorithm>
#include <cmath>

namespace pace {

double pairwise_sum(const double* a, size_t n) {
    constexpr size_t kBlock = 128;  // numpy's PW_BLOCKSIZE
    if (n < 8) {
        double res = 0.0;
        for (size_t i = 0; i < n; ++i) res += a[i];
        return res;
    }
    if (n <= kBlock) {
        double r[8];
        for (int j = 0; j < 8; ++j) r[j] = a[j];
        size_t i = 8;
        for (; i < n - (n % 8); i += 8)
            for (int j = 0; j < 8; ++j) r[j] += a[i + j];
        double res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for (; i < n; ++i) res += a[i];
        return res;
    }
    size_t n2 = n / 2;
    n2 -= n2 % 8;
    return pairwise_sum(a, n2) + pairwise_sum(a + n2, n - n2);
}

double mean(const Vec& v) { return sum(v) / double(v.size()); }

double stddev(const Vec& v, int ddof) {
    double m = mean(v);
    Vec sq(v.size());
    for (size_t i = 0; i < v.size(); ++i) {
        double d = v[i] - m;
        sq[i] = d * d;
    }
    return std::sqrt(sum(sq) / double(long(v.size()) - ddof));
}

double median(Vec v) {
    size_t n = v.size();
    size_t mid = n / 2;
    std::nth_element(v.begin(), v.begin() + long(mid), v.end());
    double hi = v[mid];
    if (n % 2) return hi;
    double lo = *std::max_element(v.begin(), v.begin() + long(mid));
    return (lo + hi) / 2.0;
}

Vec linspace(double start, double stop, size_t num) {
    Vec out(num);
    if (num == 0) return out;
    double div = double(num - 1);
    double delta = stop - start;
    double step = num > 1 ? delta / div : delta;
    for (size_t i = 0; i < num; ++i) {
        double y = double(i);
        out[i] = (step == 0.0 ? (y / div) * delta : y * step) + start;
    }
    if (num > 1) out[num - 1] = stop;
    return out;
}

}  // namespace pace
