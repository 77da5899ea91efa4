// The driver base (open, reconnect, read_spectrum bookkeeping) and the driver factory.
#include <algorithm>
#include <thread>

#include "pace/spectrometer.hpp"

namespace pace {

bool RawFrame::saturated() const {
    if (!max_count) return false;
    return std::any_of(counts.begin(), counts.end(), [&](double c) { return c >= *max_count; });
}

Spectrometer::Spectrometer(std::string port, int baud, double timeout_s)
    : port_(std::move(port)), baud_(baud), timeout_s_(timeout_s) {}

void Spectrometer::open() {
    if (transport_) return;
    transport_ = std::make_unique<SerialPort>(port_, baud_, timeout_s_);
    try {
        handshake();
    } catch (...) {
        close();
        throw;
    }
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
