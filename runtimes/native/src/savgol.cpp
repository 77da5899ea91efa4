// Savitzky–Golay filtering as scipy.signal.savgol_filter(mode="interp") computes it: the
// interior is the least-squares polynomial's value (or derivative) at each window's centre,
// the first/last window//2 outputs come from one polynomial fitted to the first/last window.
#include <cmath>
#include <vector>

#include "pace/preprocess.hpp"

namespace pace {

namespace {

// Weights w[t] (t = 0..window-1) such that sum_t w[t] * y[t] is the deriv-th derivative,
// at position `at`, of the degree-`order` least-squares polynomial through (t, y[t]).
// Positions are centred and scaled to [-1, 1]; the fit uses a QR factorisation.
Vec fit_weights(int window, int order, int deriv, double at) {
    const size_t n = size_t(window), m = size_t(order) + 1;
    const double c = (window - 1) / 2.0;
    const double s = window > 1 ? c : 1.0;
    std::vector<Vec> q(m, Vec(n));  // columns of V, V[t][k] = z_t^k, orthonormalised in place
    for (size_t t = 0; t < n; ++t) {
        const double z = (double(t) - c) / s;
        double p = 1.0;
        for (size_t k = 0; k < m; ++k, p *= z) q[k][t] = p;
    }
    // Modified Gram–Schmidt, each column orthogonalised twice: V = Q R.
    std::vector<Vec> r(m, Vec(m, 0.0));
    for (size_t k = 0; k < m; ++k) {
        Vec& v = q[k];
        for (int pass = 0; pass < 2; ++pass) {
            for (size_t j = 0; j < k; ++j) {
                double dot = 0.0;
                for (size_t t = 0; t < n; ++t) dot += q[j][t] * v[t];
                r[j][k] += dot;
                for (size_t t = 0; t < n; ++t) v[t] -= dot * q[j][t];
            }
        }
        double norm = 0.0;
        for (double e : v) norm += e * e;
        norm = std::sqrt(norm);
        r[k][k] = norm;
        for (double& e : v) e /= norm;
    }
    // e_k = d^deriv/dt^deriv of z^k at `at` (z = (t - c) / s).
    Vec e(m, 0.0);
    const double z = (at - c) / s;
    for (size_t k = size_t(deriv); k < m; ++k) {
        double f = 1.0;
        for (int i = 0; i < deriv; ++i) f *= double(int(k) - i);
        e[k] = f * std::pow(z, double(int(k) - deriv)) / std::pow(s, double(deriv));
    }
    // weights = Q R^-T e: solve R^T a = e (forward substitution), then Q a.
    Vec a(m);
    for (size_t k = 0; k < m; ++k) {
        double v = e[k];
        for (size_t j = 0; j < k; ++j) v -= r[j][k] * a[j];
        a[k] = v / r[k][k];
    }
    Vec w(n, 0.0);
    for (size_t k = 0; k < m; ++k)
        for (size_t t = 0; t < n; ++t) w[t] += q[k][t] * a[k];
    return w;
}

}  // namespace

Vec savgol(const Vec& x, int window, int polyorder, int deriv) {
    const size_t n = x.size(), w = size_t(window), half = w / 2;
    Vec out(n, 0.0);
    const Vec centre = fit_weights(window, polyorder, deriv, double(half));
    for (size_t i = half; i + half < n; ++i) {
        double acc = 0.0;
        for (size_t t = 0; t < w; ++t) acc += centre[t] * x[i - half + t];
        out[i] = acc;
    }
    for (size_t j = 0; j < half; ++j) {  // edges: one fit over the first / last window
        const Vec left = fit_weights(window, polyorder, deriv, double(j));
        const Vec right = fit_weights(window, polyorder, deriv, double(w - half + j));
        double l = 0.0, r = 0.0;
        for (size_t t = 0; t < w; ++t) {
            l += left[t] * x[t];
            r += right[t] * x[n - w + t];
        }
        out[j] = l;
        out[n - half + j] = r;
    }
    return out;
}

}  // namespace pace
