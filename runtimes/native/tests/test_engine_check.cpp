// The engine check of `pace-stream --build-engine` without TensorRT: what to build, the saved
// ONNX Runtime logits, the per-precision gate, the plan file it writes and its record beside the
// export (engine.json for a passed plan, engine.rejected.json for a failed one; manifest.json and
// its signature untouched), and the refusal of edited records, swapped plans and stale plans.
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "check.hpp"
#include "pace/engine_check.hpp"
#include "pace/engine_record.hpp"
#include "pace/errors.hpp"
#include "pace/hash.hpp"
#include "pace/manifest.hpp"
#include "pace/trt_plan.hpp"

using pace::BundleError;

namespace {

std::string temp_dir() {
    char templ[] = "/tmp/pace-engine-check-XXXXXX";
    const char* dir = ::mkdtemp(templ);
    if (dir == nullptr) throw std::runtime_error("mkdtemp failed");
    return dir;
}

std::string f32(const std::vector<float>& v) {
    std::string out;
    for (float x : v) {
        std::uint32_t u;
        std::memcpy(&u, &x, 4);
        for (int b = 0; b < 4; ++b) out += char(u >> (8 * b) & 0xff);
    }
    return out;
}

void write(const std::string& path, const std::string& text) { std::ofstream(path, std::ios::binary) << text; }

std::string read(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// 4 spectra of 3 points, 2 classes; reference logits with clear winners.
const std::vector<float> kSpectra = {0, 1, 2, 1, 0, 1, 2, 2, 2, -1, 0, 1};
const std::vector<float> kReference = {1.0f, -1.0f, -2.0f, 2.0f, 0.5f, 0.0f, -0.25f, 0.75f};

struct Export {
    std::string dir = temp_dir();
    explicit Export(bool qdq = false) {
        const std::string onnx = "onnx bytes", spectra = f32(kSpectra), ref = f32(kReference);
        write(dir + "/model.onnx", onnx);
        write(dir + "/engine_check_spectra.f32", spectra);
        write(dir + "/engine_check_model.f32", ref);
        auto artefact = [](const std::string& path, const std::string& kind, const std::string& prec,
                           const std::string& data) {
            return R"({"path": ")" + path + R"(", "kind": ")" + kind + R"(", "precision": ")" + prec +
                   R"(", "sha256": ")" + pace::sha256_hex(data) + R"(", "bytes": )" + std::to_string(data.size()) + "}";
        };
        std::string artefacts = artefact("model.onnx", "onnx", "fp32", onnx) + ", " +
                                artefact("engine_check_spectra.f32", "engine-check-spectra", "fp32", spectra) + ", " +
                                artefact("engine_check_model.f32", "engine-check-logits", "fp32", ref);
        if (qdq) {
            write(dir + "/model_int8_qdq.onnx", "qdq bytes");
            artefacts += ", " + artefact("model_int8_qdq.onnx", "onnx", "int8", "qdq bytes");
        }
        write(dir + "/manifest.json", R"({"format": "pace-edge-export", "format_version": 1, "target": "jetson",
          "precision": "fp16", "artefacts": [)" + artefacts + R"(],
          "input": {"name": "spectrum", "length": 3, "batch": "dynamic", "axis": [1.0, 2.0, 3.0],
                    "preprocessing": [], "dtype": "float32"},
          "output": {"name": "logits", "classes": 2, "dtype": "float32", "kind": "logits"},
          "classes": ["a", "b"], "source": {}, "opset": 20,
          "runtime": {"tensorrt": {"precision": "fp16", "profile": {"min": 1, "opt": 2, "max": 4},
            "workspace_mb": 64, "engine_check": {"spectra": "engine_check_spectra.f32", "count": 4,
            "length": 3, "classes": 2, "references": {"model.onnx": {"file": "engine_check_model.f32",
            "runtime": "onnxruntime 1.22.0 CPUExecutionProvider"}},
            "tolerances": {"fp32": {"max_abs": 0.001, "min_agreement": 0.99},
                           "fp16": {"max_abs": 0.05, "min_agreement": 0.99},
                           "int8": {"max_abs": null, "min_agreement": 0.98}}}}}})");
        pace::write_digest(dir + "/manifest.json", read(dir + "/manifest.json"));
    }
    ~Export() { std::system(("rm -rf '" + dir + "'").c_str()); }
};

pace::PlanHeader header(const pace::Manifest& m) {
    pace::PlanHeader h;
    h.tensorrt_version = "10.3.0";
    h.gpu_name = "Orin";
    h.compute_capability = "8.7";
    h.precision = "fp16";
    h.source_onnx = "model.onnx";
    h.source_onnx_sha256 = m.find_artefact("onnx")->sha256;
    h.input_length = 3;
    h.min_batch = 1, h.opt_batch = 2, h.max_batch = 4;
    h.builder_flags = {"FP16"};
    h.cleared_flags = {"TF32"};
    return h;
}

}  // namespace

TEST(plan_request_follows_the_export) {
    Export e(true);
    const pace::Manifest m = pace::load_manifest(e.dir);
    const pace::PlanRequest r = pace::plan_request(m);
    CHECK(r.source == "model.onnx" && r.precision == "fp16" && r.fp16 && !r.int8);
    CHECK(r.min_batch == 1 && r.opt_batch == 2 && r.max_batch == 4 && r.workspace_mb == 64);
    const pace::PlanRequest q = pace::plan_request(m, "int8");
    CHECK(q.source == "model_int8_qdq.onnx" && q.int8 && q.fp16);
    CHECK(pace::plan_request(m, "fp32").source == "model.onnx" && !pace::plan_request(m, "fp32").fp16);
    Export plain;
    CHECK_THROWS(pace::plan_request(pace::load_manifest(plain.dir), "int8"), pace::Error,
                 "an INT8 plan is built from the Q/DQ model model_int8_qdq.onnx");
}

TEST(check_data_and_tolerances_come_from_the_manifest) {
    Export e;
    const pace::Manifest m = pace::load_manifest(e.dir);
    const pace::CheckData d = pace::load_check_data(m, "model.onnx");
    CHECK(d.count == 4 && d.length == 3 && d.classes == 2);
    CHECK(d.spectra == kSpectra && d.reference == kReference);
    CHECK(d.reference_runtime == "onnxruntime 1.22.0 CPUExecutionProvider");
    CHECK_THROWS(pace::load_check_data(m, "model_int8_qdq.onnx"), BundleError,
                 "no engine-check logits for model_int8_qdq.onnx; export it again");
    CHECK(*pace::tolerance_for(m, "fp32").max_abs == 0.001);
    CHECK(!pace::tolerance_for(m, "int8").max_abs && pace::tolerance_for(m, "int8").min_agreement == 0.98);
    CHECK_THROWS(pace::tolerance_for(m, "bf16"), BundleError, "no engine tolerance for bf16");
}

TEST(the_gate_passes_and_fails_per_precision) {
    Export e;
    const pace::Manifest m = pace::load_manifest(e.dir);
    std::vector<float> near = kReference;
    for (float& v : near) v += 0.002f;
    CHECK(pace::compare_logits(kReference, kReference, 2, pace::tolerance_for(m, "fp32")).passed);
    const pace::CheckResult fp32 = pace::compare_logits(kReference, near, 2, pace::tolerance_for(m, "fp32"));
    CHECK(!fp32.passed && fp32.agreement == 1.0);  // 2e-3 is beyond FP32's 1e-3
    CHECK_CLOSE(fp32.max_abs_diff, 0.002, 1e-3);
    CHECK(pace::compare_logits(kReference, near, 2, pace::tolerance_for(m, "fp16")).passed);
    std::vector<float> flipped = kReference;
    flipped[0] = -3.0f;  // spectrum 0's top-1 moves to class b: 75 % agreement
    const pace::CheckResult int8 = pace::compare_logits(kReference, flipped, 2, pace::tolerance_for(m, "int8"));
    CHECK(!int8.passed && int8.agreement == 0.75 && int8.samples == 4);
    CHECK(pace::describe(int8).find("top-1 agreement 75.00 % (need 98.00 %) over 4 spectra") != std::string::npos);
    std::vector<float> nan = kReference;
    nan[3] = NAN;
    CHECK(!pace::compare_logits(kReference, nan, 2, pace::tolerance_for(m, "int8")).passed);
    CHECK_THROWS(pace::compare_logits(kReference, {1.0f}, 2, pace::tolerance_for(m, "int8")), pace::Error,
                 "logits of 1 values, expected 8");
}

TEST(checked_plans_are_recorded_beside_an_untouched_manifest) {
    Export e;
    const std::string manifest_bytes = read(e.dir + "/manifest.json");
    write(e.dir + "/manifest.json.sig", "a signature over manifest.json");
    const pace::Manifest m = pace::load_manifest(e.dir);
    pace::PlanHeader h = header(m);
    const std::vector<char> engine = {'e', 'n', 'g', 'i', 'n', 'e'};
    pace::write_plan(e.dir + "/model.plan.building", engine, h);
    const pace::Plan plan = pace::read_plan(e.dir + "/model.plan.building");
    CHECK(plan.engine == engine && plan.header.engine_bytes == 6 && plan.header.precision == "fp16");
    pace::check_plan_source(plan.header, m, "model.plan");
    const pace::CheckData d = pace::load_check_data(m, "model.onnx");

    std::vector<float> off = kReference;
    off[1] += 1.0f;
    const pace::CheckResult bad = pace::compare_logits(d.reference, off, 2, pace::tolerance_for(m, "fp16"));
    CHECK_THROWS(pace::install_plan(m, e.dir + "/model.plan.building", h, bad, d, "test"), pace::Error,
                 "kept as model.plan.rejected, not used, the result is in engine.rejected.json");
    CHECK(!pace::device_plan(m));  // nothing a runner would use
    const auto rejected = pace::read_engine_record(m, pace::kRejectedEngineFile);
    CHECK(rejected && !rejected->check_passed && rejected->plan == "model.plan.rejected");

    pace::write_plan(e.dir + "/model.plan.building", engine, h);
    const pace::CheckResult good = pace::compare_logits(d.reference, d.reference, 2, pace::tolerance_for(m, "fp16"));
    CHECK(pace::install_plan(m, e.dir + "/model.plan.building", h, good, d, "test") == e.dir + "/model.plan");
    CHECK(read(e.dir + "/manifest.json") == manifest_bytes);  // never rewritten, still signed
    CHECK(read(e.dir + "/manifest.json.sig") == "a signature over manifest.json");
    const pace::Manifest again = pace::load_manifest(e.dir);
    CHECK(again.artefacts.size() == 3 && !again.find_artefact("tensorrt-plan"));
    const auto record = pace::device_plan(again);
    CHECK(record && record->check_passed && pace::plan_problem(again, *record).empty());
    CHECK(pace::plan_path(again, *record) == e.dir + "/model.plan");
    CHECK(record->plan_sha256 == pace::sha256_hex(read(e.dir + "/model.plan")));
    CHECK(record->source_onnx == "model.onnx" && record->source_onnx_sha256 == m.find_artefact("onnx")->sha256);
    CHECK(record->doc.at("cleared_flags").as_array()[0].as_string() == "TF32");
    CHECK(record->doc.at("check").at("reference").as_string() == "model.onnx on onnxruntime 1.22.0 CPUExecutionProvider");
    CHECK(read(e.dir + "/engine.json.sha256").find("  engine.json\n") == 64);
}

TEST(edited_records_swapped_plans_and_stale_plans_are_refused) {
    Export e;
    const pace::Manifest m = pace::load_manifest(e.dir);
    pace::PlanHeader h = header(m);
    pace::write_plan(e.dir + "/model.plan.building", {'e', 'n', 'g'}, h);
    const pace::CheckData d = pace::load_check_data(m, "model.onnx");
    const pace::CheckResult good = pace::compare_logits(d.reference, d.reference, 2, pace::tolerance_for(m, "fp16"));
    pace::install_plan(m, e.dir + "/model.plan.building", h, good, d, "test");
    const std::string record = read(e.dir + "/engine.json"), plan = read(e.dir + "/model.plan");

    write(e.dir + "/engine.json", record + " ");
    CHECK_THROWS(pace::device_plan(m), BundleError, "engine.json was edited after it was written");
    write(e.dir + "/engine.json", record);
    write(e.dir + "/model.plan", plan + "x");
    CHECK_THROWS(pace::device_plan(m), BundleError, "does not match engine.json");
    write(e.dir + "/model.plan", plan);
    CHECK(pace::device_plan(m).has_value());

    // a record that verifies but names another ONNX (left from an earlier export, say)
    pace::PlanHeader other = h;
    other.source_onnx_sha256 = std::string(64, 'f');
    pace::write_engine_record(m, pace::engine_record(m, other, "model.plan", good, d, "test"));
    const auto stale = pace::device_plan(m);
    CHECK(stale && pace::plan_problem(m, *stale).find("model.plan was built from model.onnx with sha256 "
                                                     "ffffffffffff…, not from this export's") == 0);
    other.source_onnx = "gone.onnx";
    pace::write_engine_record(m, pace::engine_record(m, other, "model.plan", good, d, "test"));
    CHECK(pace::plan_problem(m, *pace::device_plan(m)) ==
          "model.plan was built from gone.onnx, which this export's manifest does not list");
    std::vector<float> off = kReference;
    off[1] += 1.0f;
    const pace::CheckResult bad = pace::compare_logits(d.reference, off, 2, pace::tolerance_for(m, "fp16"));
    pace::write_engine_record(m, pace::engine_record(m, h, "model.plan", bad, d, "test"));
    CHECK(pace::plan_problem(m, *pace::device_plan(m)) == "engine.json records no passed engine check for model.plan");
}

TEST_MAIN()
