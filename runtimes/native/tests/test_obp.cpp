// OBP frames: encoding (byte layout, MD5), parsing in any chunking, resynchronisation after
// garbage, malformed frames (version, lengths, footer), bad checksums, truncation.
#include <variant>

#include "check.hpp"
#include "pace/hash.hpp"
#include "pace/obp.hpp"

namespace obp = pace::obp;
using pace::ErrorKind;

namespace {

obp::Bytes spectrum_reply(std::uint32_t regarding, size_t pixels, std::uint8_t checksum = obp::kChecksumMd5) {
    obp::Bytes data(2 * pixels);
    for (size_t i = 0; i < data.size(); ++i) data[i] = std::uint8_t(i * 7);
    obp::Message m = obp::Message::with_data(obp::kMsgGetRawSpectrum, data);
    m.flags = obp::kFlagResponse;
    m.regarding = regarding;
    m.checksum_type = checksum;
    return obp::encode(m);
}

std::vector<obp::Item> feed_in_chunks(obp::FrameParser& p, const obp::Bytes& bytes, size_t chunk) {
    std::vector<obp::Item> out;
    for (size_t i = 0; i < bytes.size(); i += chunk) {
        auto items = p.feed(bytes.data() + i, std::min(chunk, bytes.size() - i));
        out.insert(out.end(), items.begin(), items.end());
    }
    return out;
}

const obp::Message* message(const obp::Item& item) { return std::get_if<obp::Message>(&item); }
const pace::ProtocolFault* fault(const obp::Item& item) { return std::get_if<pace::ProtocolFault>(&item); }

}  // namespace

TEST(encode_layout_matches_the_python_struct) {
    obp::Message m = obp::Message::with_data(obp::kMsgGetSerial, {'S', 'T', 'S'});
    m.flags = obp::kFlagResponse;
    m.regarding = 0x01020304;
    const obp::Bytes b = obp::encode(m);
    CHECK(b.size() == 64);
    CHECK(b[0] == 0xC1 && b[1] == 0xC0 && b[2] == 0x00 && b[3] == 0x11);  // version 0x1100 LE
    CHECK(b[4] == 1 && b[8] == 0x00 && b[9] == 0x01);                    // flags, type 0x100
    CHECK(b[12] == 4 && b[15] == 1);                                     // regarding LE
    CHECK(b[22] == 0 && b[23] == 3 && b[24] == 'S' && b[26] == 'S');     // no checksum, 3 imm.
    CHECK(b[40] == 20 && b[41] == 0);                                    // bytes remaining
    CHECK(b[60] == 0xC5 && b[63] == 0xC2);
    // Python: obp.encode(Message(0x100, immediate=b"STS", flags=1, regarding=0x01020304,
    //                            checksum_type=1)).hex()[88:120] (the MD5 of bytes 0..43)
    m.checksum_type = obp::kChecksumMd5;
    const obp::Bytes c = obp::encode(m);
    const auto digest = pace::md5(c.data(), 44);
    CHECK(std::equal(digest.begin(), digest.end(), c.begin() + 44));
}

TEST(round_trip_in_every_chunking) {
    obp::Bytes stream;
    for (std::uint32_t r = 1; r <= 3; ++r) {
        const obp::Bytes f = spectrum_reply(r, 100);
        stream.insert(stream.end(), f.begin(), f.end());
    }
    for (size_t chunk : {1u, 3u, 44u, 64u, 263u, 5000u}) {
        obp::FrameParser p;
        const auto items = feed_in_chunks(p, stream, chunk);
        CHECK(items.size() == 3);
        for (size_t i = 0; i < items.size(); ++i) {
            const obp::Message* m = message(items[i]);
            CHECK(m != nullptr && m->regarding == i + 1 && m->payload.size() == 200);
            CHECK(m != nullptr && m->is_response() && !m->is_error());
        }
        CHECK(p.pending() == 0 && p.skipped == 0 && p.frames == 3);
    }
}

TEST(garbage_is_skipped_and_a_false_start_does_not_hide_a_frame) {
    obp::Bytes stream = {0x00, 0xFF, 0xC1, 0x42, 0x13};
    // a false start: C1 C0 followed by a bad version, then the real frame
    stream.insert(stream.end(), {0xC1, 0xC0, 0x99, 0x99});
    const obp::Bytes f = spectrum_reply(9, 10);
    stream.insert(stream.end(), f.begin(), f.end());
    stream.insert(stream.end(), 50, 0xC1);  // noise after: a half start byte is kept
    for (size_t chunk : {1u, 2u, 17u, 1000u}) {
        obp::FrameParser p;
        std::vector<obp::Item> items = feed_in_chunks(p, stream, chunk);
        size_t messages = 0, frame_errors = 0;
        for (const auto& item : items) {
            if (const obp::Message* m = message(item)) {
                ++messages;
                CHECK(m->regarding == 9);
            } else if (fault(item)->kind == ErrorKind::FrameError) {
                ++frame_errors;
            }
        }
        CHECK(messages == 1 && frame_errors == 1);
        CHECK(p.pending() == 1);  // the trailing C1 might start a frame
    }
}

TEST(malformed_headers_are_frame_errors) {
    auto with = [](size_t offset, std::uint8_t value) {
        obp::Bytes f = spectrum_reply(1, 10, obp::kChecksumNone);
        f[offset] = value;
        obp::FrameParser p;
        auto items = p.feed(f);
        return items.empty() ? std::string("nothing") : fault(items[0]) ? fault(items[0])->message : "message";
    };
    CHECK(with(3, 0x12).find("unsupported protocol version 0x1200") != std::string::npos);
    CHECK(with(22, 7).find("unknown checksum type 7") != std::string::npos);
    CHECK(with(23, 17).find("immediate data length 17 > 16") != std::string::npos);
    CHECK(with(42, 0x7F).find("bytes remaining") != std::string::npos);
    CHECK(with(23, 2).find("immediate data (2 bytes) and a payload") != std::string::npos);
    obp::Bytes f = spectrum_reply(1, 10, obp::kChecksumNone);
    f.back() = 0x00;
    obp::FrameParser p;
    auto items = p.feed(f);
    CHECK(!items.empty() && fault(items[0]) && fault(items[0])->message.find("bad footer c5c4c300") == 0);
}

TEST(bad_checksum_drops_the_frame_whole) {
    obp::Bytes f = spectrum_reply(5, 50);
    f[50] ^= 0x10;
    const obp::Bytes good = spectrum_reply(6, 50);
    f.insert(f.end(), good.begin(), good.end());
    obp::FrameParser p;
    auto items = p.feed(f);
    CHECK(items.size() == 2);
    CHECK(fault(items[0]) && fault(items[0])->kind == ErrorKind::ChecksumError);
    CHECK(fault(items[0]) && fault(items[0])->message == "MD5 mismatch in get raw spectrum frame (164 bytes)");
    CHECK(message(items[1]) && message(items[1])->regarding == 6);
    CHECK(p.errors == 1 && p.frames == 1);
}

TEST(truncated_frame_expires_and_parsing_goes_on) {
    const obp::Bytes f = spectrum_reply(1, 50);
    obp::FrameParser p;
    CHECK(p.feed(f.data(), 100).empty());
    CHECK(p.in_frame() && p.pending() == 100);
    auto items = p.expire();
    CHECK(items.size() == 1 && fault(items[0]) && fault(items[0])->kind == ErrorKind::TruncatedFrame);
    CHECK(fault(items[0]) && fault(items[0])->message == "frame truncated after 100 bytes");
    CHECK(!p.in_frame());
    auto next = p.feed(spectrum_reply(2, 3));
    CHECK(next.size() == 1 && message(next[0]) && message(next[0])->regarding == 2);
    CHECK(p.expire().empty());
}

TEST(nack_is_a_device_error) {
    obp::Message m;
    m.message_type = obp::kMsgSetIntegrationTime;
    m.flags = obp::kFlagResponse | obp::kFlagNack;
    m.error = 6;
    CHECK(m.is_error() && m.is_nack());
    const pace::DeviceError e = m.device_error();
    CHECK(e.error_number == 6 && e.kind() == ErrorKind::DeviceError);
    CHECK(std::string(e.what()) == "device NACK to set integration time: error 6 (payload data invalid)");
    CHECK(obp::message_name(0xABCDEF) == "message 0x00ABCDEF");
    CHECK(obp::error_name(77) == "unknown error 77");
}

TEST_MAIN()
