// Typed errors, mirroring pace_edge.errors and pace_edge.streaming.errors.
//
//   Error                      (PaceEdgeError: one-line user error, exit status 2)
//   ├── BundleError            (manifest missing, malformed, tampered)
//   ├── JsonError              (malformed JSON or a field of the wrong type)
//   ├── DataError              (a spectrum the preprocessing cannot take)
//   ├── InferenceError         (backend failures)
//   └── StreamError            (spectrometer link; kind() is the Python class name)
//       ├── TransportError     TransportTimeout, TransportClosed
//       ├── ProtocolError      FrameError, TruncatedFrame, ChecksumError, PixelCountError,
//       │                      NonNumericValue, NonFiniteValue, LineTooLong
//       ├── DeviceError        (NACK / error number)
//       └── ConfigError        (bad options)
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>

namespace pace {

class Error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

class BundleError : public Error {
public:
    using Error::Error;
};

class JsonError : public Error {
public:
    using Error::Error;
};

class DataError : public Error {
public:
    using Error::Error;
};

class InferenceError : public Error {
public:
    using Error::Error;
};

// A blocking read cut short by SIGINT/SIGTERM (not a stream error: nothing was received).
class Interrupted : public Error {
public:
    Interrupted() : Error("interrupted") {}
};

enum class ErrorKind {
    TransportTimeout,
    TransportClosed,
    FrameError,
    TruncatedFrame,
    ChecksumError,
    PixelCountError,
    NonNumericValue,
    NonFiniteValue,
    LineTooLong,
    DeviceError,
    DeviceChanged,
    ConfigError,
};

// The Python class name of `kind` ("ChecksumError", ...).
const char* kind_name(ErrorKind kind);

class StreamError : public Error {
public:
    StreamError(ErrorKind kind, const std::string& message) : Error(message), kind_(kind) {}
    ErrorKind kind() const { return kind_; }
    const char* name() const { return kind_name(kind_); }

private:
    ErrorKind kind_;
};

class TransportError : public StreamError {
public:
    using StreamError::StreamError;
};

class ProtocolError : public StreamError {
public:
    using StreamError::StreamError;
};

class DeviceError : public StreamError {
public:
    DeviceError(const std::string& message, int error_number, std::uint32_t message_type)
        : StreamError(ErrorKind::DeviceError, message),
          error_number(error_number),
          message_type(message_type) {}
    int error_number;
    std::uint32_t message_type;
};

// After a reconnect another device (other serial number / identification line) answers.
class DeviceChanged : public StreamError {
public:
    DeviceChanged(const std::string& message, std::string expected, std::string found)
        : StreamError(ErrorKind::DeviceChanged, message),
          expected(std::move(expected)),
          found(std::move(found)) {}
    std::string expected, found;
};

class ConfigError : public StreamError {
public:
    explicit ConfigError(const std::string& message)
        : StreamError(ErrorKind::ConfigError, message) {}
};

inline TransportError transport_timeout(const std::string& m) {
    return TransportError(ErrorKind::TransportTimeout, m);
}
inline TransportError transport_closed(const std::string& m) {
    return TransportError(ErrorKind::TransportClosed, m);
}

// A protocol problem found while parsing: returned by the parsers (in stream order with the
// good messages), thrown by the drivers.
struct ProtocolFault {
    ErrorKind kind;
    std::string message;
    [[noreturn]] void raise() const { throw ProtocolError(kind, message); }
};

}  // namespace pace
