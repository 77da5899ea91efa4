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

std::vector<FailedGate> failed_gates(const Json& doc) {
    std::vector<FailedGate> out;
    const auto text = [](const Json* v) { return v && v->is_string() ? v->get<std::string>() : "?"; };
    const Json* status = json::find(doc, "status");
    if (const Json* failed = status ? json::find(*status, "failed_gates") : nullptr) {
        const Json* problems = json::find(*status, "problems");
        for (const Json& gate : json::array(*failed, "status.failed_gates")) {
            const std::string name = json::string(gate, "status.failed_gates entry");
            const Json* problem = problems ? json::find(*problems, name) : nullptr;
            out.push_back({name, problem && problem->is_string() ? problem->get<std::string>() : ""});
        }
        return out;
    }
    // Written before the status was recorded: failed parity rows and a failed accuracy gate.
    std::string parity;
    if (const Json* rows = json::find(doc, "parity"); rows && rows->is_array()) {
        for (const Json& row : *rows) {
            if (const Json* passed = json::find(row, "passed"); !(passed && *passed == true))
                parity += (parity.empty() ? "" : "; ") + text(json::find(row, "artefact")) + " on " +
                          text(json::find(row, "runtime"));
        }
    }
    if (!parity.empty()) out.push_back({"parity", parity});
    if (const Json* accuracy = json::find(doc, "accuracy"); accuracy && !accuracy->empty()) {
        if (const Json* passed = json::find(*accuracy, "passed"); !(passed && *passed == true))
            out.push_back({"accuracy", "on " + text(json::find(*accuracy, "data"))});
    }
    return out;
}

void refuse_unsupported_preprocessing(const Manifest& m) {
    if (m.native_preprocessing) return;
    throw BundleError(join(m.directory, kManifestFile) + ": pace-stream cannot run this export's "
                      "preprocessing step " + (m.native_step.empty() ? "(unnamed)" : m.native_step) +
                      (m.native_reason.empty() ? std::string() : " (" + m.native_reason + ")"));
}

void refuse_failed_export(const Manifest& m) {
    if (m.failed_gates.empty()) return;
    std::string names, detail;
    for (const FailedGate& g : m.failed_gates) {
        names += (names.empty() ? "" : " and ") + g.name;
        detail += (detail.empty() ? "" : "; ") + (g.problem.empty() ? g.name : g.name + ": " + g.problem);
    }
    throw BundleError(m.directory + " failed its " + names + " gate" +
                      (m.failed_gates.size() > 1 ? "s" : "") + " (" + detail +
                      "); --allow-failed runs it anyway");
}

Manifest parse_manifest(const std::string& text, const std::string& directory) {
    const std::string where = join(directory, kManifestFile);
    Json doc;
    try {
        doc = json::parse(text);
    } catch (const JsonError& e) {
        throw BundleError(where + ": not valid JSON (" + e.what() + ")");
    }
    const Json* format = json::find(doc, "format");
    if (format == nullptr || !format->is_string() || *format != kManifestFormat)
        throw BundleError(where + ": not a pace-edge export manifest");
    const Json* version = json::find(doc, "format_version");
    if (version == nullptr || !version->is_number_integer() ||
        version->get<long long>() > kManifestFormatVersion) {
        throw BundleError(where + ": export format " +
                          (version != nullptr ? json::dump(*version) : std::string("None")) +
                          " is newer than this runtime understands (" +
                          std::to_string(kManifestFormatVersion) + "); rebuild pace-stream");
    }
    Manifest m;
    m.directory = directory;
    try {
        m.target = json::string(json::at(doc, "target"), "target");
        m.precision = json::string(json::at(doc, "precision"), "precision");
        for (const Json& a : json::array(json::at(doc, "artefacts"), "artefacts")) {
            Artefact art;
            art.path = json::string(json::at(a, "path"), "artefact path");
            art.kind = json::string(json::at(a, "kind"), "artefact kind");
            art.precision = json::string(json::at(a, "precision"), "artefact precision");
            art.sha256 = json::string(json::at(a, "sha256"), "artefact sha256");
            if (const Json* b = json::find(a, "bytes")) art.bytes = json::integer(*b, "artefact bytes");
            check_relative(where, art.path);
            m.artefacts.push_back(art);
        }
        const Json& in = json::object(json::at(doc, "input"), "input");
        m.input_name = json::string(json::at(in, "name"), "input name");
        const long long length = json::integer(json::at(in, "length"), "input length");
        const Json& batch = json::at(in, "batch");
        if (batch == "dynamic") {
            m.batch = 0;
        } else {
            m.batch = json::integer(batch, "input batch");
            if (m.batch < 1) throw JsonError("input batch must be positive or \"dynamic\"");
        }
        for (const Json& v : json::array(json::at(in, "axis"), "input axis"))
            m.axis.push_back(json::number(v, "input axis value"));
        m.preprocessing = json::array(json::at(in, "preprocessing"), "input preprocessing");
        if (const Json* dtype = json::find(in, "dtype"); dtype && json::string(*dtype, "input dtype") != "float32")
            throw JsonError("input dtype must be float32, got " + dtype->get<std::string>());
        const Json& out = json::object(json::at(doc, "output"), "output");
        m.output_name = json::string(json::at(out, "name"), "output name");
        const long long classes = json::integer(json::at(out, "classes"), "output classes");
        if (const Json* kind = json::find(out, "kind"); kind && json::string(*kind, "output kind") != "logits")
            throw JsonError("output kind must be logits, got " + kind->get<std::string>());
        for (const Json& c : json::array(json::at(doc, "classes"), "classes"))
            m.classes.push_back(json::string(c, "class name"));
        if (const Json* rt = json::find(doc, "runtime"); rt && !rt->is_null())
            m.runtime = json::object(*rt, "runtime");
        if (length < 2 || size_t(length) != m.axis.size())
            throw JsonError("input length " + std::to_string(length) + " does not match its axis (" +
                            std::to_string(m.axis.size()) + " points)");
        if (classes < 1 || size_t(classes) != m.classes.size())
            throw JsonError("output classes " + std::to_string(classes) + " does not match the " +
                            std::to_string(m.classes.size()) + " class names");
        m.input_length = size_t(length);
        m.num_classes = size_t(classes);
        m.failed_gates = failed_gates(doc);
        if (const Json* native = json::find(m.runtime, "pace-stream")) {
            const Json* runs = json::find(json::object(*native, "runtime.pace-stream"), "preprocessing");
            m.native_preprocessing = runs == nullptr || json::boolean(*runs, "runtime.pace-stream.preprocessing");
            if (const Json* step = json::find(*native, "step"); step && !step->is_null())
                m.native_step = json::string(*step, "runtime.pace-stream.step");
            if (const Json* reason = json::find(*native, "reason"); reason && !reason->is_null())
                m.native_reason = json::string(*reason, "runtime.pace-stream.reason");
        }
    } catch (const JsonError& e) {
        throw BundleError(where + ": malformed manifest (" + e.what() + ")");
    }
    m.raw = std::move(doc);
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
