// `pace-stream --build-engine`: build an export's TensorRT plan through TensorRT's C++ ONNX
// parser and builder (no Python on the device), check it against ONNX Runtime's logits saved in
// the export (pace/engine_check.hpp) and record it beside the export in engine.json
// (pace/engine_record.hpp), never rewriting manifest.json or its signature; the same plan, check
// and record as `pace-edge build-engine`. TensorRT 10 C++ API: createInferBuilder, createNetworkV2(0)
// (explicit batch is the only mode), nvonnxparser::createParser + parse, IBuilderConfig
// setMemoryPoolLimit(kWORKSPACE) / setFlag(kFP16, kINT8) / clearFlag(kTF32), one optimisation
// profile for a dynamic batch, buildSerializedNetwork. Built only with -DPACE_WITH_TENSORRT=ON.
#include <NvInfer.h>
#include <NvOnnxParser.h>
#include <cuda_runtime_api.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "pace/engine_check.hpp"
#include "pace/engine_record.hpp"
#include "pace/errors.hpp"
#include "pace/inference.hpp"
#include "pace/manifest.hpp"
#include "pace/trt_build.hpp"
#include "pace/trt_plan.hpp"

#if NV_TENSORRT_MAJOR < 10
#error "the TensorRT builder needs TensorRT 10 or newer"
#endif

namespace pace {

namespace {

class BuildLogger : public nvinfer1::ILogger {
public:
    void log(Severity severity, const char* message) noexcept override {
        if (severity <= Severity::kWARNING) std::fprintf(stderr, "pace-stream: tensorrt: %s\n", message);
    }
};

std::string library_version() {
    const int v = getInferLibVersion();  // major * 10000 + minor * 100 + patch (TensorRT 10)
    return std::to_string(v / 10000) + "." + std::to_string(v / 100 % 100) + "." + std::to_string(v % 100);
}

std::vector<char> read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw BundleError(path + ": cannot read (" + std::strerror(errno) + ")");
    return std::vector<char>((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

std::string now() {
    char buf[32];
    const std::time_t t = std::time(nullptr);
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S%z", std::localtime(&t));
    return buf;
}

// The serialized engine of `request`, and the header describing it (engine hash not yet set).
std::vector<char> build(const Manifest& m, const PlanRequest& r, PlanHeader& h) {
    BuildLogger logger;
    std::unique_ptr<nvinfer1::IBuilder> builder(nvinfer1::createInferBuilder(logger));
    if (!builder) throw InferenceError("tensorrt: createInferBuilder failed");
    std::unique_ptr<nvinfer1::INetworkDefinition> network(builder->createNetworkV2(0));
    std::unique_ptr<nvonnxparser::IParser> parser(nvonnxparser::createParser(*network, logger));
    const std::string onnx_path = m.directory + "/" + r.source;
    const std::vector<char> onnx = read_file(onnx_path);
    if (!parser->parse(onnx.data(), onnx.size(), onnx_path.c_str())) {
        std::string errors;
        for (int i = 0; i < parser->getNbErrors(); ++i)
            errors += (i ? "; " : "") + std::string(parser->getError(i)->desc());
        throw Error("TensorRT's ONNX parser rejected " + r.source + ": " + (errors.empty() ? "no details" : errors));
    }
    nvinfer1::ITensor* input = nullptr;
    for (int i = 0; i < network->getNbInputs(); ++i)
        if (m.input_name == network->getInput(i)->getName()) input = network->getInput(i);
    if (input == nullptr) throw Error(r.source + " has no input '" + m.input_name + "'");
    const nvinfer1::Dims dims = input->getDimensions();
    if (dims.nbDims != 2 || dims.d[1] != int64_t(m.input_length))
        throw Error(r.source + ": input is not (batch, " + std::to_string(m.input_length) + ")");

    std::unique_ptr<nvinfer1::IBuilderConfig> config(builder->createBuilderConfig());
    config->setMemoryPoolLimit(nvinfer1::MemoryPoolType::kWORKSPACE, size_t(r.workspace_mb) << 20);
#if NV_TENSORRT_MAJOR < 11
    if (r.int8) {
        config->setFlag(nvinfer1::BuilderFlag::kINT8);  // explicit Q/DQ: the graph's scales
        h.builder_flags.push_back("INT8");
    }
    if (r.fp16) {
        config->setFlag(nvinfer1::BuilderFlag::kFP16);
        h.builder_flags.push_back("FP16");
    }
#else
    if (r.fp16 && !r.int8)
        throw Error("TensorRT 11 has no FP16 builder flag (networks are strongly typed); build fp32 or int8");
#endif
    config->clearFlag(nvinfer1::BuilderFlag::kTF32);  // FP32 layers in IEEE FP32, as ONNX Runtime
    h.cleared_flags.push_back("TF32");
    if (dims.d[0] == -1) {
        nvinfer1::IOptimizationProfile* profile = builder->createOptimizationProfile();
        const int64_t L = int64_t(m.input_length);
        profile->setDimensions(m.input_name.c_str(), nvinfer1::OptProfileSelector::kMIN, nvinfer1::Dims2{r.min_batch, L});
        profile->setDimensions(m.input_name.c_str(), nvinfer1::OptProfileSelector::kOPT, nvinfer1::Dims2{r.opt_batch, L});
        profile->setDimensions(m.input_name.c_str(), nvinfer1::OptProfileSelector::kMAX, nvinfer1::Dims2{r.max_batch, L});
        if (config->addOptimizationProfile(profile) < 0) throw Error("tensorrt: invalid optimisation profile");
    } else if (dims.d[0] != r.min_batch || r.min_batch != r.max_batch) {
        throw Error(r.source + " has a fixed batch of " + std::to_string(dims.d[0]) + ", the profile asks for " +
                    std::to_string(r.min_batch) + "/" + std::to_string(r.opt_batch) + "/" + std::to_string(r.max_batch));
    }
    std::unique_ptr<nvinfer1::IHostMemory> plan(builder->buildSerializedNetwork(*network, *config));
    if (!plan || plan->size() == 0)
        throw InferenceError("TensorRT failed to build an engine from " + r.source + " (see the log above)");
    const char* bytes = static_cast<const char*>(plan->data());
    return std::vector<char>(bytes, bytes + plan->size());
}

}  // namespace

int build_checked_plan(const std::string& export_dir, const std::string& precision, const TrustedKeys* trusted) {
    const Manifest m = load_manifest(export_dir, trusted);  // every artefact's sha256 verified
    const PlanRequest r = plan_request(m, precision);
    const CheckData data = load_check_data(m, r.source);
    const Tolerance tolerance = tolerance_for(m, r.precision);
    int count = 0;
    if (cudaGetDeviceCount(&count) != cudaSuccess || count < 1)
        throw Error("no NVIDIA GPU is visible to CUDA; a TensorRT plan is built on the GPU that runs it");
    cudaDeviceProp prop{};
    if (cudaGetDeviceProperties(&prop, 0) != cudaSuccess) throw Error("cudaGetDeviceProperties failed");

    PlanHeader h;
    h.tensorrt_version = library_version();
    h.gpu_name = prop.name;
    while (!h.gpu_name.empty() && h.gpu_name.back() == ' ') h.gpu_name.pop_back();
    h.compute_capability = std::to_string(prop.major) + "." + std::to_string(prop.minor);
    h.precision = r.precision;
    h.source_onnx = r.source;
    for (const Artefact& a : m.artefacts)
        if (a.path == r.source) h.source_onnx_sha256 = a.sha256;
    h.input_name = m.input_name;
    h.input_length = (long long)m.input_length;
    h.min_batch = r.min_batch;
    h.opt_batch = r.opt_batch;
    h.max_batch = r.max_batch;
    h.workspace_mb = r.workspace_mb;
    h.created = now();
    std::cerr << "pace-stream: building TensorRT " << h.tensorrt_version << " plan from " << r.source << " ("
              << r.precision << ", TF32 off, batch " << r.min_batch << "/" << r.opt_batch << "/" << r.max_batch
              << ", workspace " << r.workspace_mb << " MiB)\n";
    const std::vector<char> engine = build(m, r, h);
    const std::string dir = m.directory + "/", staged = dir + "model.plan.building";
    write_plan(staged, engine, h);

    std::vector<float> logits;
    try {
        std::unique_ptr<Backend> backend = make_tensorrt_backend(m, staged, 0);
        logits = backend->infer(data.spectra.data(), data.count);
    } catch (...) {
        std::remove(staged.c_str());  // a plan that cannot run is not kept
        throw;
    }
    const CheckResult result = compare_logits(data.reference, logits, data.classes, tolerance);
    std::cerr << "pace-stream: engine check against " << r.source << " on " << data.reference_runtime << ": "
              << describe(result) << "\n";
    const std::string builder = "pace-stream --build-engine (TensorRT C++ API)";
    const std::string plan = install_plan(m, staged, h, result, data, builder);  // Error if it failed
    std::cerr << "pace-stream: wrote " << plan << " (" << engine.size() << " bytes; " << h.gpu_name << " sm "
              << h.compute_capability << ") and recorded it with its check in " << dir << kEngineFile << "; "
              << kManifestFile << " is unchanged\n";
    return 0;
}

}  // namespace pace
