// `pace-stream --build-engine` (TensorRT builds only): build, check and list an export's plan.
#pragma once

#include <string>

namespace pace {

// Build the plan of the export in `export_dir` with TensorRT's C++ API (`precision` "" keeps
// the export's), run it on the engine-check spectra, compare with ONNX Runtime's saved logits
// and, within tolerance, write model.plan and list it in the manifest; Error otherwise (the
// check recorded, the plan kept as model.plan.rejected). Returns 0.
int build_checked_plan(const std::string& export_dir, const std::string& precision = "");

}  // namespace pace
