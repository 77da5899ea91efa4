// The OBP driver (pace_edge.streaming.drivers.obp_device).
#include <cstring>

#include "pace/spectral_axis.hpp"
#include "pace/spectrometer.hpp"

namespace pace {

ObpSpectrometer::ObpSpectrometer(const std::string& port, const ObpOptions& o)
    : Spectrometer(port, o.baud, o.timeout_s, o.allow_device_change),
      pixels_(o.pixels),
      bits_(o.bits),
      checksum_(o.checksum == "md5" ? obp::kChecksumMd5 : obp::kChecksumNone),
      read_calibration_(o.read_calibration) {
    if (o.checksum != "md5" && o.checksum != "none")
        throw ConfigError("checksum must be 'md5' or 'none', got '" + o.checksum + "'");
    if (o.pixels < 1 || o.bits < 1 || o.bits > 32)
        throw ConfigError("bad pixels=" + std::to_string(o.pixels) + " / bits=" + std::to_string(o.bits));
}

std::optional<Vec> ObpSpectrometer::wavelengths() const {
    if (!coefficients_ || coefficients_->empty()) return std::nullopt;
    return wavelengths_from_coefficients(*coefficients_, pixels_);
}

void ObpSpectrometer::set_integration_time_us(long long us) {
    if (us <= 0 || us > 0xFFFFFFFFLL)
        throw ConfigError("integration time must be 1..2³²-1 µs, got " + std::to_string(us));
    obp::Bytes data(4);
    for (int i = 0; i < 4; ++i) data[size_t(i)] = std::uint8_t(std::uint64_t(us) >> (8 * i));
    request(obp::kMsgSetIntegrationTime, data, true);
    integration_us_ = us;
}

size_t ObpSpectrometer::spectrum_reply_bytes() const {
    const size_t size = 2 * pixels_;
    return obp::kMinFrame + (size > obp::kImmediateSize ? size : 0);
}

void ObpSpectrometer::reset() { request(obp::kMsgReset, {}, true); }

void ObpSpectrometer::handshake() {
    parser_.reset();
    if (integration_us_ > 0 && opened_once_) {  // a reconnect: restore the integration time
        obp::Bytes data(4);
        for (int i = 0; i < 4; ++i) data[size_t(i)] = std::uint8_t(std::uint64_t(integration_us_) >> (8 * i));
        request(obp::kMsgSetIntegrationTime, data, true);
    }
    serial_ = read_serial_number();
    if (read_calibration_) {
        try {
            coefficients_ = read_coefficients();
        } catch (const DeviceError&) {
            coefficients_.reset();
        }
    }
}

std::pair<Vec, size_t> ObpSpectrometer::read_counts() {
    const obp::Message reply =
        request(obp::kMsgGetRawSpectrum, {}, false, spectrum_reply_bytes(), work_seconds());
    const obp::Bytes& data = reply.data();
    if (data.size() != 2 * pixels_) {
        throw ProtocolError(ErrorKind::PixelCountError,
                            "spectrum of " + std::to_string(data.size()) + " bytes, expected " +
                                std::to_string(2 * pixels_) + " (" + std::to_string(pixels_) +
                                " pixels)");
    }
    Vec counts(pixels_);
    for (size_t i = 0; i < pixels_; ++i) counts[i] = double(data[2 * i] | data[2 * i + 1] << 8);
    return {std::move(counts), obp::kMinFrame + reply.payload.size()};
}

std::string ObpSpectrometer::read_serial_number() {
    const obp::Bytes data = request(obp::kMsgGetSerial).data();
    std::string out;
    for (std::uint8_t b : data) {
        if (b == 0) break;
        out += b < 0x80 ? char(b) : '?';  // decode("ascii", "replace")
    }
    return out;
}

Vec ObpSpectrometer::read_coefficients() {
    const obp::Bytes count = request(obp::kMsgGetWlCoeffCount).data();
    if (count.empty())
        throw ProtocolError(ErrorKind::FrameError, "empty reply to 'get wavelength coefficient count'");
    Vec out;
    for (unsigned i = 0; i < count[0]; ++i) {
        const obp::Bytes data = request(obp::kMsgGetWlCoeff, {std::uint8_t(i)}).data();
        if (data.size() < 4) {
            throw ProtocolError(ErrorKind::FrameError, "coefficient " + std::to_string(i) +
                                                           ": reply of " + std::to_string(data.size()) +
                                                           " bytes, expected 4");
        }
        std::uint32_t bits = std::uint32_t(data[0]) | std::uint32_t(data[1]) << 8 |
                             std::uint32_t(data[2]) << 16 | std::uint32_t(data[3]) << 24;
        float f;
        std::memcpy(&f, &bits, 4);
        out.push_back(double(f));
    }
    return out;
}

obp::Message ObpSpectrometer::request(std::uint32_t type, const obp::Bytes& data, bool ack,
                                      size_t reply_bytes, double work_s) {
    SerialPort& t = transport();
    regarding_ = regarding_ % 0xFFFFFFFFu + 1;
    const std::uint32_t rid = regarding_;
    obp::Message msg = obp::Message::with_data(type, data);
    msg.flags = ack ? obp::kFlagAckRequested : 0;
    msg.regarding = rid;
    msg.checksum_type = checksum_;
    const obp::Bytes wire = obp::encode(msg);
    ReplyClock clock(reply_timing(wire.size(), reply_bytes, work_s));
    t.write(wire);
    while (true) {
        std::vector<std::uint8_t> chunk;
        try {
            chunk = t.read_some(clock.deadline());
        } catch (const TransportError& e) {
            if (e.kind() != ErrorKind::TransportTimeout) throw;
            const auto items = parser_.expire();
            if (const obp::Message* reply = match(items, type, rid)) return *reply;
            for (const obp::Item& item : items)
                if (auto* f = std::get_if<ProtocolFault>(&item); f && f->kind == ErrorKind::TruncatedFrame)
                    throw ProtocolError(ErrorKind::TruncatedFrame, f->message + " (" + clock.describe() + ")");
            throw transport_timeout(port_ + ": " + clock.describe());
        }
        clock.got(chunk.size());
        stats.bytes_in += chunk.size();
        const auto items = parser_.feed(chunk);
        if (const obp::Message* reply = match(items, type, rid)) return *reply;
        for (const obp::Item& item : items)
            if (auto* f = std::get_if<ProtocolFault>(&item)) f->raise();
    }
}

const obp::Message* ObpSpectrometer::match(const std::vector<obp::Item>& items,
                                           std::uint32_t type, std::uint32_t rid) {
    for (const obp::Item& item : items) {
        const auto* m = std::get_if<obp::Message>(&item);
        if (m == nullptr || !m->is_response()) continue;
        if (m->regarding != rid || m->message_type != type) {
            ++stale_replies;
            continue;
        }
        if (m->is_error()) throw m->device_error();
        return m;
    }
    return nullptr;
}

}  // namespace pace
