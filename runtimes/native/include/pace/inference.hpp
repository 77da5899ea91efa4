// The inference interface: one model on one runtime, fed preprocessed float32 spectra,
// returning logits. Chunking to the model's batch limits and zero-padding for fixed-batch
// models live in the base class, as in pace_edge.runtimes.base.Runner.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "pace/manifest.hpp"

namespace pace {

class Backend {
public:
    virtual ~Backend() = default;

    // Logits (rows × classes, row-major) of `rows` preprocessed spectra (rows × length).
    // With features requested, features() then holds their rows × dim whitened features.
    std::vector<float> infer(const float* inputs, size_t rows);
    // Also read the graph output `name` (rows × dim) on every inference, for the "unknown"
    // detector; BundleError when the model has no such output or the backend cannot read it.
    virtual void request_features(const std::string& name, size_t dim);
    const std::vector<float>& features() const { return features_; }
    // Run `n` inferences of one zero spectrum (first-call allocations, autotuning).
    void warmup(int n = 3);

    const std::string& name() const { return name_; }
    const std::string& precision() const { return precision_; }
    size_t input_length() const { return length_; }
    size_t classes() const { return classes_; }
    // One line for the log: device, threads, inference precision as the runtime reports them.
    virtual std::string describe() const = 0;

protected:
    Backend(std::string name, std::string precision, size_t length, size_t classes)
        : name_(std::move(name)), precision_(std::move(precision)), length_(length), classes_(classes) {}
    // Logits of one batch of exactly `rows` rows, min_batch_ <= rows <= max_batch_.
    virtual std::vector<float> run(const float* inputs, size_t rows) = 0;
    void set_precision(std::string precision) { precision_ = std::move(precision); }

    size_t min_batch_ = 1;
    std::optional<size_t> max_batch_;  // nullopt: dynamic
    size_t feature_dim_ = 0;            // > 0: run() also fills batch_features_
    std::vector<float> batch_features_;  // the last run()'s rows × feature_dim_ features

private:
    std::string name_, precision_;
    size_t length_, classes_;
    std::vector<float> features_;
};

// Backends compiled into this build ("openvino", "tensorrt").
std::vector<std::string> available_backends();

// Build the backend for a verified manifest: "auto" (tensorrt when built in and the export
// has a plan, else openvino), "openvino"/"ov" or "tensorrt"/"trt". `threads` (0 = runtime
// default) sets the CPU threads. `reason` receives why this backend and artefact were chosen.
std::unique_ptr<Backend> make_backend(const Manifest& manifest, const std::string& backend,
                                      int threads, std::string& reason);

#ifdef PACE_WITH_OPENVINO
std::unique_ptr<Backend> make_openvino_backend(const Manifest& manifest, const Artefact& xml,
                                               int threads);
#endif
#ifdef PACE_WITH_TENSORRT
std::unique_ptr<Backend> make_tensorrt_backend(const Manifest& manifest, const std::string& plan,
                                               int threads);
#endif

// Row-wise softmax in float64 (pace_edge.streaming.pipeline's order of operations).
std::vector<double> softmax(const std::vector<float>& logits, size_t rows, size_t classes);

}  // namespace pace
