// numpy's summation and statistics, reproduced operation for operation so that results
// match the Python reference (numpy's pairwise summation, np.median, population std).
#pragma once

#include <cstddef>
#include <vector>

namespace pace {

using Vec = std::vector<double>;

// np.add.reduce over a contiguous float64 array (numpy's pairwise summation, bit-exact).
double pairwise_sum(const double* a, size_t n);
inline double sum(const Vec& v) { return pairwise_sum(v.data(), v.size()); }
// np.mean (sum / n).
double mean(const Vec& v);
// np.std(v, ddof=ddof).
double stddev(const Vec& v, int ddof = 0);
// np.median (mean of the two middle values for an even count).
double median(Vec v);
// np.linspace(start, stop, num) (endpoint included).
Vec linspace(double start, double stop, size_t num);

}  // namespace pace
