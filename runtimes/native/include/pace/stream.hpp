// The streaming classifier (pace_edge.streaming.pipeline): device frames → axis and dark →
// preprocessing → backend → one JSON line per spectrum.
//
// A reader thread pulls frames from the driver and queues every outcome (a frame or a typed
// error), so the device is drained while inference runs; the main loop takes what is queued
// (micro-batching up to max_batch when frames arrive faster than one inference), classifies
// and emits. Every frame is accounted for: classified (alone or in an average) or rejected
// with a reason (the error class in snake case, "saturated", "preprocess", "average",
// "non_finite_input", "non_finite_output", "overrun"), frames read after a stop included:
// the read in flight is finished, then everything read is processed. A full backlog holds a
// request/response reader (the device is asked later); a free-running device's frames that
// find it full are counted as "overrun". The stop flag is a std::atomic<bool>.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "pace/inference.hpp"
#include "pace/json.hpp"
#include "pace/preprocess.hpp"
#include "pace/spectral_axis.hpp"
#include "pace/spectrometer.hpp"
#include "pace/trust.hpp"

namespace pace {

// What runs the model: the manifest's preprocessing, its input axis and classes, a backend.
struct Model {
    Pipeline pipeline;
    Vec axis;
    std::vector<std::string> classes;
    std::unique_ptr<Backend> backend;
    Trust trust;  // temperature, physical checks, "unknown" detector (request its features)

    // Raw spectrum on `axis` → model input (float32); DataError when the pipeline does not
    // land on the model's axis.
    std::vector<float> preprocess(Vec raw, Vec raw_axis) const;
};

struct StreamConfig {
    std::optional<double> laser_nm;
    Vec dark;  // counts per pixel, device order (empty: none)
    size_t average = 1;
    size_t max_batch = 64;
    std::optional<size_t> max_frames;
    double reconnect_initial_s = 0.1;
    double reconnect_max_s = 5.0;
    size_t queue_size = 4096;
};

// The latency keys, in the order the summary lists them.
extern const char* const kLatencyKeys[5];

struct StreamStats {
    size_t received = 0;
    size_t classified = 0;
    size_t frames_classified = 0;
    size_t averaging = 0;  // frames waiting in an unfinished average
    std::map<std::string, size_t> rejected;
    std::map<std::string, size_t> refused;  // classified, but answered "unknown", by reason
    std::atomic<size_t> reconnects{0};
    size_t batches = 0;
    size_t silences = 0;        // free-running device quiet past its deadline (not received)
    size_t device_changes = 0;  // reconnects to another device, accepted
    std::string stop_reason;    // why the stream ended by itself (e.g. another device)
    std::map<std::string, std::vector<double>> latency;  // ms, by kLatencyKeys

    size_t rejected_total() const;
    bool accounted() const;
    // np.percentile(values, q) (linear interpolation).
    static double percentile(std::vector<double> values, double q);
    Json summary(long peak_rss_kib) const;
    std::string summary_text(long peak_rss_kib) const;
};

// Peak resident set size of this process in KiB (getrusage).
long peak_rss_kib();

// "TransportTimeout" → "transport_timeout".
std::string snake_case(const std::string& name);

class StreamClassifier {
public:
    using Emit = std::function<void(const Json&)>;
    using Log = std::function<void(const std::string&)>;

    // ConfigError when the device has no wavelength calibration, its axis does not cover
    // the model's, or the dark frame has the wrong length.
    StreamClassifier(Spectrometer& device, const Model& model, StreamConfig config, Emit emit,
                     Log log, const std::atomic<bool>* stop_flag);

    // Read, classify and emit until stopped (stop flag), max_frames or the device gives up.
    StreamStats& run();
    StreamStats& stats() { return stats_; }

private:
    struct Item;
    class Queue;

    bool stopping() const;
    void reader(Queue& queue);
    bool reconnect(double& backoff);
    void process(std::vector<Item>& items);
    struct Prepared {
        std::vector<float> input;
        size_t frames;
        Vec intensity;  // on the device axis, for the physical checks
    };
    std::optional<Prepared> prepare(const Item& item);
    void reject(const Item& item, const std::string& reason, const std::string& detail,
                size_t n_frames = 1);
    void fold_overruns();

    Spectrometer& device_;
    const Model& model_;
    StreamConfig config_;
    Emit emit_;
    Log log_;
    const std::atomic<bool>* stop_flag_;
    std::atomic<bool> stop_{false};
    std::atomic<size_t> overruns_{0};  // counted by the reader, folded in by the main loop
    std::optional<SpectralAxis> axis_;
    std::optional<Averager> averager_;
    StreamStats stats_;
};

}  // namespace pace
