// Whether a prediction can be trusted (pace_edge.trust): physical checks on the raw spectrum,
// the "unknown" detector's score on the graph's whitened-features output, and the
// temperature that calibrates the probabilities. Read from the manifest's "trust" record.
#pragma once

#include <string>
#include <vector>

#include "pace/manifest.hpp"
#include "pace/numeric.hpp"

namespace pace {

struct Trust {
    double temperature = 1.0;
    double snr_min = 3.0;   // low_signal below this spread / pixel noise
    size_t clip_run = 3;    // saturated: this many pixels share the maximum
    bool has_detector = false;
    std::string features_output;  // the graph output holding the whitened features
    size_t dim = 0;
    std::vector<double> centers;  // classes × dim, row-major, whitened space
    double threshold = 0.0;       // accepted when score <= threshold

    // The first failed physical check of a raw spectrum ("flat", "saturated", "low_signal"),
    // or "" when all pass (pace_edge.trust.checks.PhysicalChecks.reasons).
    std::string physical_reason(const Vec& raw) const;
    // min over classes of ||z − centre||² / dim (pace_edge.trust.ood.nearest_center_score).
    double score(const float* z) const;
};

// The manifest's "trust" record; an export without one gets no detector, temperature 1 and
// the default physical checks. BundleError for a malformed record.
Trust parse_trust(const Manifest& manifest);

// Row-wise softmax of logits / temperature in float64.
std::vector<double> scaled_softmax(const std::vector<float>& logits, size_t rows, size_t classes,
                                   double temperature);

}  // namespace pace
