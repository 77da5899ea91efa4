// The plan file `pace-edge build-engine` writes (pace_edge.export.trt_plan): a header in
// front of the serialized TensorRT engine, and the checks made before deserializing it.
//
//   "PACETRT\0" (8) | format version u32 LE | header length N u32 LE | N bytes UTF-8 JSON | engine
//
// Needs no TensorRT: the default build reads and checks plans too (and tests them).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "pace/manifest.hpp"

namespace pace {

constexpr int kPlanFormatVersion = 1;
constexpr const char* kPlanFile = "model.plan";

struct PlanHeader {
    std::string tensorrt_version;    // "10.3.0.30"
    std::string gpu_name;            // "Orin (nvgpu)", "NVIDIA H100 80GB HBM3"
    std::string compute_capability;  // "8.7"
    std::string precision;
    std::string source_onnx;         // relative to the export
    std::string source_onnx_sha256;
    std::string input_name = "spectrum";
    long long input_length = 0;
    std::string engine_sha256;
    long long engine_bytes = 0;
    long long min_batch = 0, opt_batch = 0, max_batch = 0;  // the optimisation profile
    std::vector<std::string> builder_flags;  // e.g. {"INT8", "FP16"}
    std::vector<std::string> cleared_flags;  // e.g. {"TF32"}
    long long workspace_mb = 0;
    std::string created;
};

struct Plan {
    PlanHeader header;
    std::vector<char> engine;
};

// Write `engine` behind `header` (its engine sha256 and size filled in here) to `path`, through
// a temporary file renamed into place; the same bytes pace_edge.export.trt_plan.write_plan writes.
void write_plan(const std::string& path, const std::vector<char>& engine, PlanHeader& header);

// Header and engine of a plan file, the engine checked against its size and sha256
// (BundleError for anything missing, corrupt or altered).
Plan read_plan(const std::string& path);

// The plan's source ONNX must be listed in the (verified) manifest with the same sha256.
void check_plan_source(const PlanHeader& header, const Manifest& manifest, const std::string& path);

// The plan must be built by this TensorRT (major.minor.patch) for this GPU (compute capability
// and name); Error naming every difference and the fix otherwise.
void check_plan_compatible(const PlanHeader& header, const std::string& tensorrt_version,
                           const std::string& gpu_name, const std::string& compute_capability);

}  // namespace pace
