// TensorRT backend (built only with -DPACE_WITH_TENSORRT=ON): a plan written by
// `pace-edge build-engine`, checked (engine sha256, source ONNX, TensorRT version, GPU) and
// run with the TensorRT 10 name-based API: IRuntime::deserializeCudaEngine,
// ICudaEngine::getNbIOTensors / getIOTensorName / getTensorIOMode, and
// IExecutionContext::setInputShape / setTensorAddress / enqueueV3 on one CUDA stream.
// Every I/O tensor gets an address (enqueueV3 requires it): the logits and, in exports of
// models with an "unknown" detector, the whitened features (read by name when requested).
// Device buffers are allocated once for the largest batch the engine takes.
#include <NvInfer.h>
#include <cuda_runtime_api.h>

#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "pace/errors.hpp"
#include "pace/inference.hpp"
#include "pace/trt_plan.hpp"

#if NV_TENSORRT_MAJOR < 10
#error "the TensorRT backend needs TensorRT 10 or newer (name-based I/O, enqueueV3)"
#endif

namespace pace {

namespace {

void cuda_check(cudaError_t status, const char* what) {
    if (status != cudaSuccess)
        throw InferenceError(std::string("CUDA ") + what + " failed: " + cudaGetErrorName(status));
}

class Logger : public nvinfer1::ILogger {
public:
    void log(Severity severity, const char* message) noexcept override {
        if (severity <= Severity::kWARNING) std::fprintf(stderr, "pace-stream: tensorrt: %s\n", message);
    }
};

std::string running_version() {
    const int v = getInferLibVersion();  // major * 10000 + minor * 100 + patch (TensorRT 10)
    return std::to_string(v / 10000) + "." + std::to_string(v / 100 % 100) + "." + std::to_string(v % 100);
}

class TensorRTBackend : public Backend {
public:
    TensorRTBackend(const Manifest& m, const std::string& path, int threads)
        : Backend("tensorrt", "", m.input_length, m.num_classes) {
        (void)threads;  // a GPU runtime: CPU threads do not apply
        int count = 0;
        if (cudaGetDeviceCount(&count) != cudaSuccess || count < 1)
            throw Error("no NVIDIA GPU is visible to CUDA; the tensorrt backend needs one");
        cudaDeviceProp prop{};
        cuda_check(cudaGetDeviceProperties(&prop, 0), "cudaGetDeviceProperties");
        gpu_ = prop.name;
        while (!gpu_.empty() && gpu_.back() == ' ') gpu_.pop_back();
        const std::string cc = std::to_string(prop.major) + "." + std::to_string(prop.minor);

        Plan plan = read_plan(path);
        check_plan_source(plan.header, m, path);
        check_plan_compatible(plan.header, running_version(), gpu_, cc);
        set_precision(plan.header.precision);

        runtime_.reset(nvinfer1::createInferRuntime(logger_));
        if (!runtime_) throw InferenceError("tensorrt: createInferRuntime failed");
        engine_.reset(runtime_->deserializeCudaEngine(plan.engine.data(), plan.engine.size()));
        if (!engine_) throw BundleError(path + ": TensorRT " + running_version() + " cannot deserialize it");
        check_io(m, path);
        context_.reset(engine_->createExecutionContext());
        if (!context_) throw InferenceError("tensorrt: createExecutionContext failed");
        cuda_check(cudaStreamCreate(&stream_), "cudaStreamCreate");
        const size_t rows = *max_batch_;
        for (auto& [name, tensor] : tensors_) {  // every I/O tensor needs an address
            cuda_check(cudaMalloc(&tensor.device, rows * tensor.row_size * sizeof(float)), "cudaMalloc");
            if (!context_->setTensorAddress(name.c_str(), tensor.device))
                throw InferenceError("tensorrt: setTensorAddress failed for '" + name + "'");
        }
    }

    ~TensorRTBackend() override {
        context_.reset();
        engine_.reset();
        for (auto& [name, tensor] : tensors_)
            if (tensor.device) cudaFree(tensor.device);
        if (stream_) cudaStreamDestroy(stream_);
    }

    void request_features(const std::string& name, size_t dim) override {
        auto it = tensors_.find(name);
        if (it == tensors_.end() || it->second.input)
            throw BundleError("tensorrt: the engine has no output '" + name +
                              "', which the manifest's \"unknown\" detector needs; re-export and rebuild it");
        if (it->second.row_size != dim)
            throw BundleError("tensorrt: output '" + name + "' has " + std::to_string(it->second.row_size) +
                              " values per spectrum, the manifest's detector " + std::to_string(dim));
        features_name_ = name;
        feature_dim_ = dim;
    }

    std::string describe() const override {
        return "tensorrt " + running_version() + " on cuda:0 (" + gpu_ + "), " + precision() +
               " plan, batch " + std::to_string(min_batch_) + ".." + std::to_string(*max_batch_);
    }

protected:
    std::vector<float> run(const float* inputs, size_t rows) override {
        if (dynamic_) {
            const nvinfer1::Dims2 dims{int64_t(rows), int64_t(input_length())};
            if (!context_->setInputShape(input_.c_str(), dims))
                throw InferenceError("tensorrt: the engine refused input shape (" + std::to_string(rows) + ", " +
                                     std::to_string(input_length()) + ")");
        }
        std::vector<float> out(rows * classes());
        cuda_check(cudaMemcpyAsync(tensors_.at(input_).device, inputs, rows * input_length() * sizeof(float),
                                   cudaMemcpyHostToDevice, stream_), "copy to GPU");
        if (!context_->enqueueV3(stream_)) throw InferenceError("tensorrt: enqueueV3 failed (see the TensorRT log)");
        cuda_check(cudaMemcpyAsync(out.data(), tensors_.at(output_).device, out.size() * sizeof(float),
                                   cudaMemcpyDeviceToHost, stream_), "copy from GPU");
        if (feature_dim_ > 0) {
            batch_features_.resize(rows * feature_dim_);
            cuda_check(cudaMemcpyAsync(batch_features_.data(), tensors_.at(features_name_).device,
                                       batch_features_.size() * sizeof(float), cudaMemcpyDeviceToHost, stream_),
                       "copy features from GPU");
        }
        cuda_check(cudaStreamSynchronize(stream_), "cudaStreamSynchronize");
        return out;
    }

private:
    // One I/O tensor: input or output, float32 values per spectrum, its device buffer.
    struct Tensor {
        bool input = false;
        size_t row_size = 0;
        void* device = nullptr;
    };

    void check_io(const Manifest& m, const std::string& path) {
        input_ = m.input_name;
        output_ = m.output_name;
        for (int i = 0; i < engine_->getNbIOTensors(); ++i) {
            const std::string name = engine_->getIOTensorName(i);
            const bool input = engine_->getTensorIOMode(name.c_str()) == nvinfer1::TensorIOMode::kINPUT;
            if (input && name != input_)
                throw BundleError(path + ": engine has an input '" + name + "' besides '" + input_ + "'");
            if (engine_->getTensorDataType(name.c_str()) != nvinfer1::DataType::kFLOAT)
                throw BundleError(path + ": engine tensor '" + name + "' is not float32 (pace-stream feeds and reads float32)");
            const nvinfer1::Dims shape = engine_->getTensorShape(name.c_str());
            size_t row_size = 1;
            for (int d = 1; d < shape.nbDims; ++d) {
                if (shape.d[d] < 0)
                    throw BundleError(path + ": tensor '" + name + "' has a dynamic dimension besides the batch");
                row_size *= size_t(shape.d[d]);
            }
            if (shape.nbDims < 1) throw BundleError(path + ": tensor '" + name + "' has no batch dimension");
            tensors_[name] = Tensor{input, row_size, nullptr};
        }
        auto in = tensors_.find(input_);
        auto out = tensors_.find(output_);
        if (in == tensors_.end() || !in->second.input || out == tensors_.end() || out->second.input)
            throw BundleError(path + ": engine lacks input '" + input_ + "' or output '" + output_ + "'");
        if (out->second.row_size != classes())
            throw BundleError(path + ": output '" + output_ + "' has " + std::to_string(out->second.row_size) +
                              " values per spectrum, the manifest " + std::to_string(classes()) + " classes");
        const nvinfer1::Dims shape = engine_->getTensorShape(input_.c_str());
        if (shape.nbDims != 2 || shape.d[1] != int64_t(input_length()))
            throw BundleError(path + ": input shape does not take spectra of " + std::to_string(input_length()) +
                              " points");
        dynamic_ = shape.d[0] == -1;
        if (dynamic_) {
            const auto lo = engine_->getProfileShape(input_.c_str(), 0, nvinfer1::OptProfileSelector::kMIN);
            const auto hi = engine_->getProfileShape(input_.c_str(), 0, nvinfer1::OptProfileSelector::kMAX);
            min_batch_ = size_t(lo.d[0]);
            max_batch_ = size_t(hi.d[0]);
        } else {
            min_batch_ = size_t(shape.d[0]);
            max_batch_ = min_batch_;
        }
    }

    Logger logger_;
    std::unique_ptr<nvinfer1::IRuntime> runtime_;
    std::unique_ptr<nvinfer1::ICudaEngine> engine_;
    std::unique_ptr<nvinfer1::IExecutionContext> context_;
    cudaStream_t stream_ = nullptr;
    std::map<std::string, Tensor> tensors_;  // every I/O tensor of the engine, by name
    bool dynamic_ = false;
    std::string input_, output_, features_name_, gpu_;
};

}  // namespace

std::unique_ptr<Backend> make_tensorrt_backend(const Manifest& m, const std::string& plan, int threads) {
    return std::make_unique<TensorRTBackend>(m, plan, threads);
}

}  // namespace pace
