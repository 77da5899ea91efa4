// A serial port over POSIX termios (raw 8N1, no flow control) with deadline-based reads
// and typed errors, like pace_edge.streaming.transport.Transport: running out of time is
// TransportTimeout, a vanished or broken port is TransportClosed. A deadline only counts as
// missed when, after it passed, nothing is waiting: a reader that was late (a busy CPU) still
// gets the bytes the device sent in time.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace pace {

using Clock = std::chrono::steady_clock;
using Deadline = Clock::time_point;

class SerialPort {
public:
    // Open `path` at `baud`; `timeout_s` is the default per-call timeout.
    // ConfigError for a baud rate termios cannot set, TransportClosed if it cannot be opened.
    SerialPort(const std::string& path, int baud, double timeout_s);
    ~SerialPort();
    SerialPort(const SerialPort&) = delete;
    SerialPort& operator=(const SerialPort&) = delete;

    const std::string& name() const { return path_; }
    Deadline deadline() const;
    Deadline deadline(double seconds) const;

    // At least one byte (whatever is waiting, up to max_bytes), or TransportTimeout.
    std::vector<std::uint8_t> read_some(Deadline deadline, size_t max_bytes = 1 << 16);
    // Push bytes back so the next read returns them first.
    void unread(const std::vector<std::uint8_t>& data);
    // Send all of `data`; TransportTimeout if the link does not take it within the timeout.
    void write(const std::vector<std::uint8_t>& data);
    void write(const std::string& data);
    // Drop everything received so far (here and in the OS).
    void reset_input();
    void close();
    bool is_open() const { return fd_ >= 0; }

private:
    std::string path_;
    double timeout_s_;
    int fd_ = -1;
    std::vector<std::uint8_t> pending_;
};

// Seconds a UART at `baud` takes for `nbytes` (8N1: 10 bits a byte).
inline double wire_seconds(size_t nbytes, int baud, double bits_per_byte = 10.0) {
    return double(nbytes) * bits_per_byte / double(baud);
}

}  // namespace pace
