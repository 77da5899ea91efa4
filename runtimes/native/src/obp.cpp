#include "pace/obp.hpp"

#include <algorithm>
#include <cstdio>
#include <map>

#include "pace/hash.hpp"

namespace pace::obp {

namespace {

const std::uint8_t kStart[2] = {0xC1, 0xC0};
const std::uint8_t kFooter[4] = {0xC5, 0xC4, 0xC3, 0xC2};

std::uint16_t u16(const std::uint8_t* p) { return std::uint16_t(p[0] | p[1] << 8); }
std::uint32_t u32(const std::uint8_t* p) {
    return std::uint32_t(p[0]) | std::uint32_t(p[1]) << 8 | std::uint32_t(p[2]) << 16 |
           std::uint32_t(p[3]) << 24;
}
void put16(Bytes& b, std::uint16_t v) {
    b.push_back(std::uint8_t(v));
    b.push_back(std::uint8_t(v >> 8));
}
void put32(Bytes& b, std::uint32_t v) {
    for (int i = 0; i < 4; ++i) b.push_back(std::uint8_t(v >> (8 * i)));
}

std::string hex(const std::uint8_t* p, size_t n) { return to_hex(p, n); }

}  // namespace

std::string message_name(std::uint32_t type) {
    static const std::map<std::uint32_t, std::string> names = {
        {kMsgReset, "reset"},
        {kMsgGetSerial, "get serial number"},
        {kMsgGetRawSpectrum, "get raw spectrum"},
        {kMsgSetIntegrationTime, "set integration time"},
        {kMsgGetWlCoeffCount, "get wavelength coefficient count"},
        {kMsgGetWlCoeff, "get wavelength coefficient"},
    };
    auto it = names.find(type);
    if (it != names.end()) return it->second;
    char buf[32];
    std::snprintf(buf, sizeof buf, "message 0x%08X", type);
    return buf;
}

std::string error_name(int error) {
    static const std::map<int, std::string> names = {
        {0, "success"},
        {1, "invalid or unsupported protocol"},
        {2, "unknown message type"},
        {3, "bad checksum"},
        {4, "message too large"},
        {5, "payload length does not match message type"},
        {6, "payload data invalid"},
        {7, "device not ready for this message type"},
        {8, "unknown checksum type"},
        {9, "device reset unexpectedly"},
        {10, "too many buses"},
        {11, "out of memory"},
        {12, "message valid but the requested information does not exist"},
        {13, "internal device error"},
        {14, "message did not end properly"},
        {15, "current scan interrupted"},
        {100, "could not decrypt properly"},
        {101, "firmware layout invalid"},
        {102, "data packet was the wrong size"},
        {103, "hardware revision not compatible with the firmware"},
        {104, "existing flash map not compatible with the firmware"},
    };
    auto it = names.find(error);
    return it != names.end() ? it->second : "unknown error " + std::to_string(error);
}

Message Message::with_data(std::uint32_t type, const Bytes& data) {
    Message m;
    m.message_type = type;
    (data.size() <= kImmediateSize ? m.immediate : m.payload) = data;
    return m;
}

DeviceError Message::device_error() const {
    const std::string name = error_name(error);
    const char* kind = is_nack() ? "NACK" : (flags & kFlagException) ? "exception" : "error";
    return DeviceError(std::string("device ") + kind + " to " + message_name(message_type) +
                           ": error " + std::to_string(error) + " (" + name + ")",
                       error, message_type);
}

Bytes encode(const Message& msg) {
    Bytes b(kStart, kStart + 2);
    put16(b, msg.version);
    put16(b, msg.flags);
    put16(b, msg.error);
    put32(b, msg.message_type);
    put32(b, msg.regarding);
    b.insert(b.end(), 6, 0);  // reserved
    b.push_back(msg.checksum_type);
    const size_t ilen = std::min(msg.immediate.size(), kImmediateSize);
    b.push_back(std::uint8_t(ilen));
    b.insert(b.end(), msg.immediate.begin(), msg.immediate.begin() + long(ilen));
    b.insert(b.end(), kImmediateSize - ilen, 0);
    put32(b, std::uint32_t(msg.payload.size() + kTrailerSize));
    b.insert(b.end(), msg.payload.begin(), msg.payload.end());
    if (msg.checksum_type == kChecksumMd5) {
        auto digest = md5(b.data(), b.size());
        b.insert(b.end(), digest.begin(), digest.end());
    } else {
        b.insert(b.end(), kChecksumSize, 0);
    }
    b.insert(b.end(), kFooter, kFooter + 4);
    return b;
}

// -- parser ------------------------------------------------------------------------------

bool FrameParser::in_frame() const {
    return buf_.size() >= 2 && buf_[0] == kStart[0] && buf_[1] == kStart[1];
}

ProtocolFault FrameParser::fault(ErrorKind kind, std::string message) {
    ++errors;
    return {kind, std::move(message)};
}

std::vector<Item> FrameParser::feed(const std::uint8_t* data, size_t n) {
    buf_.insert(buf_.end(), data, data + n);
    return drain();
}

std::vector<Item> FrameParser::expire() {
    if (!in_frame()) return {};
    std::vector<Item> out;
    out.emplace_back(fault(ErrorKind::TruncatedFrame,
                           "frame truncated after " + std::to_string(buf_.size()) + " bytes"));
    drop(1);
    for (Item& item : drain()) out.push_back(std::move(item));
    return out;
}

std::vector<Item> FrameParser::drain() {
    std::vector<Item> out;
    while (true) {
        auto it = std::search(buf_.begin(), buf_.end(), kStart, kStart + 2);
        if (it == buf_.end()) {
            const size_t keep = !buf_.empty() && buf_.back() == kStart[0] ? 1 : 0;
            skipped += buf_.size() - keep;
            drop(buf_.size() - keep);
            return out;
        }
        const size_t i = size_t(it - buf_.begin());
        if (i) {
            skipped += i;
            drop(i);
        }
        if (buf_.size() < kHeaderSize) return out;
        if (!frame_at_start(out)) return out;
    }
}

bool FrameParser::frame_at_start(std::vector<Item>& out) {
    const std::uint8_t* h = buf_.data();
    const std::uint16_t version = u16(h + 2), flags = u16(h + 4), error = u16(h + 6);
    const std::uint32_t type = u32(h + 8), regarding = u32(h + 12);
    const std::uint8_t ctype = h[22], ilen = h[23];
    const std::uint32_t remaining = u32(h + 40);
    std::string problem;
    char buf[96];
    if (version != 0x1100 && version != 0x1000) {
        std::snprintf(buf, sizeof buf, "unsupported protocol version 0x%04X", version);
        problem = buf;
    } else if (ctype != kChecksumNone && ctype != kChecksumMd5) {
        problem = "unknown checksum type " + std::to_string(ctype);
    } else if (ilen > kImmediateSize) {
        problem = "immediate data length " + std::to_string(ilen) + " > 16";
    } else if (remaining < kTrailerSize || remaining > max_payload_ + kTrailerSize) {
        problem = "bytes remaining " + std::to_string(remaining) + " outside 20.." +
                  std::to_string(max_payload_ + kTrailerSize);
    } else if (ilen && remaining != kTrailerSize) {
        problem = "immediate data (" + std::to_string(ilen) + " bytes) and a payload (" +
                  std::to_string(remaining - 20) + " bytes)";
    }
    if (!problem.empty()) {
        drop(1);
        out.emplace_back(fault(ErrorKind::FrameError, problem));
        return true;
    }
    const size_t total = kHeaderSize + remaining;
    if (buf_.size() < total) return false;
    if (!std::equal(kFooter, kFooter + 4, buf_.begin() + long(total - kFooterSize))) {
        const std::string footer = hex(buf_.data() + total - 4, 4);
        drop(1);
        out.emplace_back(fault(ErrorKind::FrameError, "bad footer " + footer));
        return true;
    }
    const size_t end_body = total - kTrailerSize;
    if (ctype == kChecksumMd5) {
        auto digest = md5(buf_.data(), end_body);
        if (!std::equal(digest.begin(), digest.end(), buf_.begin() + long(end_body))) {
            drop(total);
            out.emplace_back(fault(ErrorKind::ChecksumError, "MD5 mismatch in " + message_name(type) +
                                                                 " frame (" + std::to_string(total) +
                                                                 " bytes)"));
            return true;
        }
    }
    Message msg;
    msg.message_type = type;
    msg.immediate.assign(h + 24, h + 24 + ilen);
    msg.payload.assign(buf_.begin() + long(kHeaderSize), buf_.begin() + long(end_body));
    msg.flags = flags;
    msg.error = error;
    msg.regarding = regarding;
    msg.checksum_type = ctype;
    msg.version = version;
    drop(total);
    ++frames;
    out.emplace_back(std::move(msg));
    return true;
}

}  // namespace pace::obp
