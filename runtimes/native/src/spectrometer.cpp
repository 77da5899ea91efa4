// The driver base (open, reconnect, read_spectrum bookkeeping) and the driver factory.
#include <algorithm>
#include <cstdio>
#include <thread>

#include "pace/spectrometer.hpp"

namespace pace {

bool RawFrame::saturated() const {
    if (!max_count) return false;
    return std::any_of(counts.begin(), counts.end(), [&](double c) { return c >= *max_count; });
}

namespace {

Clock::duration seconds(double s) {
    return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
}

}  // namespace

ReplyClock::ReplyClock(ReplyTiming timing)
    : timing_(std::move(timing)),
      total_(Clock::now() + seconds(timing_.total_s)),
      first_(Clock::now() + seconds(timing_.first_byte_s)) {}

Deadline ReplyClock::deadline() const {
    const Deadline end = last_ ? *last_ + seconds(timing_.gap_s) : first_;
    return std::min(end, total_);
}

void ReplyClock::got(size_t nbytes) {
    received_ += nbytes;
    last_ = Clock::now();
}

std::string ReplyClock::describe() const {
    char buf[256];
    if (!last_) {
        std::snprintf(buf, sizeof buf, "no reply within %.3g s (%s)", timing_.first_byte_s,
                      timing_.explain.c_str());
    } else if (Clock::now() >= total_) {
        std::snprintf(buf, sizeof buf, "reply not complete within %.3g s (%zu bytes)",
                      timing_.total_s, received_);
    } else {
        std::snprintf(buf, sizeof buf, "line silent for %.3g s after %zu bytes", timing_.gap_s,
                      received_);
    }
    return buf;
}

Spectrometer::Spectrometer(std::string port, int baud, double timeout_s, bool allow_change)
    : allow_device_change(allow_change), port_(std::move(port)), baud_(baud), timeout_s_(timeout_s) {}

void Spectrometer::open() {
    if (transport_) return;
    transport_ = std::make_unique<SerialPort>(port_, baud_, timeout_s_);
    try {
        handshake();
        check_identity(read_identity());
    } catch (...) {
        close();
        throw;
    }
}

void Spectrometer::check_identity(const std::optional<std::string>& found) {
    if (!opened_once_) {
        identity_ = found;
        opened_once_ = true;
        return;
    }
    if (found == identity_) return;
    const auto quoted = [](const std::optional<std::string>& s) {
        return s ? "'" + *s + "'" : std::string("None");
    };
    if (!allow_device_change) {
        throw DeviceChanged(port_ + ": another device answered after the reconnect (" +
                                protocol() + " identity " + quoted(found) + ", expected " +
                                quoted(identity_) + "); refusing it (--allow-device-change accepts it)",
                            identity_.value_or(""), found.value_or(""));
    }
    device_changes.emplace_back(identity_.value_or(""), found.value_or(""));
    identity_ = found;
}

ReplyTiming Spectrometer::reply_timing(size_t request_bytes, size_t reply_bytes, double work_s) const {
    const double slack = timeout_s_;
    const double request_s = wire_seconds(request_bytes, baud_);
    const double reply_s = wire_seconds(reply_bytes, baud_);
    const double first = request_s + work_s + slack;
    const double gap = std::max(slack, wire_seconds(64, baud_));
    char buf[160];
    std::snprintf(buf, sizeof buf, "request %.0f ms + device %.0f ms + slack %.0f ms at %d baud",
                  request_s * 1e3, work_s * 1e3, slack * 1e3, baud_);
    return {first, gap, first + 2 * reply_s + slack, buf};
}

void Spectrometer::close() { transport_.reset(); }

SerialPort& Spectrometer::transport() {
    if (!transport_) throw transport_closed(port_ + ": not open");
    return *transport_;
}

void Spectrometer::reconnect(double timeout_s, double interval_s) {
    close();
    const Deadline end = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                            std::chrono::duration<double>(timeout_s));
    double wait = interval_s;
    while (true) {
        try {
            open();
            ++stats.reconnects;
            return;
        } catch (const DeviceChanged&) {
            throw;
        } catch (const TransportError&) {
            const auto pause = std::chrono::duration_cast<Clock::duration>(
                std::chrono::duration<double>(wait));
            if (Clock::now() + pause >= end) throw;
            std::this_thread::sleep_for(pause);
            wait = std::min(wait * 2, 0.5);
        }
    }
}

RawFrame Spectrometer::read_spectrum() {
    std::pair<Vec, size_t> got;
    try {
        got = read_counts();
    } catch (const StreamError& e) {
        ++stats.errors[e.name()];
        throw;
    }
    const auto now = std::chrono::duration_cast<std::chrono::nanoseconds>(
        Clock::now().time_since_epoch());
    RawFrame frame{std::move(got.first), sequence_++, std::int64_t(now.count()), got.second,
                   max_count()};
    ++stats.frames;
    return frame;
}

std::unique_ptr<Spectrometer> open_spectrometer(const std::string& protocol,
                                                const std::string& port, const ObpOptions& obp,
                                                const AsciiOptions& ascii) {
    std::unique_ptr<Spectrometer> driver;
    if (protocol == "obp") {
        driver = std::make_unique<ObpSpectrometer>(port, obp);
    } else if (protocol == "ascii") {
        driver = std::make_unique<AsciiSpectrometer>(port, ascii);
    } else {
        throw ConfigError("unknown protocol '" + protocol + "'; choose one of obp, ascii");
    }
    driver->open();
    return driver;
}

}  // namespace pace
