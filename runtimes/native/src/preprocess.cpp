// Pipeline assembly from the manifest, plus the simple steps: crop, resample, normalize.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <set>

#include "pace/errors.hpp"
#include "pace/preprocess.hpp"

namespace pace {

namespace {

std::string g(double v) {  // Python's f"{v:g}"
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g", v);
    return buf;
}

std::string span(const Vec& axis) { return g(axis.front()) + ".." + g(axis.back()); }

}  // namespace

// -- resample ------------------------------------------------------------------------------

Vec interp(const Vec& target, const Vec& axis, const Vec& x) {
    const size_t n = axis.size();
    Vec out(target.size());
    for (size_t k = 0; k < target.size(); ++k) {
        const double t = target[k];
        long j = long(std::upper_bound(axis.begin(), axis.end(), t) - axis.begin()) - 1;
        j = std::clamp(j, 0L, long(n) - 2);
        const double left = x[size_t(j)], right = x[size_t(j) + 1];
        const double a0 = axis[size_t(j)], a1 = axis[size_t(j) + 1];
        const double slope = (right - left) / (a1 - a0);
        double v = slope * (t - a0) + left;
        if (t == a0 || t < axis.front()) v = left;
        if (t == a1 || t > axis.back()) v = right;
        out[k] = v;
    }
    return out;
}

void check_resample_range(const Vec& target, const Vec& axis) {
    const double slack = 1.0 + 1e-9;
    const size_t n = axis.size();
    const double below = 0.5 * (axis[1] - axis[0]) * slack;
    const double above = 0.5 * (axis[n - 1] - axis[n - 2]) * slack;
    if (target.front() < axis.front() - below || target.back() > axis.back() + above) {
        throw DataError("resample target axis " + span(target) + " extends beyond the data's axis " +
                        span(axis) + " by more than half a step");
    }
}

// -- normalize -----------------------------------------------------------------------------

NormalizeMethod normalize_method(const std::string& name) {
    if (name == "minmax") return NormalizeMethod::MinMax;
    if (name == "vector") return NormalizeMethod::Vector;
    if (name == "snv") return NormalizeMethod::Snv;
    if (name == "area") return NormalizeMethod::Area;
    if (name == "max") return NormalizeMethod::Max;
    throw Error("preprocessing step 'normalize': method must be one of minmax, vector, snv, "
                "area, max; got '" + name + "'");
}

Vec normalize(const Vec& x, const Vec& axis, NormalizeMethod method) {
    const size_t n = x.size();
    Vec num = x;
    double den = 0.0, scale = 0.0;
    for (double v : x) scale = std::max(scale, std::fabs(v));
    switch (method) {
        case NormalizeMethod::MinMax: {
            auto [lo, hi] = std::minmax_element(x.begin(), x.end());
            for (size_t i = 0; i < n; ++i) num[i] = x[i] - *lo;
            den = *hi - *lo;
            break;
        }
        case NormalizeMethod::Snv: {
            const double m = mean(x);
            for (size_t i = 0; i < n; ++i) num[i] = x[i] - m;
            den = stddev(x);
            break;
        }
        case NormalizeMethod::Vector: {
            Vec sq(n);
            for (size_t i = 0; i < n; ++i) sq[i] = x[i] * x[i];
            den = std::sqrt(sum(sq));
            break;
        }
        case NormalizeMethod::Area: {  // np.trapezoid(|x|, axis)
            Vec parts(n - 1);
            for (size_t i = 0; i + 1 < n; ++i)
                parts[i] = (axis[i + 1] - axis[i]) * (std::fabs(x[i + 1]) + std::fabs(x[i])) / 2.0;
            den = sum(parts);
            break;
        }
        case NormalizeMethod::Max: den = scale; break;
    }
    const bool ok = den > 1e-12 * scale;  // a zero denominator makes the row zeros, never NaN
    for (size_t i = 0; i < n; ++i) num[i] = ok ? num[i] / den : 0.0;
    return num;
}

// -- pipeline from the manifest ----------------------------------------------------------

namespace {

// A step's parameters: typed access that names the step, and a check for unknown keys.
class Params {
public:
    Params(const std::string& step, const json::Value& item) : step_(step), item_(item) {}

    const json::Value* get(const std::string& key) {
        used_.insert(key);
        return item_.find(key);
    }
    double number(const std::string& key, double fallback, bool required = false) {
        const json::Value* v = get(key);
        if (v == nullptr || v->is_null()) {
            if (required) fail("missing parameter " + key);
            return fallback;
        }
        if (!v->is_number() || !std::isfinite(v->as_number()))
            fail(key + " must be a finite number");
        return v->as_number();
    }
    int integer(const std::string& key, int fallback, int minimum, bool required = false) {
        const json::Value* v = get(key);
        if (v == nullptr || v->is_null()) {
            if (required) fail("missing parameter " + key);
            return fallback;
        }
        long long i = 0;
        try {
            i = v->as_integer(key);
        } catch (const JsonError&) {
            fail(key + " must be an integer");
        }
        if (i < minimum || i > 1000000) fail(key + " must be >= " + std::to_string(minimum));
        return int(i);
    }
    std::string string(const std::string& key, const std::string& fallback) {
        const json::Value* v = get(key);
        if (v == nullptr) return fallback;
        if (!v->is_string()) fail(key + " must be a string");
        return v->as_string();
    }
    void finish(const std::string& hint = "") {
        for (const auto& [key, value] : item_.as_object())
            if (key != "name" && !used_.count(key)) fail("unknown parameter " + key + hint);
    }
    [[noreturn]] void fail(const std::string& what) const {
        throw Error("preprocessing step '" + step_ + "': " + what);
    }

private:
    std::string step_;
    const json::Value& item_;
    std::set<std::string> used_;
};

Vec number_list(Params& p, const json::Value& v, const std::string& key) {
    if (!v.is_array()) p.fail(key + " must be a list of numbers");
    Vec out;
    for (const auto& e : v.as_array()) {
        if (!e.is_number() || !std::isfinite(e.as_number())) p.fail(key + " must hold finite numbers");
        out.push_back(e.as_number());
    }
    if (out.size() < 2) p.fail(key + " needs at least 2 points");
    for (size_t i = 1; i < out.size(); ++i)
        if (!(out[i] > out[i - 1])) p.fail(key + " must be strictly increasing");
    return out;
}

Step crop_step(Params& p) {
    const double lo = p.number("lo", 0, true), hi = p.number("hi", 0, true);
    if (lo >= hi) p.fail("lo (" + g(lo) + ") must be below hi (" + g(hi) + ")");
    return {"crop", [lo, hi](Vec& x, Vec& axis) {
                Vec nx, na;
                for (size_t i = 0; i < axis.size(); ++i) {
                    if (axis[i] >= lo && axis[i] <= hi) {
                        nx.push_back(x[i]);
                        na.push_back(axis[i]);
                    }
                }
                if (na.size() < 2) {
                    throw DataError("crop " + g(lo) + ".." + g(hi) + " keeps " +
                                    std::to_string(na.size()) + " point(s) of the data's axis " +
                                    span(axis) + "; need at least 2");
                }
                x.swap(nx);
                axis.swap(na);
            }};
}

Step resample_step(Params& p) {
    Vec target;
    const json::Value* axis = p.get("axis");
    const json::Value* start = p.get("start");
    const json::Value* stop = p.get("stop");
    const json::Value* num = p.get("num");
    const bool grid = (start && !start->is_null()) || (stop && !stop->is_null()) ||
                      (num && !num->is_null());
    if (axis != nullptr && !axis->is_null()) {
        if (grid) p.fail("give either axis or start, stop, num, not both");
        target = number_list(p, *axis, "axis");
    } else {
        const double a = p.number("start", 0, true), b = p.number("stop", 0, true);
        target = linspace(a, b, size_t(p.integer("num", 0, 2, true)));
    }
    return {"resample", [target](Vec& x, Vec& axis) {
                check_resample_range(target, axis);
                x = interp(target, axis, x);
                axis = target;
            }};
}

Step savgol_step(Params& p) {
    const int window = p.integer("window", 0, 1, true);
    const int polyorder = p.integer("polyorder", 0, 0, true);
    const int deriv = p.integer("deriv", 0, 0);
    if (window % 2 == 0) p.fail("window must be odd, got " + std::to_string(window));
    if (polyorder >= window) p.fail("polyorder must be below window");
    if (deriv > polyorder) p.fail("deriv must not exceed polyorder");
    return {"savgol", [=](Vec& x, Vec&) {
                if (size_t(window) > x.size()) {
                    throw DataError("savgol window " + std::to_string(window) +
                                    " is longer than the spectra (" + std::to_string(x.size()) +
                                    " points)");
                }
                x = savgol(x, window, polyorder, deriv);
            }};
}

Step baseline_step(Params& p) {
    const std::string method = p.string("method", "asls");
    const auto& ok = supported_baselines();
    if (std::find(ok.begin(), ok.end(), method) == ok.end()) {
        p.fail("baseline method '" + method +
               "' is not implemented in the native runtime (it computes asls and arpls); "
               "use the Python runtime (pace-edge stream) or retrain with baseline:asls or "
               "baseline:arpls");
    }
    WhittakerOptions o;
    if (method == "arpls") o.lam = 1e5;
    const json::Value* options = p.get("options");
    if (options != nullptr && !options->is_null()) {
        if (!options->is_object()) p.fail("options must be an object");
        Params q("baseline:" + method, *options);
        o.lam = q.number("lam", o.lam);
        if (method == "asls") o.p = q.number("p", o.p);
        o.diff_order = q.integer("diff_order", o.diff_order, 1);
        o.max_iter = q.integer("max_iter", o.max_iter, 0);
        o.tol = q.number("tol", o.tol);
        const json::Value* weights = q.get("weights");
        if (weights != nullptr && !weights->is_null())
            q.fail("initial weights are not supported by the native runtime");
        q.finish(std::string(" (the native runtime supports lam, ") +
                 (method == "asls" ? "p, " : "") + "diff_order, max_iter, tol)");
        if (!(o.lam > 0)) q.fail("lam must be positive");
        if (method == "asls" && !(o.p > 0 && o.p < 1)) q.fail("p must be between 0 and 1");
    }
    if (method == "asls")
        return {"baseline", [o](Vec& x, Vec&) {
                    Vec b = asls_baseline(x, o);
                    for (size_t i = 0; i < x.size(); ++i) x[i] -= b[i];
                }};
    return {"baseline", [o](Vec& x, Vec&) {
                Vec b = arpls_baseline(x, o);
                for (size_t i = 0; i < x.size(); ++i) x[i] -= b[i];
            }};
}

Step normalize_step(Params& p) {
    const NormalizeMethod m = normalize_method(p.string("method", "snv"));
    return {"normalize", [m](Vec& x, Vec& axis) { x = normalize(x, axis, m); }};
}

Step despike_step(Params& p) {
    const double threshold = p.number("threshold", 6.0);
    const int window = p.integer("window", 3, 1);
    if (!(threshold > 0)) p.fail("threshold must be positive, got " + g(threshold));
    return {"despike", [=](Vec& x, Vec&) { x = despike(x, threshold, window); }};
}

void check_axis(const Vec& axis, size_t length) {
    if (axis.size() != length) {
        throw DataError("axis has " + std::to_string(axis.size()) + " points but spectra have " +
                        std::to_string(length));
    }
    if (length < 2) throw DataError("spectra need at least 2 points, got " + std::to_string(length));
    for (double a : axis)
        if (!std::isfinite(a)) throw DataError("axis contains NaN or inf");
    for (size_t j = 0; j + 1 < length; ++j) {
        if (!(axis[j + 1] > axis[j])) {
            throw DataError("axis is not strictly increasing at point " + std::to_string(j + 1) +
                            " (" + g(axis[j]) + " then " + g(axis[j + 1]) + ")");
        }
    }
}

}  // namespace

Pipeline Pipeline::from_json(const json::Value& steps) {
    if (!steps.is_array()) throw Error("preprocessing must be a list of steps");
    Pipeline out;
    for (const auto& item : steps.as_array()) {
        if (!item.is_object() || item.find("name") == nullptr || !item.at("name").is_string())
            throw Error("a preprocessing step must be an object with a 'name'");
        const std::string name = item.at("name").as_string();
        Params p(name, item);
        Step step;
        if (name == "crop") step = crop_step(p);
        else if (name == "resample") step = resample_step(p);
        else if (name == "savgol") step = savgol_step(p);
        else if (name == "baseline") step = baseline_step(p);
        else if (name == "normalize") step = normalize_step(p);
        else if (name == "despike") step = despike_step(p);
        else
            throw Error("unknown preprocessing step '" + name +
                        "'; the native runtime knows crop, resample, savgol, baseline, "
                        "normalize, despike");
        p.finish();
        out.steps_.push_back(std::move(step));
    }
    return out;
}

void Pipeline::apply(Vec& x, Vec& axis) const {
    check_axis(axis, x.size());
    for (size_t j = 0; j < x.size(); ++j) {
        if (!std::isfinite(x[j])) {
            char buf[64];
            std::snprintf(buf, sizeof buf, "%s", std::isnan(x[j]) ? "nan" : (x[j] > 0 ? "inf" : "-inf"));
            throw DataError(std::string("spectrum: non-finite intensity ") + buf + " at x=" +
                            g(axis[j]));
        }
    }
    for (const Step& step : steps_) step.apply(x, axis);
}

std::string Pipeline::describe() const {
    std::string out;
    for (const Step& s : steps_) out += (out.empty() ? "" : " → ") + s.name;
    return out.empty() ? "none" : out;
}

}  // namespace pace
