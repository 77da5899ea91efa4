#include "pace/serial_port.hpp"

#include <fcntl.h>
#include <poll.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "pace/errors.hpp"

namespace pace {

namespace {

speed_t baud_constant(int baud) {
    switch (baud) {
        case 1200: return B1200;
        case 2400: return B2400;
        case 4800: return B4800;
        case 9600: return B9600;
        case 19200: return B19200;
        case 38400: return B38400;
        case 57600: return B57600;
        case 115200: return B115200;
        case 230400: return B230400;
#ifdef B460800
        case 460800: return B460800;
#endif
#ifdef B921600
        case 921600: return B921600;
#endif
#ifdef B1000000
        case 1000000: return B1000000;
#endif
#ifdef B2000000
        case 2000000: return B2000000;
#endif
#ifdef B3000000
        case 3000000: return B3000000;
#endif
#ifdef B4000000
        case 4000000: return B4000000;
#endif
        default: throw ConfigError("unsupported baud rate " + std::to_string(baud));
    }
}

int remaining_ms(Deadline deadline) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    return left.count() < 0 ? 0 : int(std::min<long long>(left.count() + 1, 1 << 30));
}

std::string errno_text() { return std::strerror(errno); }


}  // namespace

SerialPort::SerialPort(const std::string& path, int baud, double timeout_s)
    : path_(path), timeout_s_(timeout_s) {
    if (!(timeout_s > 0)) throw ConfigError("timeout must be positive, got " + std::to_string(timeout_s));
    const speed_t speed = baud_constant(baud);
    fd_ = ::open(path.c_str(), O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
    if (fd_ < 0) throw transport_closed("cannot open " + path + ": " + errno_text());
    termios tio{};
    if (::tcgetattr(fd_, &tio) != 0) {
        const std::string why = errno_text();
        close();
        throw transport_closed("cannot open " + path + ": not a serial port (" + why + ")");
    }
    ::cfmakeraw(&tio);
    tio.c_cflag |= CLOCAL | CREAD;
    tio.c_cflag &= ~(CSTOPB | PARENB | CRTSCTS);
    tio.c_cflag = (tio.c_cflag & ~CSIZE) | CS8;
    tio.c_iflag &= ~(IXON | IXOFF | IXANY);
    tio.c_cc[VMIN] = 0;
    tio.c_cc[VTIME] = 0;
    ::cfsetispeed(&tio, speed);
    ::cfsetospeed(&tio, speed);
    if (::tcsetattr(fd_, TCSANOW, &tio) != 0) {
        const std::string why = errno_text();
        close();
        throw transport_closed("cannot configure " + path + ": " + why);
    }
}

SerialPort::~SerialPort() { close(); }

void SerialPort::close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
}

Deadline SerialPort::deadline() const { return deadline(timeout_s_); }

Deadline SerialPort::deadline(double seconds) const {
    return Clock::now() + std::chrono::duration_cast<Clock::duration>(
                              std::chrono::duration<double>(seconds));
}

std::vector<std::uint8_t> SerialPort::read_some(Deadline deadline, size_t max_bytes) {
    if (!pending_.empty()) {
        const size_t n = std::min(max_bytes, pending_.size());
        std::vector<std::uint8_t> out(pending_.begin(), pending_.begin() + long(n));
        pending_.erase(pending_.begin(), pending_.begin() + long(n));
        return out;
    }
    if (fd_ < 0) throw transport_closed(path_ + ": not open");
    std::vector<std::uint8_t> out(max_bytes);
    bool last_look = false;
    while (true) {
        // Block for the time left; once it is gone, look once more without waiting, so that
        // only a device that really said nothing makes a timeout.
        pollfd p{fd_, POLLIN, 0};
        const int ready = ::poll(&p, 1, last_look ? 0 : remaining_ms(deadline));
        if (ready < 0 && errno != EINTR) throw transport_closed(path_ + ": read failed: " + errno_text());
        if (ready > 0) {
            const ssize_t n = ::read(fd_, out.data(), max_bytes);
            if (n > 0) {
                out.resize(size_t(n));
                return out;
            }
            if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
                // EIO (pty master gone) or end of file: the device went away
                throw transport_closed(path_ + ": read failed: " +
                                       (n == 0 ? std::string("device disconnected") : errno_text()));
            }
            if (p.revents & (POLLHUP | POLLERR | POLLNVAL))
                throw transport_closed(path_ + ": read failed: device disconnected");
        }
        if (last_look) throw transport_timeout(path_ + ": no data within the timeout");
        if (ready <= 0 && Clock::now() >= deadline) last_look = true;
    }
}

void SerialPort::unread(const std::vector<std::uint8_t>& data) {
    pending_.insert(pending_.begin(), data.begin(), data.end());
}

void SerialPort::write(const std::string& data) {
    write(std::vector<std::uint8_t>(data.begin(), data.end()));
}

void SerialPort::write(const std::vector<std::uint8_t>& data) {
    if (fd_ < 0) throw transport_closed(path_ + ": not open");
    const Deadline end = deadline();
    size_t sent = 0;
    while (sent < data.size()) {
        const ssize_t n = ::write(fd_, data.data() + sent, data.size() - sent);
        if (n > 0) {
            sent += size_t(n);
            continue;
        }
        if (n < 0 && errno != EAGAIN && errno != EINTR)
            throw transport_closed(path_ + ": write failed: " + errno_text());
        if (Clock::now() >= end) throw transport_timeout(path_ + ": write timed out");
        pollfd p{fd_, POLLOUT, 0};
        ::poll(&p, 1, std::min(remaining_ms(end), 50));
    }
}

void SerialPort::reset_input() {
    pending_.clear();
    if (fd_ >= 0 && ::tcflush(fd_, TCIFLUSH) != 0)
        throw transport_closed(path_ + ": flush failed: " + errno_text());
}

}  // namespace pace
