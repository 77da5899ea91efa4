// Ocean Binary Protocol frames (pace_edge.streaming.protocols.obp): encode, and an
// incremental parser that resynchronises on the start bytes. Pure bytes, no I/O.
//
//   0 C1 C0 | 2 version | 4 flags | 6 error | 8 message type | 12 regarding | 16 reserved(6)
//   22 checksum type | 23 immediate length | 24 immediate(16) | 40 bytes remaining
//   44 payload(n) | 44+n checksum(16, MD5 of bytes 0..44+n-1 when type 1) | 60+n C5 C4 C3 C2
#pragma once

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "pace/errors.hpp"

namespace pace::obp {

using Bytes = std::vector<std::uint8_t>;

constexpr size_t kHeaderSize = 44;
constexpr size_t kChecksumSize = 16;
constexpr size_t kFooterSize = 4;
constexpr size_t kTrailerSize = kChecksumSize + kFooterSize;
constexpr size_t kMinFrame = kHeaderSize + kTrailerSize;  // 64
constexpr size_t kImmediateSize = 16;
constexpr size_t kMaxPayload = 1 << 16;

constexpr std::uint16_t kVersion = 0x1100;
constexpr std::uint8_t kChecksumNone = 0;
constexpr std::uint8_t kChecksumMd5 = 1;

constexpr std::uint16_t kFlagResponse = 1 << 0;
constexpr std::uint16_t kFlagAck = 1 << 1;
constexpr std::uint16_t kFlagAckRequested = 1 << 2;
constexpr std::uint16_t kFlagNack = 1 << 3;
constexpr std::uint16_t kFlagException = 1 << 4;

constexpr std::uint32_t kMsgReset = 0x00000000;
constexpr std::uint32_t kMsgGetSerial = 0x00000100;
constexpr std::uint32_t kMsgGetRawSpectrum = 0x00101100;
constexpr std::uint32_t kMsgSetIntegrationTime = 0x00110010;
constexpr std::uint32_t kMsgGetWlCoeffCount = 0x00180100;
constexpr std::uint32_t kMsgGetWlCoeff = 0x00180101;

std::string message_name(std::uint32_t message_type);
std::string error_name(int error_number);

struct Message {
    std::uint32_t message_type = 0;
    Bytes immediate;  // at most 16 bytes
    Bytes payload;    // only when the data does not fit the immediate field
    std::uint16_t flags = 0;
    std::uint16_t error = 0;
    std::uint32_t regarding = 0;
    std::uint8_t checksum_type = kChecksumNone;
    std::uint16_t version = kVersion;

    // Data in the immediate field if it fits, else in the payload.
    static Message with_data(std::uint32_t type, const Bytes& data);
    const Bytes& data() const { return payload.empty() ? immediate : payload; }
    bool is_response() const { return flags & kFlagResponse; }
    bool is_nack() const { return flags & kFlagNack; }
    bool ack_requested() const { return flags & kFlagAckRequested; }
    bool is_error() const { return (flags & (kFlagNack | kFlagException)) || error != 0; }
    // The DeviceError this (error) reply stands for.
    DeviceError device_error() const;
};

Bytes encode(const Message& msg);

using Item = std::variant<Message, ProtocolFault>;

// Incremental parser: feed() returns, in stream order, every complete Message and every
// ProtocolFault found so far. Garbage before a start sequence is skipped (counted); a frame
// that fails its checks is abandoned one byte at a time (so a real frame behind a false
// start is still found); a frame with a bad checksum is dropped whole.
class FrameParser {
public:
    explicit FrameParser(size_t max_payload = kMaxPayload) : max_payload_(max_payload) {}

    std::vector<Item> feed(const std::uint8_t* data, size_t n);
    std::vector<Item> feed(const Bytes& data) { return feed(data.data(), data.size()); }
    // Declare the frame in progress truncated (its end will never come); parse on.
    std::vector<Item> expire();
    void reset() { buf_.clear(); }

    size_t pending() const { return buf_.size(); }
    bool in_frame() const;
    size_t skipped = 0;
    size_t frames = 0;
    size_t errors = 0;

private:
    std::vector<Item> drain();
    // The frame at the buffer start: an Item, or nothing when more bytes are needed.
    bool frame_at_start(std::vector<Item>& out);
    void drop(size_t n) { buf_.erase(buf_.begin(), buf_.begin() + long(n)); }
    ProtocolFault fault(ErrorKind kind, std::string message);

    size_t max_payload_;
    Bytes buf_;
};

}  // namespace pace::obp
