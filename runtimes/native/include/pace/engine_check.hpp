// The engine check of pace_edge.export.trt_verify, for `pace-stream --build-engine`: the plan's
// logits on the export's engine-check spectra against ONNX Runtime's (saved at export time, as
// raw little-endian float32, hashed by the manifest), with the per-precision tolerance the
// manifest records, and the record (engine.json) of a plan that passes, beside the manifest. Needs no TensorRT,
// so the default build compiles and tests it.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "pace/manifest.hpp"
#include "pace/trt_plan.hpp"

namespace pace {

// What to build: as `pace-edge build-engine` decides it (cli/build_engine.plan_request).
struct PlanRequest {
    std::string source;     // the ONNX file, relative to the export
    std::string precision;  // "fp32", "fp16" or "int8" (INT8 from the Q/DQ model, FP16 fallback)
    bool fp16 = false;
    bool int8 = false;
    long long min_batch = 1, opt_batch = 8, max_batch = 64;
    long long workspace_mb = 1024;
};

// `precision` overrides the export's ("" keeps it); BundleError/Error when the export has no
// TensorRT settings or no ONNX file for that precision.
PlanRequest plan_request(const Manifest& manifest, const std::string& precision = "");

struct Tolerance {
    std::optional<double> max_abs;  // nullopt: |Δlogit| not limited
    double min_agreement = 1.0;
};

// The manifest's tolerance for `precision` (runtime.tensorrt.engine_check.tolerances).
Tolerance tolerance_for(const Manifest& manifest, const std::string& precision);

struct CheckData {
    std::string source;
    size_t count = 0, length = 0, classes = 0;
    std::vector<float> spectra;    // count × length
    std::vector<float> reference;  // count × classes: ONNX Runtime's logits of `source`
    std::string reference_runtime;
};

// The spectra and reference logits for `source`; BundleError when absent or of the wrong size.
CheckData load_check_data(const Manifest& manifest, const std::string& source);

struct CheckResult {
    size_t samples = 0;
    double max_abs_diff = 0, mean_abs_diff = 0, agreement = 0;
    Tolerance tolerance;
    bool passed = false;
};

// Compare `candidate` with `reference` (rows × classes): top-1 agreement, max and mean
// |Δlogit|; any non-finite candidate fails.
CheckResult compare_logits(const std::vector<float>& reference, const std::vector<float>& candidate,
                           size_t classes, const Tolerance& tolerance);

// "max |Δlogit| 0.0012 (limit 0.001), top-1 agreement 100.00 % (need 99.00 %) over 256 spectra"
std::string describe(const CheckResult& result);

// The record (engine.json, pace/engine_record.hpp) of the plan file `plan` (relative to the
// export; hashed here) built as `header` says, with its engine check.
json::Value engine_record(const Manifest& manifest, const PlanHeader& header, const std::string& plan,
                          const CheckResult& result, const CheckData& data, const std::string& builder);

// Install the checked plan at `staged` (a file beside the manifest), never touching
// manifest.json or its signature: within tolerance it becomes model.plan with its record
// engine.json (the old record removed first); otherwise it is kept as model.plan.rejected with
// engine.rejected.json, a previous plan stays as it was, and Error says so. Returns the plan's path.
std::string install_plan(const Manifest& manifest, const std::string& staged, const PlanHeader& header,
                         const CheckResult& result, const CheckData& data, const std::string& builder);

}  // namespace pace
