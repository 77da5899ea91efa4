#include "pace/manifest.hpp"

#include <sys/stat.h>

#include <fstream>
#include <sstream>
#include <vector>

#include "pace/errors.hpp"
#include "pace/hash.hpp"

namespace pace {

namespace {

std::string join(const std::string& dir, const std::string& name) {
    if (dir.empty()) return name;
    return dir.back() == '/' ? dir + name : dir + "/" + name;
}

bool is_file(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

// pace_edge.export.manifest._safe_relative: no absolute paths, no "..", not empty.
void check_relative(const std::string& manifest_path, const std::string& name) {
    bool bad = name.empty() || name.front() == '/';
    std::stringstream parts(name);
    std::string part;
    bool any = false;
    while (std::getline(parts, part, '/')) {
        if (part == "..") bad = true;
        if (!part.empty() && part != ".") any = true;
    }
    if (bad || !any)
        throw BundleError(manifest_path + ": artefact path '" + name + "' leaves the export");
}

std::string base_name(const std::string& path) {
    const size_t slash = path.find_last_of('/');
    return slash == std::string::npos ? path : path.substr(slash + 1);
}

bool is_hex64(const std::string& s) {
    if (s.size() != 64) return false;
    for (char c : s)
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
    return true;
}

constexpr const char* kReexportHint =
    "exports written by earlier pace-edge versions lack it; re-export the bundle with "
    "pace-edge export";

}  // namespace

void verify_digest(const std::string& path, std::string_view data, const std::string& missing_hint) {
    const std::string sidecar = path + ".sha256";
    const std::string name = base_name(path);
    if (!is_file(sidecar))
        throw BundleError(sidecar + " is missing: " + name + " is not covered by a digest; " +
                          missing_hint);
    std::ifstream in(sidecar, std::ios::binary);
    std::vector<std::string> fields;
    for (std::string field; in >> field;) fields.push_back(field);
    if (in.bad()) throw BundleError(sidecar + ": unreadable digest");
    if (fields.size() != 2 || !is_hex64(fields[0]))
        throw BundleError(sidecar + ": malformed digest (expected '<sha256>  " + name + "')");
    const std::string listed = fields[1].empty() || fields[1][0] != '*' ? fields[1] : fields[1].substr(1);
    if (listed != name) throw BundleError(sidecar + ": digest of '" + fields[1] + "', not of " + name);
    const std::string actual = sha256_hex(data);
    if (actual != fields[0])
        throw BundleError(path + ": sha256 " + actual.substr(0, 12) + "… does not match " +
                          base_name(sidecar) + " (" + fields[0].substr(0, 12) + "…): " + name +
                          " was edited after it was written");
}

void write_digest(const std::string& path, std::string_view data) {
    const std::string sidecar = path + ".sha256";
    std::ofstream out(sidecar, std::ios::binary | std::ios::trunc);
    out << sha256_hex(data) << "  " << base_name(path) << "\n";
    if (!out) throw Error(sidecar + ": cannot write");
}

const Artefact* Manifest::find_artefact(const std::string& kind) const {
    for (const Artefact& a : artefacts)
        if (a.kind == kind) return &a;
    return nullptr;
}

std::string Manifest::artefact_path(const std::string& kind) const {
    if (const Artefact* a = find_artefact(kind)) return join(directory, a->path);
    std::string kinds;
    for (const Artefact& a : artefacts) kinds += (kinds.empty() ? "" : ", ") + a.kind;
    throw BundleError("export has no " + kind + " artefact (it has: " + kinds + ")");
}

Manifest parse_manifest(const std::string& text, const std::string& directory) {
    const std::string where = join(directory, kManifestFile);
    json::Value doc;
    try {
        doc = json::parse(text);
    } catch (const JsonError& e) {
        throw BundleError(where + ": not valid JSON (" + e.what() + ")");
    }
    const json::Value* format = doc.find("format");
    if (!doc.is_object() || format == nullptr || !format->is_string() ||
        format->as_string() != kManifestFormat) {
        throw BundleError(where + ": not a pace-edge export manifest");
    }
    const json::Value* version = doc.find("format_version");
    if (version == nullptr || !version->is_integer() ||
        version->as_number() > kManifestFormatVersion) {
        throw BundleError(where + ": export format " +
                          (version != nullptr ? version->dump() : std::string("None")) +
                          " is newer than this runtime understands (" +
                          std::to_string(kManifestFormatVersion) + "); rebuild pace-stream");
    }
    Manifest m;
    m.directory = directory;
    m.raw = doc;
    try {
        m.target = doc.at("target").as_string("target");
        m.precision = doc.at("precision").as_string("precision");
        for (const json::Value& a : doc.at("artefacts").as_array("artefacts")) {
            Artefact art;
            art.path = a.at("path").as_string("artefact path");
            art.kind = a.at("kind").as_string("artefact kind");
            art.precision = a.at("precision").as_string("artefact precision");
            art.sha256 = a.at("sha256").as_string("artefact sha256");
            if (const json::Value* b = a.find("bytes")) art.bytes = b->as_integer("artefact bytes");
            check_relative(where, art.path);
            m.artefacts.push_back(art);
        }
        const json::Value& in = doc.at("input");
        m.input_name = in.at("name").as_string("input name");
        const long long length = in.at("length").as_integer("input length");
        const json::Value& batch = in.at("batch");
        if (batch.is_string() && batch.as_string() == "dynamic") {
            m.batch = 0;
        } else {
            m.batch = batch.as_integer("input batch");
            if (m.batch < 1) throw JsonError("input batch must be positive or \"dynamic\"");
        }
        for (const json::Value& v : in.at("axis").as_array("input axis"))
            m.axis.push_back(v.as_number("input axis value"));
        m.preprocessing = in.at("preprocessing");
        m.preprocessing.as_array("input preprocessing");
        if (const json::Value* dtype = in.find("dtype"); dtype && dtype->as_string("input dtype") != "float32")
            throw JsonError("input dtype must be float32, got " + dtype->as_string());
        const json::Value& out = doc.at("output");
        m.output_name = out.at("name").as_string("output name");
        const long long classes = out.at("classes").as_integer("output classes");
        if (const json::Value* kind = out.find("kind"); kind && kind->as_string("output kind") != "logits")
            throw JsonError("output kind must be logits, got " + kind->as_string());
        for (const json::Value& c : doc.at("classes").as_array("classes"))
            m.classes.push_back(c.as_string("class name"));
        if (const json::Value* rt = doc.find("runtime")) m.runtime = *rt;
        if (length < 2 || size_t(length) != m.axis.size())
            throw JsonError("input length " + std::to_string(length) + " does not match its axis (" +
                            std::to_string(m.axis.size()) + " points)");
        if (classes < 1 || size_t(classes) != m.classes.size())
            throw JsonError("output classes " + std::to_string(classes) + " does not match the " +
                            std::to_string(m.classes.size()) + " class names");
        m.input_length = size_t(length);
        m.num_classes = size_t(classes);
    } catch (const JsonError& e) {
        throw BundleError(where + ": malformed manifest (" + e.what() + ")");
    }
    return m;
}

Manifest load_manifest(const std::string& directory, const TrustedKeys* trusted) {
    const std::string path = join(directory, kManifestFile);
    if (!is_file(path))
        throw BundleError(directory + ": not an export directory (" + kManifestFile + " is missing)");
    std::ifstream in(path, std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    if (!in) throw BundleError(path + ": cannot be read");
    const std::string bytes = text.str();
    verify_digest(path, bytes, kReexportHint);
    if (trusted != nullptr) verify_signature(path, bytes, *trusted);
    Manifest m = parse_manifest(bytes, directory);
    for (const Artefact& a : m.artefacts) {
        const std::string file = join(directory, a.path);
        if (!is_file(file))
            throw BundleError(directory + ": artefact " + a.path + " listed in the manifest is missing");
        const std::string digest = sha256_file(file);
        if (digest != a.sha256) {
            throw BundleError(file + ": sha256 " + digest.substr(0, 12) +
                              "… does not match the manifest (" + a.sha256.substr(0, 12) +
                              "…): the file was altered or replaced");
        }
    }
    return m;
}

}  // namespace pace
