// Spectrometer drivers over a SerialPort (pace_edge.streaming.drivers): OBP (Ocean STS and
// relatives) and ASCII lines (Arduino-style). Every failure is a typed StreamError; protocol
// and device errors leave the driver usable, after TransportClosed call reconnect().
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "pace/ascii_lines.hpp"
#include "pace/numeric.hpp"
#include "pace/obp.hpp"
#include "pace/serial_port.hpp"

namespace pace {

constexpr int kDefaultBaud = 115200;   // ASCII micro-spectrometers
constexpr int kObpDefaultBaud = 9600;  // Ocean STS over RS-232

// One spectrum as read from the device, before any axis or dark handling.
struct RawFrame {
    Vec counts;                // per pixel, device order
    std::uint64_t sequence;    // 0, 1, 2, ... per driver
    std::int64_t timestamp_ns; // steady clock when the frame was complete
    size_t nbytes;             // bytes the frame took on the wire
    std::optional<double> max_count;
    bool saturated() const;    // any pixel at the ADC full scale (unknown full scale: false)
};

struct DriverStats {
    size_t frames = 0;
    std::map<std::string, size_t> errors;  // by error class name
    size_t bytes_in = 0;
    size_t reconnects = 0;
};

class Spectrometer {
public:
    Spectrometer(std::string port, int baud, double timeout_s);
    virtual ~Spectrometer() = default;
    virtual const char* protocol() const = 0;

    void open();  // open the port and run the protocol's handshake
    void close();
    bool is_open() const { return transport_ != nullptr; }
    // Close, then retry open() with exponential backoff (interval_s doubling up to 0.5 s)
    // until it succeeds or timeout_s runs out (then the last TransportError is thrown).
    void reconnect(double timeout_s = 5.0, double interval_s = 0.05);

    virtual std::optional<std::string> serial_number() const = 0;
    virtual size_t pixels() const = 0;
    virtual std::optional<Vec> wavelengths() const = 0;  // nm per pixel, if calibrated
    virtual void set_integration_time_us(long long microseconds) = 0;
    virtual std::optional<double> max_count() const { return std::nullopt; }

    // The next spectrum; typed errors are counted in `stats` and rethrown.
    RawFrame read_spectrum();

    const std::string& port() const { return port_; }
    SerialPort& transport();
    DriverStats stats;

protected:
    virtual void handshake() = 0;
    virtual std::pair<Vec, size_t> read_counts() = 0;

    std::string port_;
    int baud_;
    double timeout_s_;

private:
    std::unique_ptr<SerialPort> transport_;
    std::uint64_t sequence_ = 0;
};

struct ObpOptions {
    int baud = kObpDefaultBaud;
    double timeout_s = 1.0;
    size_t pixels = 1024;
    int bits = 14;
    std::string checksum = "md5";  // or "none"
    bool read_calibration = true;
};

// Identifies the device and reads its wavelength calibration on open. Every request carries
// a fresh `regarding` number; replies with another number (late answers) are dropped.
class ObpSpectrometer : public Spectrometer {
public:
    ObpSpectrometer(const std::string& port, const ObpOptions& options);
    const char* protocol() const override { return "obp"; }

    std::optional<std::string> serial_number() const override { return serial_; }
    size_t pixels() const override { return pixels_; }
    std::optional<Vec> wavelengths() const override;
    void set_integration_time_us(long long microseconds) override;
    std::optional<double> max_count() const override { return double((1ULL << bits_) - 1); }
    const std::optional<Vec>& coefficients() const { return coefficients_; }

    // One request and its reply (an ACK for ack=true set-commands). DeviceError for a NACK,
    // ProtocolError for a corrupt reply, TransportTimeout when nothing answers,
    // TruncatedFrame when a reply started but never finished.
    obp::Message request(std::uint32_t message_type, const obp::Bytes& data = {}, bool ack = false);
    std::string read_serial_number();
    Vec read_coefficients();
    void reset();
    size_t stale_replies = 0;

protected:
    void handshake() override;
    std::pair<Vec, size_t> read_counts() override;

private:
    const obp::Message* match(const std::vector<obp::Item>& items, std::uint32_t type,
                              std::uint32_t rid);

    size_t pixels_;
    int bits_;
    std::uint8_t checksum_;
    bool read_calibration_;
    obp::FrameParser parser_;
    std::uint32_t regarding_ = 0;
    std::optional<std::string> serial_;
    std::optional<Vec> coefficients_;
};

struct AsciiOptions {
    int baud = kDefaultBaud;
    double timeout_s = 1.0;
    size_t pixels = 288;
    std::string separator = "auto";
    std::optional<std::string> query;  // polled with this command; free-running when unset
    std::string command_eol = "\n";
    std::optional<std::string> header_prefix;
    std::optional<Vec> wavelength_coefficients;
    std::optional<std::string> integration_command;  // "{us}", "{ms}" or "{s}" template
    std::optional<double> max_count;
    std::optional<std::string> serial_number;
    size_t max_line = ascii::kMaxLine;
};

// Polled: each read flushes stale input, sends the query and parses the next data line.
// Free-running: the first line after opening (likely cut) is dropped, then lines are read
// as they come. Blank lines and lines starting with the header prefix are skipped.
class AsciiSpectrometer : public Spectrometer {
public:
    AsciiSpectrometer(const std::string& port, const AsciiOptions& options);
    const char* protocol() const override { return "ascii"; }

    std::optional<std::string> serial_number() const override { return options_.serial_number; }
    size_t pixels() const override { return format_.pixels(); }
    std::optional<Vec> wavelengths() const override { return wavelengths_; }
    void set_integration_time_us(long long microseconds) override;
    std::optional<double> max_count() const override { return options_.max_count; }
    size_t skipped_lines = 0;

protected:
    void handshake() override;
    std::pair<Vec, size_t> read_counts() override;

private:
    void resync();
    bool skip(const std::string& line);

    AsciiOptions options_;
    ascii::LineFormat format_;
    std::optional<Vec> wavelengths_;
    ascii::LineSplitter splitter_;
    std::vector<ascii::Item> pending_;
    size_t next_ = 0;  // first unconsumed item of pending_
    bool drop_next_line_ = false;
};

// An opened driver for `protocol` ("obp" or "ascii").
std::unique_ptr<Spectrometer> open_spectrometer(const std::string& protocol,
                                                const std::string& port, const ObpOptions& obp,
                                                const AsciiOptions& ascii);

}  // namespace pace
