// An export directory's manifest.json (pace_edge.export.manifest): checked against its digest
// (manifest.json.sha256) and optionally its Ed25519 signature, format-checked, and every
// listed artefact re-hashed; anything missing or altered is a BundleError.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pace/json.hpp"
#include "pace/signature.hpp"

namespace pace {

struct Artefact {
    std::string path;  // relative to the export directory
    std::string kind;  // "onnx", "openvino-xml", "openvino-bin", "tensorrt-plan", ...
    std::string precision;
    std::string sha256;
    long long bytes = 0;
};

struct FailedGate {
    std::string name;     // "parity", "accuracy", "sensitivity", ...
    std::string problem;  // one line, or empty
};

struct Manifest {
    std::string directory;
    std::string target;
    std::string precision;
    std::vector<Artefact> artefacts;
    std::string input_name;
    size_t input_length = 0;
    long long batch = 0;  // 0: dynamic
    std::vector<double> axis;
    Json preprocessing;  // the list of steps
    std::string output_name;
    size_t num_classes = 0;
    std::vector<std::string> classes;
    Json runtime = Json::object();  // settings runners must apply, per runtime
    Json raw;                       // the whole document
    // The quality gates the export records as failed (see failed_gates); empty: it passed.
    std::vector<FailedGate> failed_gates;
    // runtime["pace-stream"] (pace_edge.preprocess.native_support): whether this runtime
    // implements the preprocessing, else the first step it lacks and why. Exports written
    // before the record existed say nothing (true); Pipeline::from_json still refuses by name.
    bool native_preprocessing = true;
    std::string native_step, native_reason;

    // The first artefact of `kind`, or nullptr.
    const Artefact* find_artefact(const std::string& kind) const;
    // Absolute-ish path (directory/path) of the first artefact of `kind`; BundleError if none.
    std::string artefact_path(const std::string& kind) const;
};

constexpr const char* kManifestFile = "manifest.json";
constexpr const char* kManifestFormat = "pace-edge-export";
constexpr int kManifestFormatVersion = 1;

// Read `directory`/manifest.json once, check those bytes against manifest.json.sha256 and,
// with `trusted`, their signature (manifest.json.sig) by one of those keys; then parse and
// verify every artefact's sha256.
Manifest load_manifest(const std::string& directory, const TrustedKeys* trusted = nullptr);

// Check `data` (the bytes read from `path`) against `path`.sha256 (sha256sum format);
// BundleError when the digest file is missing (`missing_hint` says what to do), malformed,
// or records another sha256.
void verify_digest(const std::string& path, std::string_view data, const std::string& missing_hint);

// Write `path`.sha256 for its content `data` ("<sha256>  NAME\n", as sha256sum writes it).
void write_digest(const std::string& path, std::string_view data);

// Parse a manifest document (no file checks): for tests and tools.
Manifest parse_manifest(const std::string& text, const std::string& directory);

// The gates a manifest document records as failed and nobody accepted, as
// pace_edge.export.manifest.Manifest.failed_gates reads them: the names in
// status.failed_gates (with their status.problems line); for a manifest written before the
// status was recorded, "parity" when a parity row has "passed": false and "accuracy" when the
// accuracy gate has. pace-stream refuses such an export unless --allow-failed.
std::vector<FailedGate> failed_gates(const Json& manifest);

// BundleError naming the export, its failed gates and --allow-failed, when `m` records any
// (the message pace_edge.export.manifest.refuse_failed writes); nothing otherwise.
void refuse_failed_export(const Manifest& m);

// BundleError naming the step, when the manifest records that this runtime cannot run the
// export's preprocessing.
void refuse_unsupported_preprocessing(const Manifest& m);

}  // namespace pace
