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

const Json& tensorrt_settings(const Manifest& m) {
    const Json* trt = json::find(m.runtime, "tensorrt");
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

Json finite_or_null(double d) { return std::isfinite(d) ? Json(d) : Json(); }

}  // namespace

PlanRequest plan_request(const Manifest& m, const std::string& precision) {
    const Json& trt = tensorrt_settings(m);
    PlanRequest r;
    r.precision = precision;
    if (r.precision.empty()) {
        const Json* p = json::find(trt, "precision");
        r.precision = p && p->is_string() ? p->get<std::string>() : m.precision;
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
    if (const Json* p = json::find(trt, "profile"); p && p->is_object()) {
        r.min_batch = json::integer(json::at(*p, "min"), "profile.min");
        r.opt_batch = json::integer(json::at(*p, "opt"), "profile.opt");
        r.max_batch = json::integer(json::at(*p, "max"), "profile.max");
    } else if (m.batch > 0) {
        r.min_batch = r.opt_batch = r.max_batch = m.batch;
    }
    if (const Json* w = json::find(trt, "workspace_mb"); w && w->is_number())
        r.workspace_mb = json::integer(*w, "workspace_mb");
    return r;
}

Tolerance tolerance_for(const Manifest& m, const std::string& precision) {
    const Json* check = json::find(tensorrt_settings(m), "engine_check");
    const Json* all = check ? json::find(*check, "tolerances") : nullptr;
    const Json* t = all ? json::find(*all, precision) : nullptr;
    if (t == nullptr || !t->is_object())
        throw BundleError(m.directory + ": the manifest records no engine tolerance for " + precision);
    Tolerance out;
    if (const Json* a = json::find(*t, "max_abs"); a && !a->is_null()) out.max_abs = json::number(*a, "max_abs");
    out.min_agreement = json::number(json::at(*t, "min_agreement"), "min_agreement");
    return out;
}

CheckData load_check_data(const Manifest& m, const std::string& source) {
    const Json* check = json::find(tensorrt_settings(m), "engine_check");
    const Json* refs = check ? json::find(*check, "references") : nullptr;
    const Json* ref = refs ? json::find(*refs, source) : nullptr;
    if (ref == nullptr) {
        throw BundleError(m.directory + ": the export has no engine-check logits for " + source +
                          "; export it again with this pace-edge (--target jetson or tensorrt)");
    }
    CheckData d;
    d.source = source;
    d.count = size_t(json::integer(json::at(*check, "count"), "engine_check.count"));
    d.length = size_t(json::integer(json::at(*check, "length"), "engine_check.length"));
    const Json* classes = json::find(*check, "classes");
    d.classes = classes ? size_t(json::integer(*classes, "classes")) : m.num_classes;
    const std::string spectra = json::string(json::at(*check, "spectra"), "engine_check.spectra");
    const std::string reference = json::string(json::at(*ref, "file"), "file");
    for (const std::string& f : {spectra, reference})
        if (!listed(m, f)) throw BundleError(m.directory + ": engine-check file " + f + " is not listed in the manifest");
    if (d.length != m.input_length)
        throw BundleError(m.directory + ": engine-check spectra have " + std::to_string(d.length) + " points, the model " +
                          std::to_string(m.input_length));
    d.spectra = read_f32(dir_of(m) + spectra, d.count, d.length);
    d.reference = read_f32(dir_of(m) + reference, d.count, d.classes);
    if (const Json* r = json::find(*ref, "runtime"); r && r->is_string()) d.reference_runtime = r->get<std::string>();
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

Json engine_record(const Manifest& m, const PlanHeader& h, const std::string& plan, const CheckResult& r,
                   const CheckData& data, const std::string& builder) {
    const Json check = {
        {"artefact", plan},
        {"runtime", "tensorrt-" + h.tensorrt_version + " (" + h.gpu_name + ")"},
        {"precision", h.precision},
        {"samples", r.samples},
        {"max_abs_diff", finite_or_null(r.max_abs_diff)},
        {"mean_abs_diff", finite_or_null(r.mean_abs_diff)},
        {"agreement", r.agreement},
        {"max_abs_limit", r.tolerance.max_abs ? Json(*r.tolerance.max_abs) : Json()},
        {"min_agreement", r.tolerance.min_agreement},
        {"passed", r.passed},
        {"reference", data.source + " on " + data.reference_runtime},
        {"builder", builder},
    };

    const std::string file = dir_of(m) + plan;
    std::ifstream f(file, std::ios::binary | std::ios::ate);
    if (!f) throw Error(file + ": cannot read (" + std::strerror(errno) + ")");
    const long long bytes = (long long)f.tellg();
    return {  // the keys of pace_edge.export.engine_record.EngineRecord
        {"format", kEngineFormat},
        {"format_version", kEngineFormatVersion},
        {"plan", plan},
        {"plan_sha256", sha256_file(file)},
        {"plan_bytes", bytes},
        {"source_onnx", h.source_onnx},
        {"source_onnx_sha256", h.source_onnx_sha256},
        {"precision", h.precision},
        {"tensorrt_version", h.tensorrt_version},
        {"gpu_name", h.gpu_name},
        {"compute_capability", h.compute_capability},
        {"check", check},
        {"builder_flags", h.builder_flags},
        {"cleared_flags", h.cleared_flags},
        {"batch", {{"min", h.min_batch}, {"opt", h.opt_batch}, {"max", h.max_batch}}},
        {"created", h.created},
        {"pace_edge", "pace-stream"},
    };
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
