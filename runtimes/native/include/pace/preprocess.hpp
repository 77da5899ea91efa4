// The export manifest's preprocessing steps, computed as pace_edge.preprocess does, operation
// for operation (numpy's pairwise sums, np.interp's formula, LAPACK's banded Cholesky): crop,
// resample, normalize and despike are bit-exact or within a few ulp, savgol within ~1e-12
// relative; the Whittaker baselines (ill-conditioned for large lam) within ~1e-8 of the
// spectrum's scale.
//
// Steps: crop, resample, savgol, baseline (pybaselines asls and arpls only), normalize
// (minmax, vector, snv, area, max), despike. Any other step or baseline method is refused
// when the pipeline is built, with an error naming it.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "pace/json.hpp"
#include "pace/numeric.hpp"

namespace pace {

// -- the steps as functions (one spectrum at a time) --------------------------------------

// interp_rows(): np.interp formula, edge values held, coinciding nodes copied exactly.
Vec interp(const Vec& target, const Vec& axis, const Vec& x);
// Resample's range check: the target may overhang the axis by half an end step.
void check_resample_range(const Vec& target, const Vec& axis);

// scipy.signal.savgol_filter(x, window, polyorder, deriv, mode="interp").
Vec savgol(const Vec& x, int window, int polyorder, int deriv);

enum class NormalizeMethod { MinMax, Vector, Snv, Area, Max };
NormalizeMethod normalize_method(const std::string& name);
Vec normalize(const Vec& x, const Vec& axis, NormalizeMethod method);

// Whittaker-smoothing baselines as pybaselines.Baseline(...).asls / .arpls compute them.
struct WhittakerOptions {
    double lam = 1e6;
    double p = 1e-2;  // asls only
    int diff_order = 2;
    int max_iter = 50;
    double tol = 1e-3;
};
Vec asls_baseline(const Vec& y, const WhittakerOptions& options);
Vec arpls_baseline(const Vec& y, const WhittakerOptions& options);
// The baseline methods this runtime computes; others are refused by name.
const std::vector<std::string>& supported_baselines();

// Whitaker–Hayes despiking with the narrowness check (pace_edge.preprocess.despike).
std::vector<bool> spike_mask(const Vec& x, double threshold, int window);
Vec despike(const Vec& x, double threshold, int window);

// -- the pipeline --------------------------------------------------------------------------

struct Step {
    std::string name;
    std::function<void(Vec& x, Vec& axis)> apply;
};

class Pipeline {
public:
    // From the manifest's ``input.preprocessing`` list; Error naming what is unsupported.
    static Pipeline from_json(const json::Value& steps);

    // Preprocess one spectrum in place (x and axis replaced by the result); DataError if
    // the spectrum or its axis cannot be used (as Pipeline.apply raises DataError).
    void apply(Vec& x, Vec& axis) const;

    size_t size() const { return steps_.size(); }
    std::string describe() const;  // "resample → despike → baseline → normalize"

private:
    std::vector<Step> steps_;
};

}  // namespace pace
