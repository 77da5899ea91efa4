// pybaselines' asls, iasls, arpls, airpls, iarpls and psalsa: iteratively reweighted Whittaker
// smoothing, (W + lam D'D) z = W y, with D the diff_order-th difference matrix. The system is
// banded, symmetric positive definite; Eigen's sparse Cholesky in natural order (no
// permutation, so no fill outside the band) factorises it as LAPACK's banded Cholesky does
// (scipy's solveh_banded, which pybaselines calls), the pattern analysed once per spectrum.
// drpls's system, (W + D1'D1 + (I - eta W) lam D'D) z = W y, is not symmetric: Eigen's sparse
// LU with partial pivoting in natural order, as scipy's solve_banded (LAPACK dgbsv).
#include <algorithm>
#include <cmath>
#include <limits>

#include <Eigen/Dense>
#include <Eigen/SparseCholesky>
#include <Eigen/SparseCore>
#include <Eigen/SparseLU>

#include "pace/errors.hpp"
#include "pace/preprocess.hpp"

namespace pace {

const std::vector<std::string>& supported_baselines() {
    static const std::vector<std::string> methods = {"asls", "iasls", "arpls", "airpls", "iarpls", "psalsa", "drpls"};
    return methods;
}

namespace {

constexpr double kMinFloat = std::numeric_limits<double>::epsilon();  // pybaselines _MIN_FLOAT

using Sparse = Eigen::SparseMatrix<double>;

// lam * D'D for the `order`-th difference matrix D ((n - order) x n).
Sparse penalty(size_t n, int order, double lam) {
    Vec c(size_t(order) + 1);  // one row of D: (-1)^(order-k) C(order, k)
    for (int k = 0; k <= order; ++k) {
        double binom = 1.0;
        for (int i = 0; i < k; ++i) binom = binom * double(order - i) / double(i + 1);
        c[size_t(k)] = ((order - k) % 2 ? -1.0 : 1.0) * std::round(binom);
    }
    const size_t d = size_t(order), rows = n > d ? n - d : 0;
    std::vector<Eigen::Triplet<double>> entries;
    for (size_t row = 0; row < rows; ++row)
        for (size_t k = 0; k <= d; ++k) entries.emplace_back(int(row), int(row + k), c[k]);
    Sparse diff(static_cast<Eigen::Index>(rows), static_cast<Eigen::Index>(n));
    diff.setFromTriplets(entries.begin(), entries.end());
    Sparse out = Sparse(diff.transpose() * diff) * lam;  // exact integers, then one rounding
    for (Eigen::Index i = 0; i < out.rows(); ++i) out.coeffRef(i, i) += 0.0;  // a full diagonal
    out.makeCompressed();
    return out;
}

class WhittakerSystem {
public:
    WhittakerSystem(size_t n, double lam, int order) : WhittakerSystem(penalty(n, order, lam)) {}
    explicit WhittakerSystem(Sparse penalty) : system_(std::move(penalty)) {
        const size_t n = size_t(system_.rows());
        diagonal_.resize(n);  // where each diagonal entry sits in the compressed values
        penalty_diagonal_.resize(n);
        for (Eigen::Index j = 0; j < system_.outerSize(); ++j)
            for (Sparse::InnerIterator it(system_, j); it; ++it)
                if (it.row() == j) {
                    diagonal_[size_t(j)] = &it.valueRef();
                    penalty_diagonal_[size_t(j)] = it.value();
                }
        solver_.analyzePattern(system_);
    }
    // (W + penalty) z = W y, or = W y + extra when `extra` is given.
    Vec solve(const Vec& weights, const Vec& y, const Vec* extra = nullptr) {
        const Eigen::Index n = Eigen::Index(y.size());
        Eigen::VectorXd rhs(n);
        for (size_t i = 0; i < y.size(); ++i) {
            *diagonal_[i] = penalty_diagonal_[i] + weights[i];
            rhs[Eigen::Index(i)] = weights[i] * y[i] + (extra ? (*extra)[i] : 0.0);
        }
        solver_.factorize(system_);
        if (solver_.info() != Eigen::Success)
            throw DataError("baseline fit failed: the Whittaker system is not positive definite");
        const Eigen::VectorXd z = solver_.solve(rhs);
        return Vec(z.data(), z.data() + n);
    }

private:
    Sparse system_;  // W + lam D'D: the pattern fixed, the diagonal rewritten per solve
    std::vector<double*> diagonal_;
    Vec penalty_diagonal_;  // lam D'D's diagonal
    Eigen::SimplicialLLT<Sparse, Eigen::Lower, Eigen::NaturalOrdering<int>> solver_;
};

// y - baseline, and its negative entries in order (pybaselines' residual[residual < 0]).
void residuals(const Vec& y, const Vec& baseline, Vec& residual, Vec& negative) {
    residual.resize(y.size());
    negative.clear();
    for (size_t k = 0; k < y.size(); ++k) {
        residual[k] = y[k] - baseline[k];
        if (residual[k] < 0) negative.push_back(residual[k]);
    }
}

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
    WhittakerSystem system(y.size(), o.lam, o.diff_order);
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
    WhittakerSystem system(y.size(), o.lam, o.diff_order);
    Vec weights(y.size(), 1.0), baseline, residual, negative;
    for (int i = 0; i <= o.max_iter; ++i) {
        baseline = system.solve(weights, y);
        residuals(y, baseline, residual, negative);
        if (negative.size() < 2) break;  // pybaselines exits early (and warns)
        double sd = stddev(negative, 1);
        if (sd == 0) sd = kMinFloat;  // pybaselines _safe_std
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

Vec airpls_baseline(const Vec& y, const WhittakerOptions& o) {
    check_options(y, o);
    WhittakerSystem system(y.size(), o.lam, o.diff_order);
    Vec magnitude(y.size());
    for (size_t k = 0; k < y.size(); ++k) magnitude[k] = std::fabs(y[k]);
    const double y_l1_norm = sum(magnitude);
    const double log_max = std::log(std::numeric_limits<double>::max());
    const double inner_max = std::nextafter(log_max, 0.0);  // log_max - np.spacing(log_max)
    Vec weights(y.size(), 1.0), baseline, residual, negative;
    for (int i = 1; i <= o.max_iter + 1; ++i) {
        baseline = system.solve(weights, y);
        residuals(y, baseline, residual, negative);
        if (negative.size() < 2) break;  // pybaselines exits early (and warns)
        const double residual_l1_norm = sum(negative);
        const double scale = double(std::min(i, 50)) / residual_l1_norm;
        Vec next(y.size(), 0.0);
        double largest = 0.0;
        for (size_t k = 0; k < y.size(); ++k) {
            if (!(residual[k] < 0)) continue;
            next[k] = std::exp(std::clamp(scale * residual[k], 0.0, inner_max));
            largest = std::max(largest, next[k]);
        }
        if (o.normalize_weights)
            for (size_t k = 0; k < y.size(); ++k)
                if (residual[k] < 0) next[k] /= largest;
        if (std::fabs(residual_l1_norm) / y_l1_norm < o.tol) break;
        weights.swap(next);
    }
    return baseline;
}

Vec iarpls_baseline(const Vec& y, const WhittakerOptions& o) {
    check_options(y, o);
    WhittakerSystem system(y.size(), o.lam, o.diff_order);
    Vec weights(y.size(), 1.0), baseline, residual, negative;
    for (int i = 1; i <= o.max_iter + 1; ++i) {
        baseline = system.solve(weights, y);
        residuals(y, baseline, residual, negative);
        if (negative.size() < 2) break;  // pybaselines exits early (and warns)
        double sd = stddev(negative, 1);
        if (sd == 0) sd = kMinFloat;  // pybaselines _safe_std
        const double gain = std::exp(double(std::min(i, 100))) / sd;
        Vec next(y.size());
        for (size_t k = 0; k < y.size(); ++k) {
            const double inner = gain * (residual[k] - 2 * sd);
            next[k] = 0.5 * (1 - (inner / std::sqrt(1 + inner * inner)));
        }
        if (relative_difference(weights, next) < o.tol) break;
        weights.swap(next);
    }
    return baseline;
}

Vec psalsa_baseline(const Vec& y, const WhittakerOptions& o) {
    check_options(y, o);
    WhittakerSystem system(y.size(), o.lam, o.diff_order);
    const double k = o.k > 0 ? o.k : stddev(y) / 10;
    Vec weights(y.size(), 1.0), baseline;
    for (int i = 0; i <= o.max_iter; ++i) {
        baseline = system.solve(weights, y);
        Vec next(y.size(), 1.0 - o.p);
        for (size_t j = 0; j < y.size(); ++j) {
            const double residual = y[j] - baseline[j];
            if (residual > 0) next[j] = o.p * std::exp(-residual / k);
        }
        if (relative_difference(weights, next) < o.tol) break;
        weights.swap(next);
    }
    return baseline;
}

Vec drpls_baseline(const Vec& y, const WhittakerOptions& o) {
    check_options(y, o);
    if (o.diff_order < 2) throw DataError("baseline drpls needs diff_order >= 2");
    const size_t n = y.size();
    const Sparse smooth = penalty(n, o.diff_order, o.lam);  // lam D'D
    const auto size = static_cast<Eigen::Index>(n);
    Sparse identity(size, size);
    identity.setIdentity();
    const Sparse fixed = penalty(n, 1, 1.0) + smooth;   // D1'D1 + lam D'D
    const Sparse scaled = identity - o.eta * smooth;    // I - eta lam D'D, rows scaled by W
    Eigen::SparseLU<Sparse, Eigen::NaturalOrdering<int>> solver;
    Eigen::VectorXd w = Eigen::VectorXd::Ones(size);
    const Eigen::Map<const Eigen::VectorXd> data(y.data(), size);
    Vec weights(n, 1.0), baseline, residual, negative;
    for (int i = 1; i <= o.max_iter + 1; ++i) {
        Sparse system = fixed + Sparse(w.asDiagonal() * scaled);
        system.makeCompressed();
        if (i == 1) solver.analyzePattern(system);
        solver.factorize(system);
        if (solver.info() != Eigen::Success)
            throw DataError("baseline fit failed: the drpls system is singular");
        const Eigen::VectorXd z = solver.solve(Eigen::VectorXd(w.cwiseProduct(data)));
        baseline.assign(z.data(), z.data() + n);
        residuals(y, baseline, residual, negative);
        if (negative.size() < 2) break;  // pybaselines exits early (and warns)
        double sd = stddev(negative, 1);
        if (sd == 0) sd = kMinFloat;  // pybaselines _safe_std
        const double gain = std::exp(double(std::min(i, 100))) / sd;
        const double shift = 2 * sd - mean(negative);
        Vec next(n);
        for (size_t k = 0; k < n; ++k) {
            const double inner = gain * (residual[k] - shift);
            next[k] = 0.5 * (1 - (inner / (1 + std::fabs(inner))));
        }
        if (relative_difference(weights, next) < o.tol) break;
        weights.swap(next);
        w = Eigen::Map<const Eigen::VectorXd>(weights.data(), size);
    }
    return baseline;
}

Vec iasls_baseline(const Vec& y, const Vec& axis, const WhittakerOptions& o) {
    check_options(y, o);
    if (o.diff_order < 2) throw DataError("baseline iasls needs diff_order >= 2");
    const size_t n = y.size();
    const auto size = static_cast<Eigen::Index>(n);
    // Initial weights: asls's rule on a least-squares quadratic (pybaselines fits it on the
    // axis mapped to [-1, 1], np.polynomial's mapdomain).
    const double lo = axis.front(), hi = axis.back();
    const double offset = (-hi - lo) / (hi - lo), scale = 2.0 / (hi - lo);
    Eigen::MatrixXd vander(size, 3);
    for (Eigen::Index i = 0; i < size; ++i) {
        const double t = offset + scale * axis[size_t(i)];
        vander(i, 0) = 1.0;
        vander(i, 1) = t;
        vander(i, 2) = t * t;
    }
    const Eigen::Map<const Eigen::VectorXd> data(y.data(), size);
    const Eigen::VectorXd quadratic = vander * vander.completeOrthogonalDecomposition().solve(data);
    Vec weights(n);
    for (size_t k = 0; k < n; ++k) weights[k] = y[k] > quadratic[Eigen::Index(k)] ? o.p : 1.0 - o.p;
    // (W'W + lam_1 D1'D1 + lam D'D) z = W'W y + lam_1 D1'D1 y
    WhittakerSystem system(Sparse(penalty(n, o.diff_order, o.lam) + penalty(n, 1, o.lam_1)));
    Vec d1_y(n);
    d1_y[0] = o.lam_1 * (y[0] - y[1]);
    d1_y[n - 1] = o.lam_1 * (y[n - 1] - y[n - 2]);
    for (size_t k = 1; k + 1 < n; ++k) d1_y[k] = o.lam_1 * (2 * y[k] - y[k - 1] - y[k + 1]);
    Vec baseline, squared(n);
    for (int i = 0; i <= o.max_iter; ++i) {
        for (size_t k = 0; k < n; ++k) squared[k] = weights[k] * weights[k];
        baseline = system.solve(squared, y, &d1_y);
        Vec next(n);
        for (size_t k = 0; k < n; ++k) next[k] = y[k] > baseline[k] ? o.p : 1.0 - o.p;
        if (relative_difference(weights, next) < o.tol) break;
        weights.swap(next);
    }
    return baseline;
}

}  // namespace pace
