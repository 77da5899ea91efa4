#include "pace/errors.hpp"

namespace pace {

const char* kind_name(ErrorKind kind) {
    switch (kind) {
        case ErrorKind::TransportTimeout: return "TransportTimeout";
        case ErrorKind::TransportClosed: return "TransportClosed";
        case ErrorKind::FrameError: return "FrameError";
        case ErrorKind::TruncatedFrame: return "TruncatedFrame";
        case ErrorKind::ChecksumError: return "ChecksumError";
        case ErrorKind::PixelCountError: return "PixelCountError";
        case ErrorKind::NonNumericValue: return "NonNumericValue";
        case ErrorKind::NonFiniteValue: return "NonFiniteValue";
        case ErrorKind::LineTooLong: return "LineTooLong";
        case ErrorKind::DeviceError: return "DeviceError";
        case ErrorKind::DeviceChanged: return "DeviceChanged";
        case ErrorKind::ConfigError: return "ConfigError";
    }
    return "StreamError";
}

}  // namespace pace
