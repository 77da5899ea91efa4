// manifest.json: checked against its digest, read, format-checked, artefacts re-hashed;
// edited, tampered, missing, escaping and malformed exports are refused with a BundleError that
// says what is wrong.
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>

#include "check.hpp"
#include "pace/engine_record.hpp"
#include "pace/errors.hpp"
#include "pace/hash.hpp"
#include "pace/manifest.hpp"
#include "pace/trt_plan.hpp"

using pace::BundleError;

namespace {

std::string temp_dir() {
    char templ[] = "/tmp/pace-manifest-XXXXXX";
    const char* dir = ::mkdtemp(templ);
    if (dir == nullptr) throw std::runtime_error("mkdtemp failed");
    return dir;
}

void write(const std::string& path, const std::string& text) {
    std::ofstream(path, std::ios::binary) << text;
}

// manifest.json and its digest, as pace_edge.export.manifest.write_manifest writes them.
void write_manifest(const std::string& dir, const std::string& text) {
    write(dir + "/manifest.json", text);
    write(dir + "/manifest.json.sha256", pace::sha256_hex(text) + "  manifest.json\n");
}

void replace(std::string& text, const std::string& from, const std::string& to) {
    const size_t at = text.find(from);
    if (at == std::string::npos) throw std::runtime_error("test text lacks " + from);
    text.replace(at, from.size(), to);
}

std::string manifest_text(const std::string& sha, const std::string& path = "model.bin",
                          const std::string& extra = "") {
    return R"({"format": "pace-edge-export", "format_version": 1, "target": "openvino",
      "precision": "fp32",
      "artefacts": [{"path": ")" + path + R"(", "kind": "openvino-bin", "precision": "fp32",
                     "sha256": ")" + sha + R"(", "bytes": 5}],
      "input": {"name": "spectrum", "length": 3, "batch": "dynamic", "axis": [1.0, 2.0, 3.0],
                "preprocessing": [{"name": "normalize", "method": "snv"}], "dtype": "float32"},
      "output": {"name": "logits", "classes": 2, "dtype": "float32", "kind": "logits"},
      "classes": ["a", "b"], "source": {}, "opset": 20,
      "runtime": {"openvino": {"device": "CPU", "config": {"INFERENCE_PRECISION_HINT": "f32"}}})" +
           extra + "}";
}

struct Export {
    std::string dir = temp_dir();
    Export() {
        write(dir + "/model.bin", "hello");
        write_manifest(dir, manifest_text(pace::sha256_hex("hello")));
    }
    ~Export() { std::system(("rm -rf '" + dir + "'").c_str()); }
};

}  // namespace

TEST(a_good_export_loads) {
    Export e;
    const pace::Manifest m = pace::load_manifest(e.dir);
    CHECK(m.target == "openvino" && m.precision == "fp32");
    CHECK(m.input_length == 3 && m.batch == 0 && m.axis.size() == 3 && m.num_classes == 2);
    CHECK(m.classes[1] == "b" && m.input_name == "spectrum" && m.output_name == "logits");
    CHECK(m.artefact_path("openvino-bin") == e.dir + "/model.bin");
    CHECK_THROWS(m.artefact_path("onnx"), BundleError, "export has no onnx artefact (it has: openvino-bin)");
    CHECK(m.runtime.at("openvino").at("config").at("INFERENCE_PRECISION_HINT").as_string() == "f32");
    CHECK(!pace::device_plan(m));
}

TEST(a_tampered_artefact_is_refused) {
    Export e;
    write(e.dir + "/model.bin", "hellO");
    CHECK_THROWS(pace::load_manifest(e.dir), BundleError,
                 "does not match the manifest (" + pace::sha256_hex("hello").substr(0, 12) +
                     "…): the file was altered or replaced");
}

TEST(missing_and_escaping_artefacts_are_refused) {
    Export e;
    ::unlink((e.dir + "/model.bin").c_str());
    CHECK_THROWS(pace::load_manifest(e.dir), BundleError, "artefact model.bin listed in the manifest is missing");
    write_manifest(e.dir, manifest_text("00", "../model.bin"));
    CHECK_THROWS(pace::load_manifest(e.dir), BundleError, "artefact path '../model.bin' leaves the export");
    write_manifest(e.dir, manifest_text("00", "/etc/passwd"));
    CHECK_THROWS(pace::load_manifest(e.dir), BundleError, "leaves the export");
}

TEST(wrong_or_missing_manifests_are_refused) {
    Export e;
    CHECK_THROWS(pace::load_manifest(e.dir + "/nope"), BundleError, "not an export directory (manifest.json is missing)");
    write_manifest(e.dir, "{\"format\": ");
    CHECK_THROWS(pace::load_manifest(e.dir), BundleError, "manifest.json: not valid JSON");
    write_manifest(e.dir, R"({"format": "something-else"})");
    CHECK_THROWS(pace::load_manifest(e.dir), BundleError, "not a pace-edge export manifest");
    write_manifest(e.dir, R"({"format": "pace-edge-export", "format_version": 2})");
    CHECK_THROWS(pace::load_manifest(e.dir), BundleError, "export format 2 is newer than this runtime understands (1)");
    write_manifest(e.dir, R"({"format": "pace-edge-export", "format_version": 1, "target": "x"})");
    CHECK_THROWS(pace::load_manifest(e.dir), BundleError, "malformed manifest (missing field 'precision')");
    std::string text = manifest_text(pace::sha256_hex("hello"));
    text.replace(text.find("\"classes\": 2"), 12, "\"classes\": 3");
    write_manifest(e.dir, text);
    CHECK_THROWS(pace::load_manifest(e.dir), BundleError, "output classes 3 does not match the 2 class names");
}

TEST(edited_metadata_is_refused) {
    // A class name, the axis, a preprocessing step, a runtime setting: each edit is refused
    // like an edited weight file, and the message names the digest file.
    const std::string good = manifest_text(pace::sha256_hex("hello"));
    for (auto [from, to] : {std::pair<std::string, std::string>{"\"b\"]", "\"B\"]"},
                            {"[1.0, 2.0, 3.0]", "[1.0, 2.0, 3.5]"},
                            {"\"snv\"", "\"minmax\""},
                            {"\"f32\"", "\"f16\""}}) {
        Export e;
        std::string edited = good;
        replace(edited, from, to);
        write(e.dir + "/manifest.json", edited);
        CHECK_THROWS(pace::load_manifest(e.dir), BundleError,
                     "/manifest.json: sha256 " + pace::sha256_hex(edited).substr(0, 12) +
                         "… does not match manifest.json.sha256 (" + pace::sha256_hex(good).substr(0, 12) +
                         "…): manifest.json was edited after it was written");
    }
}

TEST(a_manifest_without_its_digest_is_refused) {
    Export e;
    ::unlink((e.dir + "/manifest.json.sha256").c_str());
    CHECK_THROWS(pace::load_manifest(e.dir), BundleError,
                 "manifest.json.sha256 is missing: manifest.json is not covered by a digest; exports "
                 "written by earlier pace-edge versions lack it; re-export the bundle with pace-edge export");
    write(e.dir + "/manifest.json.sha256", "not-a-digest  manifest.json\n");
    CHECK_THROWS(pace::load_manifest(e.dir), BundleError, "malformed digest");
    write(e.dir + "/manifest.json.sha256",
          pace::sha256_hex(manifest_text(pace::sha256_hex("hello"))) + "  other.json\n");
    CHECK_THROWS(pace::load_manifest(e.dir), BundleError, "digest of 'other.json', not of manifest.json");
    // sha256sum's binary-mode marker is accepted
    write(e.dir + "/manifest.json.sha256",
          pace::sha256_hex(manifest_text(pace::sha256_hex("hello"))) + " *manifest.json\n");
    CHECK(pace::load_manifest(e.dir).classes.size() == 2);
}

TEST(strict_json_nulls_are_read) {
    // pace-edge writes strict JSON: a non-finite figure (a broken artefact's parity) is null.
    Export e;
    write_manifest(e.dir, manifest_text(pace::sha256_hex("hello"), "model.bin",
                                        R"(, "parity": [{"artefact": "model.bin", "max_abs_diff": null,
                                              "agreement": null, "passed": false}],
                                            "calibration": null, "accuracy": null)"));
    const pace::Manifest m = pace::load_manifest(e.dir);
    CHECK(m.raw.at("parity").as_array()[0].at("max_abs_diff").is_null());
    CHECK(m.raw.at("calibration").is_null() && m.num_classes == 2);
}

TEST(plan_files_are_found_and_checked) {
    Export e;
    // A plan in pace_edge.export.trt_plan's layout, with a fake engine.
    const std::string engine = "not really an engine";
    const std::string header = R"x({"compute_capability": "8.7", "engine_bytes": 20, "engine_sha256": ")x" +
                               pace::sha256_hex(engine) +
                               R"x(", "gpu_name": "Orin (nvgpu)", "input_length": 3, "input_name": "spectrum",
        "precision": "fp16", "source_onnx": "model.bin", "source_onnx_sha256": ")x" +
                               pace::sha256_hex("hello") + R"x(", "tensorrt_version": "10.3.0.30"})x";
    std::string blob = std::string("PACETRT") + '\0';
    for (std::uint32_t v : {std::uint32_t(1), std::uint32_t(header.size())})
        for (int i = 0; i < 4; ++i) blob += char((v >> (8 * i)) & 0xFF);
    write(e.dir + "/model.plan", blob + header + engine);
    const pace::Manifest m = pace::load_manifest(e.dir);
    CHECK(!pace::device_plan(m));  // no engine.json records it (unchecked): never run
    const pace::Plan plan = pace::read_plan(e.dir + "/model.plan");
    CHECK(plan.header.precision == "fp16" && plan.header.gpu_name == "Orin (nvgpu)");
    CHECK(std::string(plan.engine.begin(), plan.engine.end()) == engine);
    pace::check_plan_source(plan.header, m, "model.plan");
    pace::check_plan_compatible(plan.header, "10.3.0", "Orin (nvgpu)", "8.7");  // build number ignored
    CHECK_THROWS(pace::check_plan_compatible(plan.header, "10.4.1", "NVIDIA H100", "9.0"), pace::Error,
                 "built with TensorRT 10.3.0.30, running 10.4.1; built for compute capability 8.7, this GPU "
                 "is 9.0; built on 'Orin (nvgpu)', this GPU is 'NVIDIA H100'");
    write(e.dir + "/model.plan", blob + header + "not really an enginE");
    CHECK_THROWS(pace::read_plan(e.dir + "/model.plan"), BundleError, "engine sha256 does not match its header");
    write(e.dir + "/model.plan", blob + header + "short");
    CHECK_THROWS(pace::read_plan(e.dir + "/model.plan"), BundleError, "engine is 5 bytes, header says 20");
    write(e.dir + "/model.plan", "raw engine bytes from trtexec");
    CHECK_THROWS(pace::read_plan(e.dir + "/model.plan"), BundleError, "not a pace-edge TensorRT plan");
}

TEST_MAIN()
