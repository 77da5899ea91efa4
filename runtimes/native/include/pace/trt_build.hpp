// `pace-stream --build-engine` (TensorRT builds only): build, check and list an export's plan.
#pragma once

#include <string>

#include "pace/signature.hpp"

namespace pace {

// Build the plan of the export in `export_dir` with TensorRT's C++ API (`precision` "" keeps
// the export's), run it on the engine-check spectra, compare with ONNX Runtime's saved logits
// and, within tolerance, write model.plan and its record engine.json beside the manifest (which
// is never rewritten); Error otherwise (the plan kept as model.plan.rejected, its check in
// engine.rejected.json). With `trusted`, only from an export signed by one of those keys.
// Returns 0.
int build_checked_plan(const std::string& export_dir, const std::string& precision = "",
                       const TrustedKeys* trusted = nullptr);

}  // namespace pace
