// engine.json: the device-local record of the TensorRT plan built beside an export
// (pace_edge.export.engine_record). The builders never rewrite the export's manifest.json (nor
// so unsign it): they write model.plan and this record, covered by its own digest
// engine.json.sha256. A runner accepts the plan only when the record matches its digest and the
// plan file the sha256 it records (else BundleError: edited or swapped), the plan's source ONNX
// is listed by the verified (and, with trusted keys, signed) manifest with the same sha256, and
// its engine check passed (else the plan is stale or unchecked: plan_problem says why). Needs
// no TensorRT: the default build reads, checks and tests records too.
#pragma once

#include <optional>
#include <string>

#include "pace/json.hpp"
#include "pace/manifest.hpp"

namespace pace {

constexpr const char* kEngineFile = "engine.json";
constexpr const char* kRejectedEngineFile = "engine.rejected.json";
constexpr const char* kEngineFormat = "pace-edge-engine";
constexpr int kEngineFormatVersion = 1;

struct EngineRecord {
    std::string plan;  // relative to the export directory
    std::string plan_sha256;
    long long plan_bytes = 0;
    std::string source_onnx;
    std::string source_onnx_sha256;
    std::string precision;
    std::string tensorrt_version;
    std::string gpu_name;
    std::string compute_capability;
    bool check_passed = false;
    json::Value doc;  // the whole record
};

// The record `name` beside the export, checked against its digest; nullopt when none was
// written; BundleError when it was edited or is malformed.
std::optional<EngineRecord> read_engine_record(const Manifest& manifest,
                                               const std::string& name = kEngineFile);

// The export's device-built plan: its record with the plan file's sha256 and size checked;
// nullopt when none was built; BundleError when the record was edited or the plan swapped.
std::optional<EngineRecord> device_plan(const Manifest& manifest);

// Why the plan of `record` may not run the export (source ONNX not listed by the verified
// manifest with the same sha256, or no passed engine check), or "" when it may.
std::string plan_problem(const Manifest& manifest, const EngineRecord& record);

// "directory/plan": the path of the record's plan.
std::string plan_path(const Manifest& manifest, const EngineRecord& record);

// Write `record` (a JSON object) as `name` beside the export, with its digest.
void write_engine_record(const Manifest& manifest, const json::Value& record,
                         const std::string& name = kEngineFile);

// Remove `name` and its digest beside the export (before a new plan replaces the old one).
void remove_engine_record(const Manifest& manifest, const std::string& name = kEngineFile);

}  // namespace pace
