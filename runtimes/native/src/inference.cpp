#include "pace/inference.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>

#include "pace/engine_record.hpp"
#include "pace/errors.hpp"
#include "pace/numeric.hpp"

namespace pace {

namespace {

constexpr size_t kDefaultChunk = 256;  // rows per call for dynamic-batch models

std::string lower(std::string s) {
    for (char& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

// The OpenVINO IR to run: of the export's own precision if listed, else the first.
const Artefact* pick_xml(const Manifest& m) {
    const Artefact* first = nullptr;
    for (const Artefact& a : m.artefacts) {
        if (a.kind != "openvino-xml") continue;
        if (a.precision == m.precision) return &a;
        if (first == nullptr) first = &a;
    }
    return first;
}

}  // namespace

void Backend::request_features(const std::string& name, size_t) {
    throw BundleError(name_ + ": this backend cannot read the '" + name +
                      "' output the manifest's \"unknown\" detector needs");
}

std::vector<float> Backend::infer(const float* inputs, size_t rows) {
    std::vector<float> out;
    out.reserve(rows * classes_);
    features_.clear();
    const size_t step = max_batch_.value_or(kDefaultChunk);
    std::vector<float> padded;
    for (size_t start = 0; start < rows; start += step) {
        const size_t n = std::min(step, rows - start);
        const float* chunk = inputs + start * length_;
        size_t run_rows = n;
        if (n < min_batch_) {  // a fixed-batch model: zero-pad, drop the padded rows' logits
            padded.assign(min_batch_ * length_, 0.0f);
            std::copy(chunk, chunk + n * length_, padded.begin());
            chunk = padded.data();
            run_rows = min_batch_;
        }
        std::vector<float> logits = run(chunk, run_rows);
        if (logits.size() != run_rows * classes_) {
            throw InferenceError(name_ + ": model returned " + std::to_string(logits.size()) +
                                 " values, expected " + std::to_string(run_rows * classes_));
        }
        out.insert(out.end(), logits.begin(), logits.begin() + long(n * classes_));
        if (feature_dim_ > 0) {
            if (batch_features_.size() != run_rows * feature_dim_) {
                throw InferenceError(name_ + ": model returned " + std::to_string(batch_features_.size()) +
                                     " feature values, expected " + std::to_string(run_rows * feature_dim_));
            }
            features_.insert(features_.end(), batch_features_.begin(),
                             batch_features_.begin() + long(n * feature_dim_));
        }
    }
    return out;
}

void Backend::warmup(int n) {
    std::vector<float> zeros(length_, 0.0f);
    for (int i = 0; i < n; ++i) infer(zeros.data(), 1);
}

std::vector<std::string> available_backends() {
    std::vector<std::string> out;
#ifdef PACE_WITH_TENSORRT
    out.push_back("tensorrt");
#endif
#ifdef PACE_WITH_OPENVINO
    out.push_back("openvino");
#endif
    return out;
}

std::unique_ptr<Backend> make_backend(const Manifest& m, const std::string& requested,
                                      int threads, std::string& reason) {
    std::string backend = lower(requested);
    if (backend == "ov") backend = "openvino";
    if (backend == "trt") backend = "tensorrt";
    if (backend != "auto" && backend != "openvino" && backend != "tensorrt") {
        throw Error("unknown backend '" + requested + "'; pace-stream runs auto, openvino or "
                    "tensorrt (onnxruntime and torch are in pace-edge stream)");
    }
    const auto built = available_backends();
    auto has = [&](const std::string& b) { return std::find(built.begin(), built.end(), b) != built.end(); };
    if (backend != "auto" && !has(backend)) {
        throw Error("backend " + backend + " is not built into this pace-stream; rebuild with " +
                    (backend == "tensorrt" ? "-DPACE_WITH_TENSORRT=ON" : "-DPACE_WITH_OPENVINO=ON"));
    }
    // The plan built on this device beside the export (engine.json): an edited record or a
    // swapped plan is refused here whatever the backend (BundleError); a stale or unchecked one
    // is not used (`plan_issue` says why).
    const std::optional<EngineRecord> record = device_plan(m);
    const std::string plan_issue = record ? plan_problem(m, *record) : "";
    const std::optional<std::string> plan =
        record && plan_issue.empty() ? std::optional<std::string>(plan_path(m, *record)) : std::nullopt;
    const std::string rebuild = "rebuild it with pace-stream --build-engine --model " + m.directory +
                                " (or pace-edge build-engine --export " + m.directory + ")";
    const std::string no_plan = plan_issue.empty() ? "no TensorRT plan (run pace-stream --build-engine)"
                                                   : "TensorRT plan not used: " + plan_issue + "; " + rebuild;
    const Artefact* xml = pick_xml(m);
    const bool requested_auto = backend == "auto";
    if (backend == "auto") {
        if (has("tensorrt") && plan) {
            backend = "tensorrt";
            reason = "auto: TensorRT plan " + record->plan + " (" + record->precision + ", engine check passed on " +
                     record->gpu_name + ") beside the export";
        } else if (has("openvino") && xml) {
            backend = "openvino";
            reason = "auto: OpenVINO IR " + xml->path + " (" + xml->precision + ") in the export";
            if (has("tensorrt")) reason += "; " + no_plan;
        } else {
            std::string what = m.directory + ": nothing this pace-stream can run (it runs " +
                               (has("tensorrt") ? std::string("a TensorRT plan") : std::string("")) +
                               (has("tensorrt") && has("openvino") ? " or " : "") +
                               (has("openvino") ? std::string("an OpenVINO IR") : std::string("")) + ")";
            if (plan && !has("tensorrt"))
                what += "; its TensorRT plan " + record->plan + " (" + record->precision +
                        ", engine check passed) needs a pace-stream built with -DPACE_WITH_TENSORRT=ON";
            else if (!plan_issue.empty())
                what += "; " + no_plan;
            else
                what += "; export with --target openvino or x86, or build a plan with pace-stream --build-engine";
            throw Error(what);
        }
    } else {
        reason = backend + ": requested";
    }
#ifdef PACE_WITH_TENSORRT
    if (backend == "tensorrt") {
        if (!plan && !plan_issue.empty()) throw Error("backend tensorrt: " + plan_issue + "; " + rebuild);
        if (!plan) {
            throw Error(m.directory + ": no TensorRT plan beside the export; run pace-stream "
                        "--build-engine --model " + m.directory + " (or pace-edge build-engine) on the device");
        }
        if (requested_auto && has("openvino") && xml) {
            try {
                return make_tensorrt_backend(m, *plan, threads);
            } catch (const Error& e) {  // no GPU, or a plan for another TensorRT / GPU
                backend = "openvino";
                reason = "auto: TensorRT plan unusable (" + std::string(e.what()) + "); OpenVINO IR " +
                         xml->path + " (" + xml->precision + ") instead";
            }
        } else {
            return make_tensorrt_backend(m, *plan, threads);
        }
    }
#endif
#ifdef PACE_WITH_OPENVINO
    if (backend == "openvino") {
        if (xml == nullptr) {
            throw Error(m.directory + ": no OpenVINO IR in the export; export with --target "
                        "openvino or x86");
        }
        if (reason == "openvino: requested") reason += " (" + xml->path + ", " + xml->precision + ")";
        return make_openvino_backend(m, *xml, threads);
    }
#endif
    (void)threads;
    (void)requested_auto;
    throw Error("backend " + backend + " is not built into this pace-stream");
}

std::vector<double> softmax(const std::vector<float>& logits, size_t rows, size_t classes) {
    std::vector<double> out(rows * classes);
    for (size_t r = 0; r < rows; ++r) {
        const float* z = logits.data() + r * classes;
        double top = -INFINITY;
        for (size_t c = 0; c < classes; ++c) top = std::max(top, double(z[c]));
        double* e = out.data() + r * classes;
        for (size_t c = 0; c < classes; ++c) e[c] = std::exp(double(z[c]) - top);
        const double total = pairwise_sum(e, classes);
        for (size_t c = 0; c < classes; ++c) e[c] /= total;
    }
    return out;
}

}  // namespace pace
