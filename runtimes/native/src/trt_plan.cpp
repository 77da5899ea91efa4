#include "pace/trt_plan.hpp"

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>

#include "pace/errors.hpp"
#include "pace/hash.hpp"
#include "pace/json.hpp"

namespace pace {

namespace {

constexpr char kMagic[8] = {'P', 'A', 'C', 'E', 'T', 'R', 'T', '\0'};
constexpr std::uint32_t kMaxHeader = 1 << 20;

std::uint32_t u32(const unsigned char* p) {
    return std::uint32_t(p[0]) | std::uint32_t(p[1]) << 8 | std::uint32_t(p[2]) << 16 |
           std::uint32_t(p[3]) << 24;
}

std::string str_field(const json::Value& doc, const char* key, bool required = true) {
    const json::Value* v = doc.find(key);
    if (v == nullptr) {
        if (required) throw JsonError(std::string("missing field '") + key + "'");
        return "";
    }
    return v->as_string(key);
}

// (major, minor, patch) of "10.3.0.30"; the build number is ignored.
std::vector<int> release(const std::string& version) {
    std::vector<int> out;
    size_t i = 0;
    while (out.size() < 3) {
        size_t j = version.find('.', i);
        const std::string part = version.substr(i, j == std::string::npos ? j : j - i);
        std::string digits;
        for (char c : part)
            if (std::isdigit(static_cast<unsigned char>(c))) digits += c;
        out.push_back(digits.empty() ? 0 : std::stoi(digits));
        if (j == std::string::npos) break;
        i = j + 1;
    }
    out.resize(3, 0);
    return out;
}

}  // namespace

void write_plan(const std::string& path, const std::vector<char>& engine, PlanHeader& h) {
    if (engine.empty()) throw Error("refusing to write an empty TensorRT engine");
    h.engine_sha256 = sha256_hex(std::string_view(engine.data(), engine.size()));
    h.engine_bytes = (long long)engine.size();
    auto str = [](const std::string& s) { return json::Value::string(s); };
    auto integer = [](long long v) { return json::Value::number(double(v), true); };
    auto list = [&](const std::vector<std::string>& v) {
        json::Array a;
        for (const auto& s : v) a.push_back(str(s));
        return json::Value::array(std::move(a));
    };
    json::Object batch;
    json::set(batch, "max", integer(h.max_batch));
    json::set(batch, "min", integer(h.min_batch));
    json::set(batch, "opt", integer(h.opt_batch));
    json::Object o;
    json::set(o, "batch", json::Value::object(std::move(batch)));
    json::set(o, "builder_flags", list(h.builder_flags));
    json::set(o, "cleared_flags", list(h.cleared_flags));
    json::set(o, "compute_capability", str(h.compute_capability));
    json::set(o, "created", str(h.created));
    json::set(o, "engine_bytes", integer(h.engine_bytes));
    json::set(o, "engine_sha256", str(h.engine_sha256));
    json::set(o, "gpu_name", str(h.gpu_name));
    json::set(o, "input_length", integer(h.input_length));
    json::set(o, "input_name", str(h.input_name));
    json::set(o, "pace_edge", str("pace-stream"));
    json::set(o, "precision", str(h.precision));
    json::set(o, "source_onnx", str(h.source_onnx));
    json::set(o, "source_onnx_sha256", str(h.source_onnx_sha256));
    json::set(o, "tensorrt_version", str(h.tensorrt_version));
    json::set(o, "workspace_mb", integer(h.workspace_mb));
    const std::string blob = json::Value::object(std::move(o)).dump();
    unsigned char prefix[16];
    std::memcpy(prefix, kMagic, 8);
    const std::uint32_t fields[2] = {std::uint32_t(kPlanFormatVersion), std::uint32_t(blob.size())};
    for (int f = 0; f < 2; ++f)
        for (int b = 0; b < 4; ++b) prefix[8 + 4 * f + b] = (unsigned char)(fields[f] >> (8 * b) & 0xff);
    const std::string tmp = path + ".tmp";
    {
        std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
        out.write(reinterpret_cast<const char*>(prefix), sizeof prefix);
        out.write(blob.data(), std::streamsize(blob.size()));
        out.write(engine.data(), std::streamsize(engine.size()));
        if (!out) throw Error(tmp + ": cannot write plan (" + std::strerror(errno) + ")");
    }
    if (std::rename(tmp.c_str(), path.c_str()) != 0)
        throw Error(path + ": cannot write plan (" + std::strerror(errno) + ")");
}

Plan read_plan(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw BundleError(path + ": cannot read plan (" + std::strerror(errno) + ")");
    unsigned char prefix[16];
    in.read(reinterpret_cast<char*>(prefix), sizeof prefix);
    if (in.gcount() < 16 || std::memcmp(prefix, kMagic, 8) != 0) {
        throw BundleError(path + ": not a pace-edge TensorRT plan (no PACETRT header); build it "
                          "with `pace-stream --build-engine` or `pace-edge build-engine`");
    }
    const std::uint32_t version = u32(prefix + 8), length = u32(prefix + 12);
    if (version > kPlanFormatVersion) {
        throw BundleError(path + ": plan format " + std::to_string(version) +
                          " is newer than this pace-stream understands (" +
                          std::to_string(kPlanFormatVersion) + ")");
    }
    if (length > kMaxHeader)
        throw BundleError(path + ": plan header of " + std::to_string(length) + " bytes is implausible");
    std::string blob(length, '\0');
    in.read(blob.data(), std::streamsize(length));
    if (std::uint32_t(in.gcount()) != length) throw BundleError(path + ": plan header is truncated");
    Plan plan;
    try {
        const json::Value doc = json::parse(blob);
        PlanHeader& h = plan.header;
        h.tensorrt_version = str_field(doc, "tensorrt_version");
        h.gpu_name = str_field(doc, "gpu_name");
        h.compute_capability = str_field(doc, "compute_capability");
        h.precision = str_field(doc, "precision");
        h.source_onnx = str_field(doc, "source_onnx");
        h.source_onnx_sha256 = str_field(doc, "source_onnx_sha256");
        if (doc.find("input_name")) h.input_name = str_field(doc, "input_name");
        if (const json::Value* v = doc.find("input_length")) h.input_length = v->as_integer("input_length");
        h.engine_sha256 = str_field(doc, "engine_sha256", false);
        if (const json::Value* v = doc.find("engine_bytes")) h.engine_bytes = v->as_integer("engine_bytes");
    } catch (const JsonError& e) {
        throw BundleError(path + ": corrupt plan header (" + e.what() + ")");
    }
    plan.engine.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    if ((long long)plan.engine.size() != plan.header.engine_bytes) {
        throw BundleError(path + ": engine is " + std::to_string(plan.engine.size()) +
                          " bytes, header says " + std::to_string(plan.header.engine_bytes) +
                          " (truncated or altered)");
    }
    if (sha256_hex(std::string_view(plan.engine.data(), plan.engine.size())) != plan.header.engine_sha256)
        throw BundleError(path + ": engine sha256 does not match its header (altered)");
    return plan;
}

void check_plan_source(const PlanHeader& h, const Manifest& m, const std::string& path) {
    for (const Artefact& a : m.artefacts) {
        if (a.path != h.source_onnx) continue;
        if (a.sha256 != h.source_onnx_sha256) {
            throw Error("TensorRT plan was built from " + h.source_onnx + " with sha256 " +
                        h.source_onnx_sha256.substr(0, 12) + "…, not from this export's (" +
                        a.sha256.substr(0, 12) + "…); rebuild it with `pace-edge build-engine`");
        }
        return;
    }
    throw BundleError(path + ": built from " + h.source_onnx + ", which the export's manifest "
                      "does not list; rebuild it with pace-edge build-engine");
}

void check_plan_compatible(const PlanHeader& h, const std::string& tensorrt_version,
                           const std::string& gpu_name, const std::string& compute_capability) {
    std::string problems;
    auto add = [&](const std::string& p) { problems += (problems.empty() ? "" : "; ") + p; };
    if (release(h.tensorrt_version) != release(tensorrt_version))
        add("built with TensorRT " + h.tensorrt_version + ", running " + tensorrt_version);
    if (compute_capability != h.compute_capability) {
        add("built for compute capability " + h.compute_capability + ", this GPU is " +
            compute_capability);
    }
    if (gpu_name != h.gpu_name) add("built on '" + h.gpu_name + "', this GPU is '" + gpu_name + "'");
    if (!problems.empty()) {
        throw Error("TensorRT plan does not match this machine: " + problems +
                    "; pace-stream does not rewrite an export: rebuild it here with "
                    "`pace-stream --build-engine --model DIR` or `pace-edge build-engine --export DIR`");
    }
}

}  // namespace pace
