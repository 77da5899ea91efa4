// pace-stream: classify spectra from a spectrometer on a serial port without Python.
// Same options and JSON-lines output as `pace-edge stream` (OpenVINO / TensorRT backends).
#include <algorithm>
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
#include "pace/errors.hpp"
#include "pace/inference.hpp"
#include "pace/json.hpp"
#include "pace/manifest.hpp"
#include "pace/stream.hpp"

#ifndef PACE_VERSION
#define PACE_VERSION "0.1.0"
#endif

namespace {

volatile std::sig_atomic_t g_stop = 0;

extern "C" void on_signal(int) { g_stop = 1; }

const char* kUsage =
    "usage: pace-stream --port PORT --protocol {obp,ascii} --model EXPORT_DIR\n"
    "                   [--backend auto|openvino|tensorrt] [--threads N] [--baud N]\n"
    "                   [--timeout S] [--laser-nm NM] [--integration-ms MS] [--average N]\n"
    "                   [--dark FILE] [--pixels N] [--query CMD] [--wavelength-coeffs C0,C1,...]\n"
    "                   [--max-count X] [--max-batch N] [--output FILE|-] [--summary-json FILE]\n"
    "                   [--max-frames N]\n";

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
    "  --timeout S            seconds to wait for one spectrum (default: 3)\n"
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
    "  --version              print the version\n";

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
    "max-batch", "output", "summary-json", "max-frames"};

Options parse_args(int argc, char** argv) {
    Options o;
    for (int i = 1; i < argc; ++i) {
        std::string arg = argv[i];
        if (arg == "-h" || arg == "--help" || arg == "--version") {
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
        if (!inline_value) {
            if (i + 1 >= argc) throw UsageError{"argument --" + key + ": expected one argument"};
            value = argv[++i];
        }
        o.values[key] = value;
    }
    if (o.has("-h") || o.has("--help") || o.has("--version")) return o;
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

    Manifest manifest = load_manifest(args.get("model"));
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
    obp.timeout_s = ascii.timeout_s = args.has("timeout") ? number(args, "timeout") : 3.0;
    if (args.has("baud")) obp.baud = ascii.baud = int(positive_int(args, "baud"));
    if (args.has("pixels")) obp.pixels = ascii.pixels = size_t(positive_int(args, "pixels"));
    if (protocol == "ascii") {
        if (args.has("query") && !args.get("query").empty()) ascii.query = args.get("query");
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
               (args.has("max-count") && number(args, "max-count") != 0)) {
        throw Error("--query, --wavelength-coeffs and --max-count are for --protocol ascii");
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
    auto emit = [out](const json::Value& record) {
        if (g_stop && std::ferror(out)) return;
        const std::string line = record.dump() + "\n";
        if (std::fwrite(line.data(), 1, line.size(), out) != line.size() || std::fflush(out) != 0) {
            log_line(std::string("cannot write the output (") + std::strerror(errno) + "); stopping");
            g_stop = 1;  // e.g. the reader of a pipe went away: stop as on SIGTERM
        }
    };
    StreamClassifier stream(*device, model, config, emit, log_line, &g_stop);

    struct sigaction action {}, old_int {}, old_term {};
    action.sa_handler = on_signal;  // no SA_RESTART: blocking calls return EINTR
    sigemptyset(&action.sa_mask);
    sigaction(SIGINT, &action, &old_int);
    sigaction(SIGTERM, &action, &old_term);
    SerialPort::set_stop_flag(&g_stop);
    log_line("streaming from " + args.get("port") + " (" + protocol + ", serial " +
        device->serial_number().value_or("unknown") + ", " + std::to_string(device->pixels()) + " px)");
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
        f << stats->summary(rss).dump(2) << "\n";
        if (!f) throw Error("cannot write --summary-json " + args.get("summary-json"));
    }
    return 0;
}

}  // namespace

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
