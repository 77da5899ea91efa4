#include "pace/engine_record.hpp"

#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "pace/errors.hpp"
#include "pace/hash.hpp"

namespace pace {

namespace {

constexpr const char* kRebuild = "rebuild it with pace-edge build-engine (or pace-stream --build-engine)";

std::string dir_of(const Manifest& m) {
    return m.directory.empty() || m.directory.back() == '/' ? m.directory : m.directory + "/";
}

bool is_file(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

long long file_size(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 ? (long long)st.st_size : -1;
}

bool safe_relative(const std::string& name) {
    if (name.empty() || name.front() == '/') return false;
    std::stringstream parts(name);
    std::string part;
    while (std::getline(parts, part, '/'))
        if (part == "..") return false;
    return true;
}

}  // namespace

std::string plan_path(const Manifest& m, const EngineRecord& r) { return dir_of(m) + r.plan; }

std::optional<EngineRecord> read_engine_record(const Manifest& m, const std::string& name) {
    const std::string path = dir_of(m) + name;
    if (!is_file(path)) return std::nullopt;
    std::ifstream in(path, std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    if (!in) throw BundleError(path + ": cannot be read");
    const std::string bytes = text.str();
    verify_digest(path, bytes, kRebuild);
    EngineRecord r;
    try {
        r.doc = json::parse(bytes);
        const json::Value* format = r.doc.find("format");
        if (!r.doc.is_object() || format == nullptr || !format->is_string() ||
            format->as_string() != kEngineFormat)
            throw BundleError(path + ": not a pace-edge engine record");
        const json::Value* version = r.doc.find("format_version");
        if (version == nullptr || !version->is_integer() || version->as_number() > kEngineFormatVersion)
            throw BundleError(path + ": engine record format " +
                              (version ? version->dump() : std::string("None")) +
                              " is newer than this pace-stream understands (" +
                              std::to_string(kEngineFormatVersion) + ")");
        r.plan = r.doc.at("plan").as_string("plan");
        r.plan_sha256 = r.doc.at("plan_sha256").as_string("plan_sha256");
        r.plan_bytes = r.doc.at("plan_bytes").as_integer("plan_bytes");
        r.source_onnx = r.doc.at("source_onnx").as_string("source_onnx");
        r.source_onnx_sha256 = r.doc.at("source_onnx_sha256").as_string("source_onnx_sha256");
        r.precision = r.doc.at("precision").as_string("precision");
        r.tensorrt_version = r.doc.at("tensorrt_version").as_string("tensorrt_version");
        r.gpu_name = r.doc.at("gpu_name").as_string("gpu_name");
        r.compute_capability = r.doc.at("compute_capability").as_string("compute_capability");
        const json::Value* passed = r.doc.at("check").find("passed");
        r.check_passed = passed != nullptr && passed->is_bool() && passed->as_bool();
    } catch (const JsonError& e) {
        throw BundleError(path + ": malformed engine record (" + e.what() + ")");
    }
    if (!safe_relative(r.plan)) throw BundleError(path + ": plan path '" + r.plan + "' leaves the export");
    return r;
}

std::optional<EngineRecord> device_plan(const Manifest& m) {
    std::optional<EngineRecord> r = read_engine_record(m);
    if (!r) return r;
    const std::string plan = plan_path(m, *r);
    if (!is_file(plan))
        throw BundleError(plan + ": the plan recorded in " + kEngineFile + " is missing; " + kRebuild);
    const std::string digest = sha256_file(plan);
    if (digest != r->plan_sha256 || file_size(plan) != r->plan_bytes) {
        throw BundleError(plan + ": sha256 " + digest.substr(0, 12) + "… does not match " + kEngineFile + " (" +
                          r->plan_sha256.substr(0, 12) + "…): the plan was replaced or altered after it was built; " +
                          kRebuild);
    }
    return r;
}

std::string plan_problem(const Manifest& m, const EngineRecord& r) {
    for (const Artefact& a : m.artefacts) {
        if (a.path != r.source_onnx || (a.kind != "onnx" && a.kind != "onnx-qdq")) continue;
        if (a.sha256 != r.source_onnx_sha256)
            return r.plan + " was built from " + r.source_onnx + " with sha256 " + r.source_onnx_sha256.substr(0, 12) +
                   "…, not from this export's (" + a.sha256.substr(0, 12) + "…)";
        if (!r.check_passed) return std::string(kEngineFile) + " records no passed engine check for " + r.plan;
        return "";
    }
    return r.plan + " was built from " + r.source_onnx + ", which this export's manifest does not list";
}

void write_engine_record(const Manifest& m, const json::Value& record, const std::string& name) {
    const std::string path = dir_of(m) + name, tmp = path + ".tmp";
    const std::string text = record.dump(2) + "\n";
    {
        std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
        out << text;
        if (!out) throw Error(tmp + ": cannot write (" + std::strerror(errno) + ")");
    }
    if (std::rename(tmp.c_str(), path.c_str()) != 0)
        throw Error(path + ": cannot write (" + std::strerror(errno) + ")");
    write_digest(path, text);
}

void remove_engine_record(const Manifest& m, const std::string& name) {
    const std::string path = dir_of(m) + name;
    std::remove(path.c_str());
    std::remove((path + ".sha256").c_str());
}

}  // namespace pace
