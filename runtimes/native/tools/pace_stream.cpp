// pace-stream: classify spectra from a spectrometer on a serial port without Python.
// Same options and JSON-lines output as `pace-edge stream` (OpenVINO / TensorRT backends).
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "pace/dark_file.hpp"
#include "pace/engine_check.hpp"
#include "pace/errors.hpp"
#include "pace/inference.hpp"
#include "pace/json.hpp"
#include "pace/manifest.hpp"
#include "pace/stream.hpp"
#ifdef PACE_WITH_TENSORRT
#include "pace/trt_build.hpp"
#endif

#ifndef PACE_VERSION
#define PACE_VERSION "0.1.0"
#endif

namespace {

// Set by the signal handler, read by the reader thread and the main loop: an atomic, which
// is async-signal-safe to store to because it is lock-free.
std::atomic<bool> g_stop{false};
static_assert(std::atomic<bool>::is_always_lock_free, "the stop flag must be lock-free");

extern "C" void on_signal(int) { g_stop.store(true); }

const char* kUsage =
    "usage: pace-stream --port PORT --protocol {obp,ascii} --model EXPORT_DIR\n"
    "                   [--backend auto|openvino|tensorrt] [--threads N] [--baud N]\n"
    "                   [--timeout S] [--laser-nm NM] [--integration-ms MS] [--average N]\n"
    "                   [--dark FILE] [--pixels N] [--query CMD] [--wavelength-coeffs C0,C1,...]\n"
    "                   [--max-count X] [--max-batch N] [--output FILE|-] [--summary-json FILE]\n"
    "                   [--max-frames N] [--identify CMD] [--integration-command T]\n"
    "                   [--allow-device-change] [--trusted-keys DIR] [--allow-failed]\n"
    "       pace-stream --build-engine --model EXPORT_DIR [--precision fp32|fp16|int8]\n";

const char* kHelp =
    "\nClassify spectra from a spectrometer on a serial port, one JSON line each (the native\n"
    "twin of `pace-edge stream`). A summary (frames received, classified, rejected by reason,\n"
    "latency p50/p99/max, peak RSS) goes to stderr on exit; Ctrl-C or SIGTERM stop cleanly.\n\n"
    "  --port PORT            serial device (e.g. /dev/ttyUSB0, the path pace-edge simulate prints)\n"
    "  --protocol P           obp: Ocean Binary Protocol (STS...); ascii: line-oriented counts\n"
    "  --model DIR            export directory (pace-edge export); its manifest is verified\n"
    "  --backend B            auto, openvino or tensorrt (default: auto)\n"
    "  --threads N            inference threads (OpenVINO)\n"
    "  --baud N               baud rate (default: 9600 for obp, 115200 for ascii)\n"
    "  --timeout S            slack in seconds: a reply may start this long after its wire\n"
    "                         time plus the integration time (x scans), and the line may then\n"
    "                         fall silent at most this long; the rest of a deadline follows\n"
    "                         from --baud, the frame size and --integration-ms (default: 1)\n"
    "  --laser-nm NM          excitation wavelength: device wavelengths to Raman shift (cm-1)\n"
    "  --integration-ms MS    set the integration time before streaming\n"
    "  --average N            scans to average into one spectrum (default: 1)\n"
    "  --dark FILE            dark spectrum to subtract: .npy or text of counts per pixel\n"
    "  --pixels N             pixels per spectrum (default: 1024 for obp, 288 for ascii)\n"
    "  --query CMD            ascii: command that asks for one spectrum (default: free-running)\n"
    "  --wavelength-coeffs C  ascii: wavelength polynomial c0,c1,c2,... (nm)\n"
    "  --max-count X          ascii: ADC full scale, to reject saturated spectra\n"
    "  --max-batch N          largest micro-batch when frames queue up (default: 64)\n"
    "  --output FILE          JSON-lines file (appended), or - for stdout (default)\n"
    "  --summary-json FILE    also write the exit summary as JSON here\n"
    "  --max-frames N         stop after this many frames (default: until stopped)\n"
    "  --identify CMD         ascii: command answered by one identification line (e.g. ID?),\n"
    "                         checked on every reconnect (obp reads the serial number)\n"
    "  --integration-command T  ascii: sets the integration time, {us}/{ms}/{s} for the value\n"
    "  --allow-device-change  keep streaming when a reconnect finds another device\n"
    "                         (default: stop with the reason, exit status 1)\n"
    "  --trusted-keys DIR     run only an export signed (pace-edge export --sign) by one of the\n"
    "                         Ed25519 public keys (*.pem) in DIR; refuse unsigned or foreign ones\n"
    "  --allow-failed         run an export that failed a quality gate at export time (parity,\n"
    "                         accuracy; its manifest says which); refused by default\n"
    "  --version              print the version\n\n"
    "  --build-engine         build the export's TensorRT plan on this GPU (TensorRT C++ API),\n"
    "                         check it against the ONNX Runtime logits saved in the export and\n"
    "                         record it beside the manifest (engine.json; manifest.json and its\n"
    "                         signature stay as they are); exits 2 when it fails the check;\n"
    "                         with --trusted-keys DIR, only from an export signed by those keys\n"
    "  --precision P          with --build-engine: fp32, fp16 or int8 (default: the export's)\n";

struct Options {
    std::map<std::string, std::string> values;
    bool has(const std::string& k) const { return values.count(k) > 0; }
    std::string get(const std::string& k, const std::string& fallback = "") const {
        auto it = values.find(k);
        return it == values.end() ? fallback : it->second;
    }
};

struct UsageError {
    std::string message;
};

const std::vector<std::string> kOptions = {
    "port", "protocol", "model", "backend", "threads", "baud", "timeout", "laser-nm",
    "integration-ms", "average", "dark", "pixels", "query", "wavelength-coeffs", "max-count",
    "max-batch", "output", "summary-json", "max-frames", "identify", "integration-command",
    "allow-device-change", "trusted-keys", "precision", "allow-failed"};
const std::vector<std::string> kFlags = {"allow-device-change", "allow-failed"};

Options parse_args(int argc, char** argv) {
    Options o;
    for (int i = 1; i < argc; ++i) {
        std::string arg = argv[i];
        if (arg == "-h" || arg == "--help" || arg == "--version" || arg == "--build-engine") {
            o.values[arg] = "";
            continue;
        }
        if (arg.rfind("--", 0) != 0) throw UsageError{"unrecognized argument: " + arg};
        std::string key = arg.substr(2), value;
        const size_t eq = key.find('=');
        bool inline_value = eq != std::string::npos;
        if (inline_value) {
            value = key.substr(eq + 1);
            key = key.substr(0, eq);
        }
        if (std::find(kOptions.begin(), kOptions.end(), key) == kOptions.end())
            throw UsageError{"unrecognized argument: " + arg};
        const bool flag = std::find(kFlags.begin(), kFlags.end(), key) != kFlags.end();
        if (flag && inline_value) throw UsageError{"argument --" + key + ": ignored explicit argument '" + value + "'"};
        if (!inline_value && !flag) {
            if (i + 1 >= argc) throw UsageError{"argument --" + key + ": expected one argument"};
            value = argv[++i];
        }
        o.values[key] = value;
    }
    if (o.has("-h") || o.has("--help") || o.has("--version")) return o;
    if (o.has("--build-engine")) {
        if (!o.has("model")) throw UsageError{"--build-engine needs --model EXPORT_DIR"};
        const std::string p = o.get("precision");
        if (!p.empty() && p != "fp32" && p != "fp16" && p != "int8")
            throw UsageError{"argument --precision: invalid choice: '" + p + "' (choose from 'fp32', 'fp16', 'int8')"};
        return o;
    }
    if (o.has("precision")) throw UsageError{"--precision only applies to --build-engine"};
    std::string missing;
    for (const char* k : {"port", "protocol", "model"})
        if (!o.has(k)) missing += std::string(missing.empty() ? "" : ", ") + "--" + k;
    if (!missing.empty()) throw UsageError{"the following arguments are required: " + missing};
    const std::string protocol = o.get("protocol");
    if (protocol != "obp" && protocol != "ascii")
        throw UsageError{"argument --protocol: invalid choice: '" + protocol + "' (choose from 'obp', 'ascii')"};
    return o;
}

long long positive_int(const Options& o, const std::string& key) {
    const std::string text = o.get(key);
    char* end = nullptr;
    const long long v = std::strtoll(text.c_str(), &end, 10);
    if (text.empty() || *end != '\0') throw UsageError{"argument --" + key + ": expected a whole number, got '" + text + "'"};
    if (v < 1) throw UsageError{"argument --" + key + ": expected a positive number, got " + text};
    return v;
}

double number(const Options& o, const std::string& key) {
    const auto v = pace::ascii::parse_number(o.get(key));
    if (!v) throw UsageError{"argument --" + key + ": invalid float value: '" + o.get(key) + "'"};
    return *v;
}

void log_line(const std::string& message) {
    std::fprintf(stderr, "pace-stream: %s\n", message.c_str());
    std::fflush(stderr);
}

int run(const Options& args) {
    using namespace pace;
    const std::string protocol = args.get("protocol");
    Vec dark;
    if (args.has("dark")) dark = load_dark(args.get("dark"));

    std::optional<TrustedKeys> trusted;
    if (args.has("trusted-keys")) trusted = load_trusted_keys(args.get("trusted-keys"));
    Manifest manifest = load_manifest(args.get("model"), trusted ? &*trusted : nullptr);
    if (!args.has("allow-failed")) refuse_failed_export(manifest);
    refuse_unsupported_preprocessing(manifest);
    Model model;
    try {
        model.pipeline = Pipeline::from_json(manifest.preprocessing);
    } catch (const Error& e) {
        throw BundleError(manifest.directory + "/manifest.json: bad preprocessing (" + e.what() + ")");
    }
    model.axis = manifest.axis;
    model.classes = manifest.classes;
    const int threads = args.has("threads") ? int(positive_int(args, "threads")) : 0;
    std::string reason;
    model.backend = make_backend(manifest, args.get("backend", "auto"), threads, reason);
    model.trust = parse_trust(manifest);
    if (model.trust.has_detector) model.backend->request_features(model.trust.features_output, model.trust.dim);
    log_line("backend " + model.backend->name() + " (" + model.backend->precision() + "), " + reason);
    log_line(model.backend->describe());
    log_line("preprocessing " + model.pipeline.describe());
    model.backend->warmup();

    ObpOptions obp;
    AsciiOptions ascii;
    obp.timeout_s = ascii.timeout_s = args.has("timeout") ? number(args, "timeout") : 1.0;
    obp.allow_device_change = ascii.allow_device_change = args.has("allow-device-change");
    if (args.has("baud")) obp.baud = ascii.baud = int(positive_int(args, "baud"));
    if (args.has("pixels")) obp.pixels = ascii.pixels = size_t(positive_int(args, "pixels"));
    if (protocol == "ascii") {
        if (args.has("query") && !args.get("query").empty()) ascii.query = args.get("query");
        if (!args.get("identify").empty()) ascii.identify = args.get("identify");
        if (!args.get("integration-command").empty()) ascii.integration_command = args.get("integration-command");
        if (args.has("max-count") && number(args, "max-count") != 0) ascii.max_count = number(args, "max-count");
        if (args.has("wavelength-coeffs") && !args.get("wavelength-coeffs").empty()) {
            Vec coeffs;
            const std::string text = args.get("wavelength-coeffs");
            size_t i = 0;
            while (true) {
                const size_t j = text.find(',', i);
                const auto v = ascii::parse_number(text.substr(i, j == std::string::npos ? j : j - i));
                if (!v) {
                    throw Error("--wavelength-coeffs must be numbers separated by commas, got '" + text + "'");
                }
                coeffs.push_back(*v);
                if (j == std::string::npos) break;
                i = j + 1;
            }
            ascii.wavelength_coefficients = coeffs;
        }
    } else if (!args.get("query").empty() || !args.get("wavelength-coeffs").empty() ||
               !args.get("identify").empty() || !args.get("integration-command").empty() ||
               (args.has("max-count") && number(args, "max-count") != 0)) {
        throw Error("--query, --wavelength-coeffs, --max-count, --identify and --integration-command "
                    "are for --protocol ascii");
    }

    StreamConfig config;
    if (args.has("laser-nm")) config.laser_nm = number(args, "laser-nm");
    config.dark = dark;
    if (args.has("average")) config.average = size_t(positive_int(args, "average"));
    if (args.has("max-batch")) config.max_batch = size_t(positive_int(args, "max-batch"));
    if (args.has("max-frames")) config.max_frames = size_t(positive_int(args, "max-frames"));

    const std::string output = args.get("output", "-");
    FILE* out = stdout;
    if (output != "-") {
        out = std::fopen(output.c_str(), "a");
        if (out == nullptr) throw Error("cannot open --output " + output + ": " + std::strerror(errno));
    }
    struct Closer {
        FILE* f;
        ~Closer() {
            if (f != stdout) std::fclose(f);
        }
    } closer{out};

    std::unique_ptr<Spectrometer> device = open_spectrometer(protocol, args.get("port"), obp, ascii);
    if (args.has("integration-ms")) {
        const double us = std::nearbyint(number(args, "integration-ms") * 1000.0);  // round half even
        device->set_integration_time_us((long long)us);
    }
    auto emit = [out](const Json& record) {
        if (g_stop && std::ferror(out)) return;
        const std::string line = json::dump(record) + "\n";
        if (std::fwrite(line.data(), 1, line.size(), out) != line.size() || std::fflush(out) != 0) {
            log_line(std::string("cannot write the output (") + std::strerror(errno) + "); stopping");
            g_stop.store(true);  // e.g. the reader of a pipe went away: stop as on SIGTERM
        }
    };
    StreamClassifier stream(*device, model, config, emit, log_line, &g_stop);

    struct sigaction action {}, old_int {}, old_term {};
    action.sa_handler = on_signal;  // no SA_RESTART: blocking calls return EINTR
    sigemptyset(&action.sa_mask);
    sigaction(SIGINT, &action, &old_int);
    sigaction(SIGTERM, &action, &old_term);
    log_line("streaming from " + args.get("port") + " (" + protocol + ", identity " +
        device->identity().value_or("unknown") + ", " + std::to_string(device->pixels()) + " px, " +
        std::to_string(device->baud()) + " baud)");
    StreamStats* stats = nullptr;
    try {
        stats = &stream.run();
    } catch (...) {
        sigaction(SIGINT, &old_int, nullptr);
        sigaction(SIGTERM, &old_term, nullptr);
        throw;
    }
    sigaction(SIGINT, &old_int, nullptr);
    sigaction(SIGTERM, &old_term, nullptr);
    device->close();
    const long rss = peak_rss_kib();
    std::fprintf(stderr, "%s\n", stats->summary_text(rss).c_str());
    std::fflush(stderr);
    if (args.has("summary-json")) {
        std::ofstream f(args.get("summary-json"));
        f << json::dump(stats->summary(rss), 2) << "\n";
        if (!f) throw Error("cannot write --summary-json " + args.get("summary-json"));
    }
    return stats->stop_reason.empty() ? 0 : 1;
}

}  // namespace

int build_engine(const Options& args) {
    std::optional<pace::TrustedKeys> trusted;
    if (args.has("trusted-keys")) trusted = pace::load_trusted_keys(args.get("trusted-keys"));
    {  // the export, what to build and its engine-check data, checked before TensorRT is needed
        const pace::Manifest m = pace::load_manifest(args.get("model"), trusted ? &*trusted : nullptr);
        const pace::PlanRequest r = pace::plan_request(m, args.get("precision"));
        const pace::CheckData d = pace::load_check_data(m, r.source);
        pace::tolerance_for(m, r.precision);
        std::fprintf(stderr, "pace-stream: %s: %s plan from %s, engine check on %zu spectra\n",
                     args.get("model").c_str(), r.precision.c_str(), r.source.c_str(), d.count);
    }
#ifdef PACE_WITH_TENSORRT
    return pace::build_checked_plan(args.get("model"), args.get("precision"), trusted ? &*trusted : nullptr);
#else
    throw pace::Error("this pace-stream is built without TensorRT; rebuild it with -DPACE_WITH_TENSORRT=ON "
                      "on the device (or run pace-edge build-engine there)");
#endif
}

int main(int argc, char** argv) {
    Options args;
    try {
        args = parse_args(argc, argv);
    } catch (const UsageError& e) {
        std::fprintf(stderr, "%space-stream: error: %s\n", kUsage, e.message.c_str());
        return 2;
    }
    if (args.has("-h") || args.has("--help")) {
        std::printf("%s%s", kUsage, kHelp);
        return 0;
    }
    if (args.has("--version")) {
        std::printf("pace-stream %s (backends:", PACE_VERSION);
        for (const auto& b : pace::available_backends()) std::printf(" %s", b.c_str());
        std::printf(")\n");
        return 0;
    }
    std::signal(SIGPIPE, SIG_IGN);  // a closed output pipe is a write error, handled in emit
    try {
        if (args.has("--build-engine")) return build_engine(args);
        return run(args);
    } catch (const UsageError& e) {
        std::fprintf(stderr, "%space-stream: error: %s\n", kUsage, e.message.c_str());
        return 2;
    } catch (const pace::Interrupted&) {
        std::fprintf(stderr, "pace-stream: interrupted\n");
        return 130;
    } catch (const pace::Error& e) {
        std::fprintf(stderr, "pace-stream: error: %s\n", e.what());
        return 2;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "pace-stream: internal error: %s\n", e.what());
        return 1;
    }
}
