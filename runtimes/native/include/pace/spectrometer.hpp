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

// When a reply is due: first byte within first_byte_s of the request, then no silence over
// gap_s, all of it within total_s (pace_edge.streaming.drivers.base.ReplyTiming).
struct ReplyTiming {
    double first_byte_s;
    double gap_s;
    double total_s;
    std::string explain;
};

// The deadlines of one reply: deadline() before each read, got() after it.
class ReplyClock {
public:
    explicit ReplyClock(ReplyTiming timing);
    Deadline deadline() const;
    void got(size_t nbytes);
    std::string describe() const;  // which limit passed, for the error message

private:
    ReplyTiming timing_;
    Deadline total_, first_;
    std::optional<Deadline> last_;
    size_t received_ = 0;
};

struct DriverStats {
    size_t frames = 0;
    std::map<std::string, size_t> errors;  // by error class name
    size_t bytes_in = 0;
    size_t reconnects = 0;
};

class Spectrometer {
public:
    Spectrometer(std::string port, int baud, double timeout_s, bool allow_device_change = false);
    virtual ~Spectrometer() = default;
    virtual const char* protocol() const = 0;

    // Open the port, run the protocol's handshake and check the device's identity: the
    // first device opened sets identity(); a later open (a reconnect) that finds another
    // throws DeviceChanged unless allow_device_change (then the change is recorded).
    void open();
    void close();
    bool is_open() const { return transport_ != nullptr; }
    // Close, then retry open() with exponential backoff (interval_s doubling up to 0.5 s)
    // until it succeeds or timeout_s runs out (then the last TransportError is thrown).
    // DeviceChanged is thrown at once.
    void reconnect(double timeout_s = 5.0, double interval_s = 0.05);

    // Device time before a spectrum reply: integration time (as set here) x scans.
    double work_seconds() const { return double(integration_us_) * 1e-6 * double(scans_to_average_); }
    // Deadlines from the link: first byte by request wire time + work + slack (timeout),
    // then silence at most the slack (never under 64 byte times), all within first byte +
    // twice the reply's wire time + slack.
    ReplyTiming reply_timing(size_t request_bytes, size_t reply_bytes, double work_s) const;
    virtual bool free_running() const { return false; }
    // What identifies the device on the link now (empty optional: it cannot say).
    virtual std::optional<std::string> read_identity() { return serial_number(); }
    const std::optional<std::string>& identity() const { return identity_; }
    std::vector<std::pair<std::string, std::string>> device_changes;
    bool allow_device_change;
    int baud() const { return baud_; }

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
    long long integration_us_ = 0;  // as last set through this driver (0: never)
    long long scans_to_average_ = 1;
    bool opened_once_ = false;

private:
    void check_identity(const std::optional<std::string>& found);

    std::unique_ptr<SerialPort> transport_;
    std::optional<std::string> identity_;
    std::uint64_t sequence_ = 0;
};

struct ObpOptions {
    int baud = kObpDefaultBaud;
    double timeout_s = 1.0;
    size_t pixels = 1024;
    int bits = 14;
    std::string checksum = "md5";  // or "none"
    bool read_calibration = true;
    bool allow_device_change = false;
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
    // reply_bytes (expected size) and work_s (device time before it answers) set the deadlines.
    obp::Message request(std::uint32_t message_type, const obp::Bytes& data = {}, bool ack = false,
                         size_t reply_bytes = obp::kMinFrame, double work_s = 0.0);
    size_t spectrum_reply_bytes() const;
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
    std::optional<std::string> identify;  // command answered by one identification line
    bool allow_device_change = false;
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
    bool free_running() const override { return !options_.query.has_value(); }
    std::optional<std::string> read_identity() override;
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
