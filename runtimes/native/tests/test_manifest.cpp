// manifest.json: checked against its digest, read, format-checked, artefacts re-hashed;
// edited, tampered, missing, escaping and malformed exports are refused with a BundleError that
// says what is wrong.
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <string>

#include "checks.hpp"
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

TEST_CASE("a good export loads") {
    Export e;
    const pace::Manifest m = pace::load_manifest(e.dir);
    CHECK((m.target == "openvino" && m.precision == "fp32"));
    CHECK((m.input_length == 3 && m.batch == 0 && m.axis.size() == 3 && m.num_classes == 2));
    CHECK((m.classes[1] == "b" && m.input_name == "spectrum" && m.output_name == "logits"));
    CHECK(m.artefact_path("openvino-bin") == e.dir + "/model.bin");
    CHECK_THROWS_CONTAINING(m.artefact_path("onnx"), BundleError, "export has no onnx artefact (it has: openvino-bin)");
    CHECK(m.runtime.at("openvino").at("config").at("INFERENCE_PRECISION_HINT") == "f32");
    CHECK(!pace::device_plan(m));
}

TEST_CASE("a tampered artefact is refused") {
    Export e;
    write(e.dir + "/model.bin", "hellO");
    CHECK_THROWS_CONTAINING(pace::load_manifest(e.dir), BundleError,
                 "does not match the manifest (" + pace::sha256_hex("hello").substr(0, 12) +
                     "…): the file was altered or replaced");
}

TEST_CASE("missing and escaping artefacts are refused") {
    Export e;
    ::unlink((e.dir + "/model.bin").c_str());
    CHECK_THROWS_CONTAINING(pace::load_manifest(e.dir), BundleError, "artefact model.bin listed in the manifest is missing");
    write_manifest(e.dir, manifest_text("00", "../model.bin"));
    CHECK_THROWS_CONTAINING(pace::load_manifest(e.dir), BundleError, "artefact path '../model.bin' leaves the export");
    write_manifest(e.dir, manifest_text("00", "/etc/passwd"));
    CHECK_THROWS_CONTAINING(pace::load_manifest(e.dir), BundleError, "leaves the export");
}

TEST_CASE("wrong or missing manifests are refused") {
    Export e;
    CHECK_THROWS_CONTAINING(pace::load_manifest(e.dir + "/nope"), BundleError, "not an export directory (manifest.json is missing)");
    write_manifest(e.dir, "{\"format\": ");
    CHECK_THROWS_CONTAINING(pace::load_manifest(e.dir), BundleError, "manifest.json: not valid JSON");
    write_manifest(e.dir, R"({"format": "something-else"})");
    CHECK_THROWS_CONTAINING(pace::load_manifest(e.dir), BundleError, "not a pace-edge export manifest");
    write_manifest(e.dir, R"({"format": "pace-edge-export", "format_version": 2})");
    CHECK_THROWS_CONTAINING(pace::load_manifest(e.dir), BundleError, "export format 2 is newer than this runtime understands (1)");
    write_manifest(e.dir, R"({"format": "pace-edge-export", "format_version": 1, "target": "x"})");
    CHECK_THROWS_CONTAINING(pace::load_manifest(e.dir), BundleError, "malformed manifest (missing field 'precision')");
    std::string text = manifest_text(pace::sha256_hex("hello"));
    text.replace(text.find("\"classes\": 2"), 12, "\"classes\": 3");
    write_manifest(e.dir, text);
    CHECK_THROWS_CONTAINING(pace::load_manifest(e.dir), BundleError, "output classes 3 does not match the 2 class names");
}

TEST_CASE("edited metadata is refused") {
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
        CHECK_THROWS_CONTAINING(pace::load_manifest(e.dir), BundleError,
                     "/manifest.json: sha256 " + pace::sha256_hex(edited).substr(0, 12) +
                         "… does not match manifest.json.sha256 (" + pace::sha256_hex(good).substr(0, 12) +
                         "…): manifest.json was edited after it was written");
    }
}

TEST_CASE("a manifest without its digest is refused") {
    Export e;
    ::unlink((e.dir + "/manifest.json.sha256").c_str());
    CHECK_THROWS_CONTAINING(pace::load_manifest(e.dir), BundleError,
                 "manifest.json.sha256 is missing: manifest.json is not covered by a digest; exports "
                 "written by earlier pace-edge versions lack it; re-export the bundle with pace-edge export");
    write(e.dir + "/manifest.json.sha256", "not-a-digest  manifest.json\n");
    CHECK_THROWS_CONTAINING(pace::load_manifest(e.dir), BundleError, "malformed digest");
    write(e.dir + "/manifest.json.sha256",
          pace::sha256_hex(manifest_text(pace::sha256_hex("hello"))) + "  other.json\n");
    CHECK_THROWS_CONTAINING(pace::load_manifest(e.dir), BundleError, "digest of 'other.json', not of manifest.json");
    // sha256sum's binary-mode marker is accepted
    write(e.dir + "/manifest.json.sha256",
          pace::sha256_hex(manifest_text(pace::sha256_hex("hello"))) + " *manifest.json\n");
    CHECK(pace::load_manifest(e.dir).classes.size() == 2);
}

TEST_CASE("strict json nulls are read") {
    // pace-edge writes strict JSON: a non-finite figure (a broken artefact's parity) is null.
    Export e;
    write_manifest(e.dir, manifest_text(pace::sha256_hex("hello"), "model.bin",
                                        R"(, "parity": [{"artefact": "model.bin", "max_abs_diff": null,
                                              "agreement": null, "passed": false}],
                                            "calibration": null, "accuracy": null)"));
    const pace::Manifest m = pace::load_manifest(e.dir);
    CHECK(m.raw.at("parity")[0].at("max_abs_diff").is_null());
    CHECK(std::isnan(pace::json::number_or_nan(m.raw.at("parity")[0].at("max_abs_diff"), "max_abs_diff")));
    CHECK((m.raw.at("calibration").is_null() && m.num_classes == 2));
}

TEST_CASE("failed gates are found and refused without allow failed") {
    Export e;
    CHECK(pace::load_manifest(e.dir).failed_gates.empty());
    CHECK_NOTHROW(pace::refuse_failed_export(pace::load_manifest(e.dir)));
    // the status the exporter records: failed gates refused, gates accepted with --force not
    write_manifest(e.dir, manifest_text(pace::sha256_hex("hello"), "model.bin",
                                        R"(, "status": {"passed": false, "failed_gates": ["sensitivity"],
                                                        "accepted_gates": ["accuracy"],
                                                        "problems": {"sensitivity": "3 layers over tolerance",
                                                                     "accuracy": "drop 2.2 pp"}},
                                            "accuracy": {"data": "cov/test", "passed": false})"));
    pace::Manifest m = pace::load_manifest(e.dir);
    REQUIRE(m.failed_gates.size() == 1);
    CHECK(m.failed_gates[0].name == "sensitivity");
    CHECK_THROWS_CONTAINING(pace::refuse_failed_export(m), BundleError,
                            e.dir + " failed its sensitivity gate (sensitivity: 3 layers over tolerance); "
                                    "--allow-failed runs it anyway");
    write_manifest(e.dir, manifest_text(pace::sha256_hex("hello"), "model.bin",
                                        R"(, "status": {"passed": false, "failed_gates": [],
                                                        "accepted_gates": ["accuracy"]},
                                            "accuracy": {"data": "cov/test", "passed": false})"));
    CHECK(pace::load_manifest(e.dir).failed_gates.empty());  // accepted with --force: runs
    // written before the status: failed parity rows and a failed accuracy gate
    write_manifest(e.dir, manifest_text(pace::sha256_hex("hello"), "model.bin",
                                        R"(, "parity": [{"artefact": "model.bin", "runtime": "openvino",
                                                         "max_abs_diff": null, "passed": false},
                                                        {"artefact": "model.onnx", "runtime": "onnxruntime",
                                                         "passed": true}],
                                            "accuracy": {"data": "cov/test", "passed": false})"));
    m = pace::load_manifest(e.dir);
    REQUIRE(m.failed_gates.size() == 2);
    CHECK_THROWS_CONTAINING(pace::refuse_failed_export(m), BundleError,
                            e.dir + " failed its parity and accuracy gates (parity: model.bin on openvino; "
                                    "accuracy: on cov/test); --allow-failed runs it anyway");
    write_manifest(e.dir, manifest_text(pace::sha256_hex("hello"), "model.bin",
                                        R"(, "parity": [{"artefact": "model.bin", "passed": true}],
                                            "accuracy": null)"));
    CHECK(pace::load_manifest(e.dir).failed_gates.empty());
    write_manifest(e.dir, manifest_text(pace::sha256_hex("hello"), "model.bin",
                                        R"(, "status": {"failed_gates": "parity"})"));
    CHECK_THROWS_CONTAINING(pace::load_manifest(e.dir), BundleError, "status.failed_gates must be an array");
}

TEST_CASE("the native support record is read and enforced") {
    Export e;
    std::string text = manifest_text(pace::sha256_hex("hello"));
    replace(text, R"("runtime": {)", R"("runtime": {"pace-stream": {"preprocessing": true}, )");
    write_manifest(e.dir, text);
    CHECK(pace::load_manifest(e.dir).native_preprocessing);
    CHECK_NOTHROW(pace::refuse_unsupported_preprocessing(pace::load_manifest(e.dir)));
    text = manifest_text(pace::sha256_hex("hello"));
    replace(text, R"("runtime": {)",
            R"("runtime": {"pace-stream": {"preprocessing": false, "step": "baseline:snip",
                                           "reason": "pace-stream computes asls and arpls only"}, )");
    write_manifest(e.dir, text);
    const pace::Manifest m = pace::load_manifest(e.dir);
    CHECK(!m.native_preprocessing);
    CHECK(m.native_step == "baseline:snip");
    CHECK_THROWS_CONTAINING(pace::refuse_unsupported_preprocessing(m), BundleError,
                            "pace-stream cannot run this export's preprocessing step baseline:snip "
                            "(pace-stream computes asls and arpls only)");
    text = manifest_text(pace::sha256_hex("hello"));
    replace(text, R"("runtime": {)", R"("runtime": {"pace-stream": {"preprocessing": "no"}, )");
    write_manifest(e.dir, text);
    CHECK_THROWS_CONTAINING(pace::load_manifest(e.dir), BundleError,
                            "runtime.pace-stream.preprocessing must be a boolean, got a string");
}

TEST_CASE("plan files are found and checked") {
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
    CHECK((plan.header.precision == "fp16" && plan.header.gpu_name == "Orin (nvgpu)"));
    CHECK(std::string(plan.engine.begin(), plan.engine.end()) == engine);
    pace::check_plan_source(plan.header, m, "model.plan");
    pace::check_plan_compatible(plan.header, "10.3.0", "Orin (nvgpu)", "8.7");  // build number ignored
    CHECK_THROWS_CONTAINING(pace::check_plan_compatible(plan.header, "10.4.1", "NVIDIA H100", "9.0"), pace::Error,
                 "built with TensorRT 10.3.0.30, running 10.4.1; built for compute capability 8.7, this GPU "
                 "is 9.0; built on 'Orin (nvgpu)', this GPU is 'NVIDIA H100'");
    write(e.dir + "/model.plan", blob + header + "not really an enginE");
    CHECK_THROWS_CONTAINING(pace::read_plan(e.dir + "/model.plan"), BundleError, "engine sha256 does not match its header");
    write(e.dir + "/model.plan", blob + header + "short");
    CHECK_THROWS_CONTAINING(pace::read_plan(e.dir + "/model.plan"), BundleError, "engine is 5 bytes, header says 20");
    write(e.dir + "/model.plan", "raw engine bytes from trtexec");
    CHECK_THROWS_CONTAINING(pace::read_plan(e.dir + "/model.plan"), BundleError, "not a pace-edge TensorRT plan");
}
