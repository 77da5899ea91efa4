#include "pace/stream.hpp"

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <mutex>
#include <thread>

#include "pace/errors.hpp"

namespace pace {

const char* const kLatencyKeys[5] = {"read", "preprocess", "infer", "total", "overhead"};

namespace {

double wall_time() {  // time.time()
    return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::int64_t monotonic_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count();
}

double seconds_since(Clock::time_point start) {
    return std::chrono::duration<double>(Clock::now() - start).count();
}

double round4(double v) {  // Python's round(v, 4): the double nearest the correctly rounded decimal
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.4f", v);
    return std::strtod(buf, nullptr);
}

std::string g6(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.6g", v);
    return buf;
}

}  // namespace

// -- model -----------------------------------------------------------------------------------

std::vector<float> Model::preprocess(Vec raw, Vec raw_axis) const {
    pipeline.apply(raw, raw_axis);
    const Vec& model = axis;
    char buf[256];
    if (raw.size() != model.size()) {
        std::snprintf(buf, sizeof buf,
                      "after preprocessing the spectra have %zu points but the model expects %zu "
                      "(axis %g…%g); the pipeline does not resample onto the model's axis",
                      raw.size(), model.size(), model.front(), model.back());
        throw DataError(buf);
    }
    double step = INFINITY;
    for (size_t i = 0; i + 1 < model.size(); ++i) step = std::min(step, model[i + 1] - model[i]);
    const double tolerance = 1e-3 * step;
    for (size_t i = 0; i < model.size(); ++i) {
        if (!(std::fabs(raw_axis[i] - model[i]) <= tolerance)) {
            std::snprintf(buf, sizeof buf,
                          "after preprocessing the axis runs %g…%g but the model's runs %g…%g; the "
                          "pipeline does not resample onto the model's axis",
                          raw_axis.front(), raw_axis.back(), model.front(), model.back());
            throw DataError(buf);
        }
    }
    return std::vector<float>(raw.begin(), raw.end());
}

// -- stats -----------------------------------------------------------------------------------

long peak_rss_kib() {
    rusage usage{};
    ::getrusage(RUSAGE_SELF, &usage);
    return usage.ru_maxrss;  // KiB on Linux
}

std::string snake_case(const std::string& name) {
    std::string out;
    for (char c : name) {
        if (std::isupper(static_cast<unsigned char>(c))) {
            out += '_';
            out += char(std::tolower(static_cast<unsigned char>(c)));
        } else {
            out += c;
        }
    }
    return out.empty() || out[0] != '_' ? out : out.substr(1);
}

size_t StreamStats::rejected_total() const {
    size_t n = 0;
    for (const auto& [reason, count] : rejected) n += count;
    return n;
}

bool StreamStats::accounted() const {
    return received == frames_classified + rejected_total() + averaging;
}

double StreamStats::percentile(std::vector<double> values, double q) {
    std::sort(values.begin(), values.end());
    const double index = q / 100.0 * double(values.size() - 1);
    const size_t lo = size_t(std::floor(index));
    const size_t hi = std::min(lo + 1, values.size() - 1);
    const double t = index - double(lo), a = values[lo], b = values[hi];
    const double diff = b - a;  // numpy's _lerp
    return t >= 0.5 ? b - diff * (1 - t) : a + diff * t;
}

Json StreamStats::summary(long rss_kib) const {
    Json latency_ms = Json::object();
    for (const char* key : kLatencyKeys) {
        auto it = latency.find(key);
        if (it == latency.end() || it->second.empty()) continue;
        const auto& v = it->second;
        latency_ms[key] = {{"p50", percentile(v, 50)},
                           {"p99", percentile(v, 99)},
                           {"max", *std::max_element(v.begin(), v.end())}};
    }
    size_t refused_total = 0;
    for (const auto& [reason, count] : refused) refused_total += count;
    return {
        {"received", received},
        {"classified", classified},
        {"frames_classified", frames_classified},
        {"averaging_incomplete", averaging},
        {"rejected", rejected},
        {"rejected_total", rejected_total()},
        {"accepted", classified - refused_total},
        {"refused", refused},
        {"reconnects", reconnects.load()},
        {"batches", batches},
        {"silences", silences},
        {"device_changes", device_changes},
        {"stop_reason", stop_reason.empty() ? Json() : Json(stop_reason)},
        {"accounted", accounted()},
        {"latency_ms", latency_ms},
        {"peak_rss_mib", std::round(double(rss_kib) / 1024.0 * 10) / 10},
    };
}

std::string StreamStats::summary_text(long rss_kib) const {
    std::string reasons;
    for (const auto& [reason, count] : rejected)
        reasons += (reasons.empty() ? "" : ", ") + reason + " " + std::to_string(count);
    char buf[512];
    std::snprintf(buf, sizeof buf,
                  "frames received %zu, spectra classified %zu (from %zu frames), rejected %zu "
                  "(%s), reconnects %zu",
                  received, classified, frames_classified, rejected_total(),
                  reasons.empty() ? "none" : reasons.c_str(), reconnects.load());
    std::string out = buf;
    std::string refusals;
    size_t refused_total = 0;
    for (const auto& [reason, count] : refused) {
        refusals += (refusals.empty() ? "" : ", ") + reason + " " + std::to_string(count);
        refused_total += count;
    }
    out += "\naccepted " + std::to_string(classified - refused_total) + " of " + std::to_string(classified) +
           " spectra, refused " + (refusals.empty() ? "none" : refusals);
    if (silences) out += "\ndevice silent past its deadline " + std::to_string(silences) + " times";
    if (device_changes) out += "\naccepted " + std::to_string(device_changes) + " change(s) of device";
    if (!stop_reason.empty()) out += "\nstopped: " + stop_reason;
    for (const char* key : kLatencyKeys) {
        auto it = latency.find(key);
        if (it == latency.end() || it->second.empty()) continue;
        const auto& v = it->second;
        std::snprintf(buf, sizeof buf, "\nlatency %-10s p50 %8.3f ms   p99 %8.3f ms   max %8.3f ms", key,
                      percentile(v, 50), percentile(v, 99), *std::max_element(v.begin(), v.end()));
        out += buf;
    }
    std::snprintf(buf, sizeof buf, "\npeak RSS %.1f MiB", double(rss_kib) / 1024.0);
    return out + buf;
}

// -- the classifier ----------------------------------------------------------------------------

struct StreamClassifier::Item {
    std::optional<RawFrame> frame;
    std::string error;    // the error's class name ("" for a frame)
    std::string message;  // its text
    double read_s = 0;
    std::int64_t done_ns = 0;
    bool sentinel = false;
};

// A bounded queue: put() waits while full (until stopping: then it takes the item anyway,
// nothing read is lost), try_put() never waits; the sentinel always fits.
class StreamClassifier::Queue {
public:
    explicit Queue(size_t capacity) : capacity_(capacity) {}

    void put(Item item, const std::function<bool()>& stopping) {
        std::unique_lock<std::mutex> lock(mutex_);
        while (!item.sentinel && items_.size() >= capacity_ && !stopping())
            not_full_.wait_for(lock, std::chrono::milliseconds(100));
        items_.push_back(std::move(item));
        not_empty_.notify_one();
    }

    bool try_put(Item& item) {
        std::unique_lock<std::mutex> lock(mutex_);
        if (items_.size() >= capacity_) return false;
        items_.push_back(std::move(item));
        not_empty_.notify_one();
        return true;
    }

    std::optional<Item> get(std::chrono::milliseconds timeout) {
        std::unique_lock<std::mutex> lock(mutex_);
        if (!not_empty_.wait_for(lock, timeout, [&] { return !items_.empty(); })) return std::nullopt;
        return pop(lock);
    }

    std::optional<Item> try_get() {
        std::unique_lock<std::mutex> lock(mutex_);
        if (items_.empty()) return std::nullopt;
        return pop(lock);
    }

private:
    Item pop(std::unique_lock<std::mutex>&) {
        Item item = std::move(items_.front());
        items_.pop_front();
        not_full_.notify_one();
        return item;
    }

    size_t capacity_;
    std::mutex mutex_;
    std::condition_variable not_empty_, not_full_;
    std::deque<Item> items_;
};

StreamClassifier::StreamClassifier(Spectrometer& device, const Model& model, StreamConfig config,
                                   Emit emit, Log log, const std::atomic<bool>* stop_flag)
    : device_(device),
      model_(model),
      config_(std::move(config)),
      emit_(std::move(emit)),
      log_(std::move(log)),
      stop_flag_(stop_flag) {
    if (config_.average < 1)
        throw ConfigError("--average must be at least 1, got " + std::to_string(config_.average));
    if (config_.average > 1) averager_.emplace(config_.average);
    for (const char* key : kLatencyKeys) stats_.latency[key];
    const std::optional<Vec> wavelengths = device_.wavelengths();
    if (!wavelengths) {
        throw ConfigError(std::string("the ") + device_.protocol() +
                          " device reports no wavelength calibration: give --wavelength-coeffs "
                          "c0,c1,... (λ(p) = Σ cᵢ pⁱ in nm)");
    }
    axis_.emplace(*wavelengths, config_.laser_nm);
    const Vec dev = axis_->sorted_axis();
    const Vec& m = model_.axis;
    if (m.front() < dev.front() - 1e-9 || m.back() > dev.back() + 1e-9) {
        throw ConfigError("the device axis " + g6(dev.front()) + "…" + g6(dev.back()) + " " +
                          (config_.laser_nm ? "cm-1" : "nm") + " does not cover the model's input axis " +
                          g6(m.front()) + "…" + g6(m.back()) +
                          (config_.laser_nm ? "" : " (for Raman models pass --laser-nm)"));
    }
    if (!config_.dark.empty() && config_.dark.size() != axis_->pixels()) {
        throw ConfigError("dark spectrum has " + std::to_string(config_.dark.size()) +
                          " pixels, the device has " + std::to_string(axis_->pixels()));
    }
}

bool StreamClassifier::stopping() const {
    return stop_ || (stop_flag_ != nullptr && stop_flag_->load());
}

void StreamClassifier::reader(Queue& queue) {
    double backoff = config_.reconnect_initial_s;
    size_t reads = 0;
    const auto stopping = [this] { return this->stopping(); };
    while (!stopping() && (!config_.max_frames || reads < *config_.max_frames)) {
        const auto start = Clock::now();
        Item item;
        bool closed = false;
        try {
            item.frame = device_.read_spectrum();
        } catch (const Interrupted&) {
            break;  // stopped mid-read: nothing was received
        } catch (const StreamError& e) {
            item.error = e.name();
            item.message = e.what();
            closed = e.kind() == ErrorKind::TransportClosed;
        } catch (const Error& e) {  // not expected from a driver; rejected rather than fatal
            item.error = "DataError";
            item.message = e.what();
        }
        item.read_s = seconds_since(start);
        item.done_ns = monotonic_ns();
        const bool silence = item.error == "TransportTimeout" && device_.free_running();
        if (!silence) ++reads;  // a free-running device's silence is not a frame
        if (device_.free_running() && !item.sentinel && !silence) {
            if (!queue.try_put(item)) ++overruns_;  // it cannot wait: the frame is lost, counted
        } else {
            queue.put(std::move(item), stopping);
        }
        if (closed) {
            if (!reconnect(backoff)) break;
        } else {
            backoff = config_.reconnect_initial_s;
        }
    }
    Item sentinel;
    sentinel.sentinel = true;
    queue.put(std::move(sentinel), stopping);
}

bool StreamClassifier::reconnect(double& backoff) {
    while (!stopping()) {
        char buf[96];
        std::snprintf(buf, sizeof buf, "device disconnected; reconnecting in %.1f s", backoff);
        log_(buf);
        const auto until = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                              std::chrono::duration<double>(backoff));
        while (Clock::now() < until && !stopping()) std::this_thread::sleep_for(std::chrono::milliseconds(20));
        if (stopping()) break;
        const size_t changes = device_.device_changes.size();
        try {
            device_.reconnect(backoff);
            ++stats_.reconnects;
            for (size_t i = changes; i < device_.device_changes.size(); ++i) {
                ++stats_.device_changes;
                log_("device changed on reconnect: '" + device_.device_changes[i].first + "' -> '" +
                     device_.device_changes[i].second + "' (accepted: --allow-device-change)");
            }
            log_("device reconnected");
            backoff = config_.reconnect_initial_s;
            return true;
        } catch (const Interrupted&) {
            break;
        } catch (const DeviceChanged& e) {
            log_(std::string("stopping: ") + e.what());
            stats_.stop_reason = e.what();
            stop_ = true;
            break;
        } catch (const StreamError& e) {
            log_(std::string("reconnect failed: ") + e.what());
            backoff = std::min(backoff * 2, config_.reconnect_max_s);
        }
    }
    return false;
}

StreamStats& StreamClassifier::run() {
    Queue queue(config_.queue_size);
    std::atomic<bool> reader_done{false};
    std::exception_ptr reader_error;
    std::thread thread([&] {
        try {
            reader(queue);
        } catch (...) {
            reader_error = std::current_exception();
            Item sentinel;
            sentinel.sentinel = true;
            queue.put(std::move(sentinel), [] { return true; });
        }
        reader_done = true;
    });
    try {
        bool finished = false;
        while (!finished) {
            std::optional<Item> first = queue.get(std::chrono::milliseconds(200));
            if (!first) {
                fold_overruns();
                if (stopping() && reader_done) break;
                continue;
            }
            std::vector<Item> batch;
            if (first->sentinel) {
                finished = true;
            } else {
                batch.push_back(std::move(*first));
                while (batch.size() < config_.max_batch) {
                    std::optional<Item> more = queue.try_get();
                    if (!more) break;
                    if (more->sentinel) {
                        finished = true;
                        break;
                    }
                    batch.push_back(std::move(*more));
                }
            }
            process(batch);
        }
    } catch (...) {
        stop_ = true;
        thread.join();
        throw;
    }
    stop_ = true;
    thread.join();
    std::vector<Item> leftovers;  // read but not processed when stopping
    while (std::optional<Item> item = queue.try_get())
        if (!item->sentinel) leftovers.push_back(std::move(*item));
    process(leftovers);
    if (reader_error) std::rethrow_exception(reader_error);
    return stats_;
}

void StreamClassifier::fold_overruns() {
    const size_t n = overruns_.exchange(0);
    if (n == 0) return;
    stats_.received += n;
    stats_.rejected["overrun"] += n;
    emit_({{"time", wall_time()},
           {"seq", nullptr},
           {"rejected", "overrun"},
           {"frames", n},
           {"detail", std::to_string(n) + " frame(s) lost: the backlog was full"}});
}

void StreamClassifier::reject(const Item& item, const std::string& reason, const std::string& detail,
                              size_t n_frames) {
    stats_.rejected[reason] += n_frames;
    Json record = {{"time", wall_time()},
                   {"seq", item.frame ? Json(item.frame->sequence) : Json()},
                   {"rejected", reason}};
    if (n_frames > 1) record["frames"] = n_frames;
    if (!detail.empty()) record["detail"] = detail;
    emit_(record);
}

std::optional<StreamClassifier::Prepared> StreamClassifier::prepare(const Item& item) {
    const RawFrame& frame = *item.frame;
    if (frame.saturated()) {
        reject(item, "saturated", "a pixel is at the ADC full scale");
        return std::nullopt;
    }
    Vec counts = frame.counts;
    size_t n_frames = 1;
    if (averager_) {
        std::optional<Vec> mean;
        try {
            mean = averager_->add(counts);
        } catch (const Error& e) {
            // the open average cannot be finished: its frames and this one are rejected
            const size_t partial = averager_->count();
            averager_->reset();
            stats_.averaging -= partial;
            reject(item, "average", e.what(), partial + 1);
            return std::nullopt;
        }
        ++stats_.averaging;
        if (!mean) return std::nullopt;
        counts = std::move(*mean);
        n_frames = config_.average;
        stats_.averaging -= n_frames;
    }
    std::vector<float> input;
    Vec checked;  // intensity on the device axis, for the physical checks
    try {
        auto [intensity, axis] = axis_->apply(counts, config_.dark);
        Vec raw = intensity;
        input = model_.preprocess(std::move(intensity), std::move(axis));
        checked = std::move(raw);
    } catch (const Error& e) {
        reject(item, "preprocess", e.what(), n_frames);  // an average shares its fate
        return std::nullopt;
    }
    for (float v : input) {
        if (!std::isfinite(v)) {
            reject(item, "non_finite_input",
                   "preprocessing gave NaN or inf (e.g. a flat spectrum normalised)", n_frames);
            return std::nullopt;
        }
    }
    return Prepared{std::move(input), n_frames, std::move(checked)};
}

void StreamClassifier::process(std::vector<Item>& items) {
    struct Ready {
        const Item* item;
        std::vector<float> input;
        size_t frames;
        double prep_s;
        Vec intensity;
        size_t row = 0;  // row in the inference batch (its features)
    };
    fold_overruns();
    std::vector<Ready> ready;
    for (const Item& item : items) {
        if (item.error == "TransportTimeout" && device_.free_running()) {
            ++stats_.silences;  // no frame came: nothing was received
            log_("device silent: " + item.message);
            continue;
        }
        ++stats_.received;
        if (!item.error.empty()) {
            reject(item, snake_case(item.error), item.message);
            continue;
        }
        const auto t0 = Clock::now();
        auto prepared = prepare(item);
        if (prepared)
            ready.push_back({&item, std::move(prepared->input), prepared->frames, seconds_since(t0),
                             std::move(prepared->intensity)});
    }
    if (ready.empty()) return;
    const size_t length = model_.axis.size(), classes = model_.classes.size();
    std::vector<float> inputs;
    inputs.reserve(ready.size() * length);
    for (const Ready& r : ready) inputs.insert(inputs.end(), r.input.begin(), r.input.end());
    const auto t0 = Clock::now();
    std::vector<float> logits = model_.backend->infer(inputs.data(), ready.size());
    const double infer_s = seconds_since(t0);
    for (size_t r = 0; r < ready.size(); ++r) ready[r].row = r;
    ++stats_.batches;
    {  // rows with NaN/inf are rejected; the rest go on
        std::vector<Ready> kept;
        std::vector<float> kept_logits;
        for (size_t r = 0; r < ready.size(); ++r) {
            const float* row = logits.data() + r * classes;
            if (std::all_of(row, row + classes, [](float v) { return std::isfinite(v); })) {
                kept.push_back(std::move(ready[r]));
                kept_logits.insert(kept_logits.end(), row, row + classes);
            } else {
                reject(*ready[r].item, "non_finite_output", "the model gave NaN or inf", ready[r].frames);
            }
        }
        ready = std::move(kept);  // the rows were moved into kept, finite or not
        logits = std::move(kept_logits);
    }
    if (ready.empty()) return;
    const Trust& trust = model_.trust;
    const std::vector<double> proba = scaled_softmax(logits, ready.size(), classes, trust.temperature);
    for (size_t r = 0; r < ready.size(); ++r) {
        const double* p = proba.data() + r * classes;
        const size_t best = size_t(std::max_element(p, p + classes) - p);
        const double total_ms = double(monotonic_ns() - ready[r].item->done_ns) / 1e6;
        const std::pair<const char*, double> latency[4] = {{"read", ready[r].item->read_s * 1e3},
                                                           {"preprocess", ready[r].prep_s * 1e3},
                                                           {"infer", infer_s * 1e3},
                                                           {"total", total_ms}};
        Json probabilities = Json::object(), latency_ms = Json::object();
        for (size_t c = 0; c < classes; ++c) probabilities[model_.classes[c]] = p[c];
        for (const auto& [key, value] : latency) latency_ms[key] = round4(value);
        Json record = {{"time", wall_time()},
                       {"seq", ready[r].item->frame->sequence},
                       {"class", model_.classes[best]},
                       {"probability", p[best]},
                       {"probabilities", probabilities}};
        // physical checks, then the detector (pace_edge.trust.verdict.Trust.judge)
        std::string reason = trust.physical_reason(ready[r].intensity);
        double score = NAN;
        if (reason.empty() && trust.has_detector) {
            score = trust.score(model_.backend->features().data() + ready[r].row * trust.dim);
            if (!(score <= trust.threshold)) reason = "out_of_distribution";
        }
        record["accepted"] = reason.empty();
        if (!reason.empty()) {
            record["reason"] = reason;
            record["score"] = std::isnan(score) ? Json() : Json(std::round(score * 1e6) / 1e6);
            ++stats_.refused[reason];
        }
        record["frames"] = ready[r].frames;
        record["batch"] = ready.size();
        record["latency_ms"] = latency_ms;
        emit_(record);
        ++stats_.classified;
        stats_.frames_classified += ready[r].frames;
        for (const auto& [key, value] : latency) stats_.latency[key].push_back(value);
        stats_.latency["overhead"].push_back(total_ms - infer_s * 1e3);
    }
}

}  // namespace pace
