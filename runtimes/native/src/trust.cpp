#include "pace/trust.hpp"

#include <algorithm>
#include <cmath>

#include "pace/errors.hpp"
#include "pace/json.hpp"

namespace pace {

namespace {

constexpr double kMadToSigma = 0.6744897501960817 * 1.4142135623730951;

size_t longest_run_of_max(const Vec& x) {
    const double top = *std::max_element(x.begin(), x.end());
    size_t best = 0, run = 0;
    for (double v : x) {
        run = v == top ? run + 1 : 0;
        best = std::max(best, run);
    }
    return best;
}

}  // namespace

std::string Trust::physical_reason(const Vec& x) const {
    if (x.empty()) return "flat";
    const auto [lo, hi] = std::minmax_element(x.begin(), x.end());
    double largest = 0.0;
    for (double v : x) largest = std::max(largest, std::fabs(v));
    if (*hi - *lo <= 1e-12 * std::max(1.0, largest)) return "flat";
    if (longest_run_of_max(x) >= clip_run) return "saturated";
    const double m = mean(x);
    double ss = 0.0;
    for (double v : x) ss += (v - m) * (v - m);
    const double spread = std::sqrt(ss / double(x.size()));
    std::vector<double> diffs(x.size() - 1);
    for (size_t i = 1; i < x.size(); ++i) diffs[i - 1] = std::fabs(x[i] - x[i - 1]);
    const double noise = diffs.empty() ? 0.0 : median(std::move(diffs)) / kMadToSigma;
    const double snr = noise > 0 ? spread / noise : INFINITY;
    return snr < snr_min ? "low_signal" : "";
}

double Trust::score(const float* z) const {
    double best = INFINITY;
    for (size_t c = 0; c * dim < centers.size(); ++c) {
        double d2 = 0.0;
        for (size_t k = 0; k < dim; ++k) {
            const double d = double(z[k]) - centers[c * dim + k];
            d2 += d * d;
        }
        best = std::min(best, d2);
    }
    return best / double(dim);
}

Trust parse_trust(const Manifest& m) {
    Trust t;
    const Json* rec = json::find(m.raw, "trust");
    if (rec == nullptr || rec->is_null()) return t;
    const std::string where = m.directory + "/manifest.json: trust";
    try {
        if (const Json* v = json::find(*rec, "temperature")) t.temperature = json::number(*v, "temperature");
        if (!(t.temperature > 0)) throw BundleError(where + ": temperature must be positive");
        if (const Json* c = json::find(*rec, "checks"); c && c->is_object()) {
            if (const Json* v = json::find(*c, "snr_min")) t.snr_min = json::number(*v, "snr_min");
            if (const Json* v = json::find(*c, "clip_run")) t.clip_run = size_t(json::integer(*v, "clip_run"));
        }
        const Json* det = json::find(*rec, "detector");
        const Json* out = json::find(*rec, "features_output");
        if (det == nullptr || det->is_null() || out == nullptr || out->is_null()) return t;
        const std::string& method = json::string(json::at(*det, "method"), "detector.method");
        if (method != "mahalanobis") throw BundleError(where + ": unknown detector '" + method + "'");
        t.features_output = json::string(*out, "features_output");
        t.dim = size_t(json::integer(json::at(*det, "feature_dim"), "feature_dim"));
        t.threshold = json::number(json::at(*det, "threshold"), "threshold");
        for (const Json& row : json::array(json::at(*det, "centers"), "centers")) {
            const Json& values = json::array(row, "centers row");
            if (values.size() != t.dim) throw BundleError(where + ": a detector centre is not feature_dim long");
            for (const Json& v : values) t.centers.push_back(json::number(v, "centre"));
        }
        if (t.centers.size() != t.dim * m.num_classes)
            throw BundleError(where + ": the detector needs one centre per class");
        t.has_detector = true;
    } catch (const BundleError&) {
        throw;
    } catch (const Error& e) {
        throw BundleError(where + ": " + e.what());
    }
    return t;
}

std::vector<double> scaled_softmax(const std::vector<float>& logits, size_t rows, size_t classes,
                                   double temperature) {
    std::vector<double> out(rows * classes);
    for (size_t r = 0; r < rows; ++r) {
        const float* z = logits.data() + r * classes;
        double top = -INFINITY;
        for (size_t c = 0; c < classes; ++c) top = std::max(top, double(z[c]) / temperature);
        double total = 0.0;
        for (size_t c = 0; c < classes; ++c) total += out[r * classes + c] = std::exp(double(z[c]) / temperature - top);
        for (size_t c = 0; c < classes; ++c) out[r * classes + c] /= total;
    }
    return out;
}

}  // namespace pace
