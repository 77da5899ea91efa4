#include "pace/engine_check.hpp"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>

#include "pace/engine_record.hpp"
#include "pace/errors.hpp"
#include "pace/hash.hpp"
#include "pace/json.hpp"

namespace pace {

namespace {

const json::Value& tensorrt_settings(const Manifest& m) {
    const json::Value* trt = m.runtime.find("tensorrt");
    if (trt == nullptr || !trt->is_object()) {
        throw Error(m.directory + " is a " + m.target + " export; TensorRT plans are built from "
                    "pace-edge export --target jetson or tensorrt");
    }
    return *trt;
}

std::string dir_of(const Manifest& m) {
    return m.directory.empty() || m.directory.back() == '/' ? m.directory : m.directory + "/";
}

bool listed(const Manifest& m, const std::string& path) {
    for (const Artefact& a : m.artefacts)
        if (a.path == path) return true;
    return false;
}

std::vector<float> read_f32(const std::string& path, size_t rows, size_t cols) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw BundleError(path + ": cannot read (" + std::strerror(errno) + ")");
    std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (bytes.size() != rows * cols * 4) {
        throw BundleError(path + ": " + std::to_string(bytes.size()) + " bytes, expected " +
                          std::to_string(rows) + "x" + std::to_string(cols) + " float32");
    }
    std::vector<float> out(rows * cols);
    for (size_t i = 0; i < out.size(); ++i) {  // little-endian on disk, whatever the host
        const auto* p = reinterpret_cast<const unsigned char*>(bytes.data() + 4 * i);
        const std::uint32_t u = std::uint32_t(p[0]) | std::uint32_t(p[1]) << 8 |
                                std::uint32_t(p[2]) << 16 | std::uint32_t(p[3]) << 24;
        std::memcpy(&out[i], &u, 4);
    }
    return out;
}

json::Value str(const std::string& s) { return json::Value::string(s); }
json::Value real(double d) { return json::Value::number(d, false); }
json::Value integer(long long v) { return json::Value::number(double(v), true); }
json::Value strings(const std::vector<std::string>& v) {
    json::Array a;
    for (const auto& s : v) a.push_back(str(s));
    return json::Value::array(std::move(a));
}


}  // namespace

PlanRequest plan_request(const Manifest& m, const std::string& precision) {
    const json::Value& trt = tensorrt_settings(m);
    PlanRequest r;
    r.precision = precision;
    if (r.precision.empty()) {
        const json::Value* p = trt.find("precision");
        r.precision = p && p->is_string() ? p->as_string() : m.precision;
    }
    if (r.precision != "fp32" && r.precision != "fp16" && r.precision != "int8") r.precision = "fp32";
    r.fp16 = r.precision != "fp32";
    r.int8 = r.precision == "int8";
    const std::string qdq = "model_int8_qdq.onnx";
    for (const Artefact& a : m.artefacts) {
        if (a.kind != "onnx" && a.kind != "onnx-qdq") continue;
        const bool is_qdq = a.path == qdq || (a.path.size() > qdq.size() &&
                            a.path.compare(a.path.size() - qdq.size() - 1, std::string::npos, "/" + qdq) == 0);
        if (r.int8 ? is_qdq : a.precision == "fp32") {
            r.source = a.path;
            break;
        }
    }
    if (r.source.empty()) {
        throw Error(r.int8 ? m.directory + ": an INT8 plan is built from the Q/DQ model " + qdq +
                                 ", which this export lacks; export with --target jetson --calib DATA"
                           : m.directory + ": the export has no FP32 ONNX model to build a plan from");
    }
    if (const json::Value* p = trt.find("profile"); p && p->is_object()) {
        r.min_batch = p->at("min").as_integer("profile.min");
        r.opt_batch = p->at("opt").as_integer("profile.opt");
        r.max_batch = p->at("max").as_integer("profile.max");
    } else if (m.batch > 0) {
        r.min_batch = r.opt_batch = r.max_batch = m.batch;
    }
    if (const json::Value* w = trt.find("workspace_mb"); w && w->is_number())
        r.workspace_mb = w->as_integer("workspace_mb");
    return r;
}

Tolerance tolerance_for(const Manifest& m, const std::string& precision) {
    const json::Value* check = tensorrt_settings(m).find("engine_check");
    const json::Value* all = check ? check->find("tolerances") : nullptr;
    const json::Value* t = all ? all->find(precision) : nullptr;
    if (t == nullptr || !t->is_object())
        throw BundleError(m.directory + ": the manifest records no engine tolerance for " + precision);
    Tolerance out;
    if (const json::Value* a = t->find("max_abs"); a && !a->is_null()) out.max_abs = a->as_number("max_abs");
    out.min_agreement = t->at("min_agreement").as_number("min_agreement");
    return out;
}

CheckData load_check_data(const Manifest& m, const std::string& source) {
    const json::Value* check = tensorrt_settings(m).find("engine_check");
    const json::Value* refs = check ? check->find("references") : nullptr;
    const json::Value* ref = refs ? refs->find(source) : nullptr;
    if (ref == nullptr) {
        throw BundleError(m.directory + ": the export has no engine-check logits for " + source +
                          "; export it again with this pace-edge (--target jetson or tensorrt)");
    }
    CheckData d;
    d.source = source;
    d.count = size_t(check->at("count").as_integer("engine_check.count"));
    d.length = size_t(check->at("length").as_integer("engine_check.length"));
    d.classes = check->find("classes") ? size_t(check->at("classes").as_integer("classes")) : m.num_classes;
    const std::string spectra = check->at("spectra").as_string("engine_check.spectra");
    const std::string reference = ref->at("file").as_string("file");
    for (const std::string& f : {spectra, reference})
        if (!listed(m, f)) throw BundleError(m.directory + ": engine-check file " + f + " is not listed in the manifest");
    if (d.length != m.input_length)
        throw BundleError(m.directory + ": engine-check spectra have " + std::to_string(d.length) + " points, the model " +
                          std::to_string(m.input_length));
    d.spectra = read_f32(dir_of(m) + spectra, d.count, d.length);
    d.reference = read_f32(dir_of(m) + reference, d.count, d.classes);
    if (const json::Value* r = ref->find("runtime"); r && r->is_string()) d.reference_runtime = r->as_string();
    return d;
}

CheckResult compare_logits(const std::vector<float>& reference, const std::vector<float>& candidate,
                           size_t classes, const Tolerance& tolerance) {
    if (classes == 0 || reference.size() != candidate.size() || reference.size() % classes != 0)
        throw Error("engine check: logits of " + std::to_string(candidate.size()) + " values, expected " +
                    std::to_string(reference.size()));
    CheckResult r;
    r.tolerance = tolerance;
    r.samples = reference.size() / classes;
    bool finite = true;
    double sum = 0;
    size_t agree = 0;
    for (size_t i = 0; i < r.samples; ++i) {
        size_t top_ref = 0, top_cand = 0;
        for (size_t c = 0; c < classes; ++c) {
            const double ref = reference[i * classes + c], cand = candidate[i * classes + c];
            if (!std::isfinite(cand)) finite = false;
            const double diff = std::fabs(ref - cand);
            r.max_abs_diff = std::max(r.max_abs_diff, diff);
            sum += diff;
            if (reference[i * classes + c] > reference[i * classes + top_ref]) top_ref = c;
            if (candidate[i * classes + c] > candidate[i * classes + top_cand]) top_cand = c;
        }
        agree += top_ref == top_cand;
    }
    if (!finite) r.max_abs_diff = r.mean_abs_diff = INFINITY;
    else r.mean_abs_diff = r.samples ? sum / double(reference.size()) : 0.0;
    r.agreement = r.samples ? double(agree) / double(r.samples) : 0.0;
    r.passed = finite && r.samples > 0 && r.agreement >= tolerance.min_agreement &&
               (!tolerance.max_abs || r.max_abs_diff <= *tolerance.max_abs);
    return r;
}

std::string describe(const CheckResult& r) {
    char buf[256];
    std::string limit;
    if (r.tolerance.max_abs) {
        std::snprintf(buf, sizeof buf, " (limit %g)", *r.tolerance.max_abs);
        limit = buf;
    }
    std::snprintf(buf, sizeof buf, "max |Δlogit| %.3g%s, top-1 agreement %.2f %% (need %.2f %%) over %zu spectra",
                  r.max_abs_diff, limit.c_str(), 100 * r.agreement, 100 * r.tolerance.min_agreement, r.samples);
    return buf;
}

json::Value engine_record(const Manifest& m, const PlanHeader& h, const std::string& plan, const CheckResult& r,
                          const CheckData& data, const std::string& builder) {
    json::Object check;
    json::set(check, "artefact", str(plan));
    json::set(check, "runtime", str("tensorrt-" + h.tensorrt_version + " (" + h.gpu_name + ")"));
    json::set(check, "precision", str(h.precision));
    json::set(check, "samples", integer((long long)r.samples));
    json::set(check, "max_abs_diff", std::isfinite(r.max_abs_diff) ? real(r.max_abs_diff) : json::Value());
    json::set(check, "mean_abs_diff", std::isfinite(r.mean_abs_diff) ? real(r.mean_abs_diff) : json::Value());
    json::set(check, "agreement", real(r.agreement));
    json::set(check, "max_abs_limit", r.tolerance.max_abs ? real(*r.tolerance.max_abs) : json::Value());
    json::set(check, "min_agreement", real(r.tolerance.min_agreement));
    json::set(check, "passed", json::Value::boolean(r.passed));
    json::set(check, "reference", str(data.source + " on " + data.reference_runtime));
    json::set(check, "builder", str(builder));

    const std::string file = dir_of(m) + plan;
    std::ifstream f(file, std::ios::binary | std::ios::ate);
    if (!f) throw Error(file + ": cannot read (" + std::strerror(errno) + ")");
    const long long bytes = (long long)f.tellg();
    json::Object batch;
    json::set(batch, "min", integer(h.min_batch));
    json::set(batch, "opt", integer(h.opt_batch));
    json::set(batch, "max", integer(h.max_batch));
    json::Object o;  // the keys of pace_edge.export.engine_record.EngineRecord
    json::set(o, "format", str(kEngineFormat));
    json::set(o, "format_version", integer(kEngineFormatVersion));
    json::set(o, "plan", str(plan));
    json::set(o, "plan_sha256", str(sha256_file(file)));
    json::set(o, "plan_bytes", integer(bytes));
    json::set(o, "source_onnx", str(h.source_onnx));
    json::set(o, "source_onnx_sha256", str(h.source_onnx_sha256));
    json::set(o, "precision", str(h.precision));
    json::set(o, "tensorrt_version", str(h.tensorrt_version));
    json::set(o, "gpu_name", str(h.gpu_name));
    json::set(o, "compute_capability", str(h.compute_capability));
    json::set(o, "check", json::Value::object(std::move(check)));
    json::set(o, "builder_flags", strings(h.builder_flags));
    json::set(o, "cleared_flags", strings(h.cleared_flags));
    json::set(o, "batch", json::Value::object(std::move(batch)));
    json::set(o, "created", str(h.created));
    json::set(o, "pace_edge", str("pace-stream"));
    return json::Value::object(std::move(o));
}

std::string install_plan(const Manifest& m, const std::string& staged, const PlanHeader& h, const CheckResult& r,
                         const CheckData& data, const std::string& builder) {
    const std::string dir = dir_of(m);
    if (!r.passed) {
        const std::string rejected = std::string(kPlanFile) + ".rejected";
        if (std::rename(staged.c_str(), (dir + rejected).c_str()) != 0)
            throw Error(dir + rejected + ": cannot write (" + std::strerror(errno) + ")");
        write_engine_record(m, engine_record(m, h, rejected, r, data, builder), kRejectedEngineFile);
        throw Error("the TensorRT plan fails the " + h.precision + " engine check (" + describe(r) + "); kept as " +
                    rejected + ", not used, the result is in " + kRejectedEngineFile);
    }
    remove_engine_record(m);  // the old record would not match the new plan
    if (std::rename(staged.c_str(), (dir + kPlanFile).c_str()) != 0)
        throw Error(dir + kPlanFile + ": cannot write (" + std::strerror(errno) + ")");
    write_engine_record(m, engine_record(m, h, kPlanFile, r, data, builder));
    return dir + kPlanFile;
}

}  // namespace pace
