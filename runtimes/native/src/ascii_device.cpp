// The ASCII-lines driver (pace_edge.streaming.drivers.ascii_device).
#include "pace/json.hpp"
#include "pace/spectral_axis.hpp"
#include "pace/spectrometer.hpp"

namespace pace {

namespace {

// Python's str.format for the {us}, {ms} and {s} fields of an integration command.
std::string format_command(const std::string& templ, long long us) {
    std::string out;
    for (size_t i = 0; i < templ.size();) {
        auto field = [&](const char* name, const std::string& value) {
            const std::string key = std::string("{") + name + "}";
            if (templ.compare(i, key.size(), key) != 0) return false;
            out += value;
            i += key.size();
            return true;
        };
        if (field("us", std::to_string(us)) || field("ms", json::number(double(us) / 1e3)) ||
            field("s", json::number(double(us) / 1e6))) {
            continue;
        }
        out += templ[i++];
    }
    return out;
}

}  // namespace

AsciiSpectrometer::AsciiSpectrometer(const std::string& port, const AsciiOptions& o)
    : Spectrometer(port, o.baud, o.timeout_s, o.allow_device_change),
      options_(o),
      format_(o.pixels, ascii::separator_of(o.separator)),
      splitter_(o.max_line) {
    if (o.wavelength_coefficients)
        wavelengths_ = wavelengths_from_coefficients(*o.wavelength_coefficients, o.pixels);
}

void AsciiSpectrometer::set_integration_time_us(long long us) {
    if (!options_.integration_command)
        throw ConfigError(port_ + ": no integration_command configured for this ASCII device");
    if (us <= 0) throw ConfigError("integration time must be positive, got " + std::to_string(us) + " µs");
    transport().write(format_command(*options_.integration_command, us) + options_.command_eol);
    integration_us_ = us;
}

void AsciiSpectrometer::handshake() {
    resync();
    if (integration_us_ > 0 && opened_once_) set_integration_time_us(integration_us_);  // reconnect
}

std::optional<std::string> AsciiSpectrometer::read_identity() {
    if (!options_.identify) return options_.serial_number;
    SerialPort& t = transport();
    const std::string command = *options_.identify + options_.command_eol;
    ReplyClock clock(reply_timing(command.size(), 64, 0.0));
    t.write(command);
    while (true) {
        while (next_ < pending_.size()) {
            const ascii::Item item = std::move(pending_[next_++]);
            const auto* line = std::get_if<std::string>(&item);
            if (line == nullptr) continue;
            std::string text = *line;
            const auto space = [](char c) { return c == ' ' || (c >= '\t' && c <= '\r'); };
            while (!text.empty() && space(text.back())) text.pop_back();
            size_t start = 0;
            while (start < text.size() && space(text[start])) ++start;
            text = text.substr(start);
            if (text.empty() || format_.cells(*line).size() > std::max<size_t>(2, pixels() / 2)) continue;
            resync();
            return text;
        }
        pending_.clear();
        next_ = 0;
        std::vector<std::uint8_t> chunk;
        try {
            chunk = t.read_some(clock.deadline());
        } catch (const TransportError& e) {
            if (e.kind() != ErrorKind::TransportTimeout) throw;
            throw transport_timeout(port_ + ": no answer to the identify command '" +
                                    *options_.identify + "' (" + clock.describe() + ")");
        }
        clock.got(chunk.size());
        for (auto& it : splitter_.feed(reinterpret_cast<const char*>(chunk.data()), chunk.size()))
            pending_.push_back(std::move(it));
    }
}

void AsciiSpectrometer::resync() {
    transport().reset_input();
    splitter_.reset();
    pending_.clear();
    next_ = 0;
    drop_next_line_ = !options_.query.has_value();
}

bool AsciiSpectrometer::skip(const std::string& line) {
    if (drop_next_line_) {
        drop_next_line_ = false;
        return true;
    }
    bool blank = true;
    for (char c : line)
        if (!(c == ' ' || (c >= '\t' && c <= '\r') || (c >= 0x1c && c <= 0x1f))) blank = false;
    const auto& prefix = options_.header_prefix;
    if (blank || (prefix && line.compare(0, prefix->size(), *prefix) == 0)) {
        ++skipped_lines;
        return true;
    }
    return false;
}

std::pair<Vec, size_t> AsciiSpectrometer::read_counts() {
    SerialPort& t = transport();
    const size_t line_bytes = pixels() * 6 + 2;  // up to 5 digits and a separator a pixel
    std::optional<ReplyClock> clock;
    if (options_.query) {
        resync();
        const std::string command = *options_.query + options_.command_eol;
        clock.emplace(reply_timing(command.size(), line_bytes, work_seconds()));
        t.write(command);
    } else {
        clock.emplace(reply_timing(0, line_bytes, work_seconds()));
    }
    while (true) {
        while (next_ < pending_.size()) {
            const ascii::Item item = std::move(pending_[next_++]);
            if (next_ == pending_.size()) {
                pending_.clear();
                next_ = 0;
            }
            if (const auto* fault = std::get_if<ProtocolFault>(&item)) fault->raise();
            const std::string& line = std::get<std::string>(item);
            if (skip(line)) continue;
            return {format_.parse(line), line.size()};
        }
        std::vector<std::uint8_t> chunk;
        try {
            chunk = t.read_some(clock->deadline());
        } catch (const TransportError& e) {
            if (e.kind() != ErrorKind::TransportTimeout) throw;
            if (splitter_.pending()) {
                const size_t cut = splitter_.pending();
                splitter_.reset();
                drop_next_line_ = !options_.query.has_value();  // its end may still come
                throw ProtocolError(ErrorKind::TruncatedFrame, "line cut after " + std::to_string(cut) +
                                                                   " bytes (" + clock->describe() + ")");
            }
            throw transport_timeout(port_ + ": " + clock->describe());
        }
        clock->got(chunk.size());
        stats.bytes_in += chunk.size();
        auto items = splitter_.feed(reinterpret_cast<const char*>(chunk.data()), chunk.size());
        for (auto& item : items) pending_.push_back(std::move(item));
    }
}

}  // namespace pace
