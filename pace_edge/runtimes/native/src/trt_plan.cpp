#include "pace/trt_plan.hpp"

#include <sys/stat.h>

#include <cctype>
#include <cerrno>
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

bool is_file(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

bool safe_relative(const std::string& name) {
    if (name.empty() || name.front() == '/') return false;
    size_t i = 0;
    while (i <= name.size()) {
        size_t j = name.find('/', i);
        if (name.substr(i, j == std::string::npos ? j : j - i) == "..") return false;
        if (j == std::string::npos) break;
        i = j + 1;
    }
    return true;
}

}  // namespace

Plan read_plan(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw BundleError(path + ": cannot read plan (" + std::strerror(errno) + ")");
    unsigned char prefix[16];
    in.read(reinterpret_cast<char*>(prefix), sizeof prefix);
    if (in.gcount() < 16 || std::memcmp(prefix, kMagic, 8) != 0) {
        throw BundleError(path + ": not a pace-edge TensorRT plan (no PACETRT header; a raw "
                          "engine from trtexec must be rebuilt with `pace-edge build-engine`)");
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
                    "; rebuild it here with `pace-edge build-engine`");
    }
}

std::optional<std::string> find_plan(const Manifest& m) {
    const std::string dir = m.directory.empty() || m.directory.back() == '/' ? m.directory
                                                                            : m.directory + "/";
    for (const Artefact& a : m.artefacts)
        if (a.kind == "tensorrt-plan" || a.kind == "tensorrt-engine") return dir + a.path;
    std::string name = "model.plan";
    if (const json::Value* trt = m.runtime.find("tensorrt")) {
        if (const json::Value* f = trt->find("plan_file"); f && f->is_string()) name = f->as_string();
    }
    if (safe_relative(name) && is_file(dir + name)) return dir + name;
    return std::nullopt;
}

}  // namespace pace
