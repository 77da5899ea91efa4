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

struct Manifest {
    std::string directory;
    std::string target;
    std::string precision;
    std::vector<Artefact> artefacts;
    std::string input_name;
    size_t input_length = 0;
    long long batch = 0;  // 0: dynamic
    std::vector<double> axis;
    json::Value preprocessing;
    std::string output_name;
    size_t num_classes = 0;
    std::vector<std::string> classes;
    json::Value runtime;  // settings runners must apply, per runtime
    json::Value raw;      // the whole document

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

}  // namespace pace
