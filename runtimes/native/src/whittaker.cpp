// pybaselines' asls and arpls: iteratively reweighted Whittaker smoothing,
// (W + lam D'D) z = W y, solved as scipy.linalg.solveh_banded does (LAPACK dpbtf2/dpbtrs
// banded Cholesky, reproduced step by step).
#include <cmath>
#include <limits>

#include "pace/errors.hpp"
#include "pace/preprocess.hpp"

namespace pace {

const std::vector<std::string>& supported_baselines() {
    static const std::vector<std::string> methods = {"asls", "arpls"};
    return methods;
}

namespace {

constexpr double kMinFloat = std::numeric_limits<double>::epsilon();  // pybaselines _MIN_FLOAT

// Lower bands of D'D for the `order`-th difference matrix D (n-order by n):
// bands[k][j] = (D'D)[j + k][j], k = 0..order, zero past the end.
std::vector<Vec> penalty_bands(size_t n, int order) {
    Vec c(size_t(order) + 1);  // coefficients of one difference row: (-1)^(order-k) C(order, k)
    for (int k = 0; k <= order; ++k) {
        double binom = 1.0;
        for (int i = 0; i < k; ++i) binom = binom * double(order - i) / double(i + 1);
        c[size_t(k)] = ((order - k) % 2 ? -1.0 : 1.0) * std::round(binom);
    }
    std::vector<Vec> bands(size_t(order) + 1, Vec(n, 0.0));
    const size_t d = size_t(order);
    for (size_t row = 0; row + d < n; ++row)  // row `row` of D touches columns row..row+d
        for (size_t a = 0; a <= d; ++a)
            for (size_t b = 0; b <= a; ++b) bands[a - b][row + b] += c[a] * c[b];
    return bands;
}

// Solve A z = rhs for symmetric positive definite banded A given by its lower bands
// (dpbtf2 + dpbtrs, lower). `ab` is overwritten by the Cholesky factor.
Vec solve_banded_spd(std::vector<Vec>& ab, Vec rhs) {
    const size_t n = rhs.size(), kd = ab.size() - 1;
    for (size_t j = 0; j < n; ++j) {  // dpbtf2
        double ajj = ab[0][j];
        if (!(ajj > 0.0)) {
            throw DataError("baseline fit failed: the Whittaker system is not positive definite "
                            "(leading minor " + std::to_string(j + 1) + ")");
        }
        ajj = std::sqrt(ajj);
        ab[0][j] = ajj;
        const size_t kn = std::min(kd, n - 1 - j);
        const double inv = 1.0 / ajj;
        for (size_t i = 1; i <= kn; ++i) ab[i][j] *= inv;  // dscal
        for (size_t jj = 1; jj <= kn; ++jj) {               // dsyr, lower, alpha = -1
            const double temp = -ab[jj][j];
            if (temp == 0.0) continue;
            for (size_t ii = jj; ii <= kn; ++ii) ab[ii - jj][j + jj] += ab[ii][j] * temp;
        }
    }
    for (size_t j = 0; j < n; ++j) {  // dtbsv lower, no transpose: L y = b
        if (rhs[j] != 0.0) {
            rhs[j] /= ab[0][j];
            const double temp = rhs[j];
            for (size_t i = j + 1; i <= std::min(n - 1, j + kd); ++i) rhs[i] -= temp * ab[i - j][j];
        }
    }
    for (size_t j = n; j-- > 0;) {  // dtbsv lower, transpose: L' z = y
        double temp = rhs[j];
        for (size_t i = std::min(n - 1, j + kd); i > j; --i) temp -= ab[i - j][j] * rhs[i];
        rhs[j] = temp / ab[0][j];
    }
    return rhs;
}

class WhittakerSystem {
public:
    WhittakerSystem(size_t n, double lam, int order) : bands_(penalty_bands(n, order)) {
        for (Vec& band : bands_)
            for (double& v : band) v *= lam;
    }
    Vec solve(const Vec& weights, const Vec& y) const {
        std::vector<Vec> ab = bands_;
        Vec rhs(y.size());
        for (size_t i = 0; i < y.size(); ++i) {
            ab[0][i] = bands_[0][i] + weights[i];
            rhs[i] = weights[i] * y[i];
        }
        return solve_banded_spd(ab, std::move(rhs));
    }

private:
    std::vector<Vec> bands_;
};

double norm2(const Vec& v) {
    double s = 0.0;
    for (double e : v) s += e * e;
    return std::sqrt(s);
}

// pybaselines.utils.relative_difference: ||new - old|| / max(||old||, eps).
double relative_difference(const Vec& old_w, const Vec& new_w) {
    Vec d(old_w.size());
    for (size_t i = 0; i < d.size(); ++i) d[i] = new_w[i] - old_w[i];
    return norm2(d) / std::max(norm2(old_w), kMinFloat);
}

void check_options(const Vec& y, const WhittakerOptions& o) {
    if (y.size() < 2) throw DataError("baseline fit needs at least 2 points");
    if (o.diff_order < 1) throw DataError("baseline diff_order must be > 0");
}

}  // namespace

Vec asls_baseline(const Vec& y, const WhittakerOptions& o) {
    check_options(y, o);
    const WhittakerSystem system(y.size(), o.lam, o.diff_order);
    Vec weights(y.size(), 1.0), baseline;
    for (int i = 0; i <= o.max_iter; ++i) {
        baseline = system.solve(weights, y);
        Vec next(y.size());
        for (size_t k = 0; k < y.size(); ++k) next[k] = y[k] > baseline[k] ? o.p : 1.0 - o.p;
        if (relative_difference(weights, next) < o.tol) break;
        weights.swap(next);
    }
    return baseline;
}

Vec arpls_baseline(const Vec& y, const WhittakerOptions& o) {
    check_options(y, o);
    const WhittakerSystem system(y.size(), o.lam, o.diff_order);
    Vec weights(y.size(), 1.0), baseline;
    for (int i = 0; i <= o.max_iter; ++i) {
        baseline = system.solve(weights, y);
        Vec residual(y.size()), negative;
        for (size_t k = 0; k < y.size(); ++k) {
            residual[k] = y[k] - baseline[k];
            if (residual[k] < 0) negative.push_back(residual[k]);
        }
        if (negative.size() < 2) break;  // pybaselines exits early (and warns)
        double sd = stddev(negative, 1);
        if (sd == 0) sd = kMinFloat;
        const double shift = 2 * sd - mean(negative);
        Vec next(y.size());
        for (size_t k = 0; k < y.size(); ++k) {
            const double v = -(2 / sd) * (residual[k] - shift);
            next[k] = 1.0 / (1.0 + std::exp(-v));  // scipy.special.expit
        }
        if (relative_difference(weights, next) < o.tol) break;
        weights.swap(next);
    }
    return baseline;
}

}  // namespace pace
