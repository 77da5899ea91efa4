// Streaming pieces: spectral axis and averaging numbers, summary statistics, and the OBP and
// ASCII drivers over a real pseudo-terminal against a scripted fake device (framing, NACKs,
// stale replies, garbage, truncation, timeouts, disconnect and reconnect).
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <cstring>
#include <functional>
#include <thread>

#include "check.hpp"
#include "pace/errors.hpp"
#include "pace/inference.hpp"
#include "pace/obp.hpp"
#include "pace/spectral_axis.hpp"
#include "pace/spectrometer.hpp"
#include "pace/stream.hpp"

using pace::ErrorKind;
using pace::Vec;
namespace obp = pace::obp;

// -- numbers -----------------------------------------------------------------------------------

TEST(wavelength_polynomial_and_raman_shift) {
    // numpy: SpectralAxis.from_coefficients(c, 1024, 785.0).axis[[0, 511, -1]] with the
    // emulator's float32 calibration c = [790.0, 0.19501465559005737, 1.0033167200163007e-05]
    const Vec c = {790.0, 0.19501465559005737, 1.0033167200163007e-05};
    const pace::SpectralAxis axis(pace::wavelengths_from_coefficients(c, 1024), 785.0);
    const Vec shift = axis.axis();
    CHECK_CLOSE(shift[0], 80.62565508344778, 1e-14);
    CHECK_CLOSE(shift[511], 1531.513175146556, 1e-14);
    CHECK_CLOSE(shift[1023], 2738.853434239194, 1e-14);
    // a reversed device axis is flipped, intensities with it; dark is subtracted first
    const pace::SpectralAxis rev(Vec{900, 890, 880}, std::nullopt);
    auto [x, a] = rev.apply(Vec{1, 2, 3}, Vec{1, 1, 1});
    CHECK(x == (Vec{2, 1, 0}) && a == (Vec{880, 890, 900}));
    CHECK_THROWS(pace::SpectralAxis(Vec{900, 905, 901}, std::nullopt), pace::ConfigError,
                 "not strictly monotonic at pixel 2");
    CHECK_THROWS(pace::SpectralAxis(Vec{900, 905}, -1.0), pace::ConfigError, "laser wavelength must be");
}

TEST(averager_means_every_n_frames) {
    pace::Averager avg(3);
    CHECK(!avg.add(Vec{1, 2}) && !avg.add(Vec{2, 4}));
    const auto mean = avg.add(Vec{3, 6});
    CHECK(mean && *mean == (Vec{2, 4}) && avg.count() == 0);
    CHECK(!avg.add(Vec{1, 1}));
    CHECK_THROWS(avg.add(Vec{1}), pace::DataError, "cannot average a 1-pixel frame with 2-pixel ones");
}

TEST(stats_summary) {
    CHECK(pace::StreamStats::percentile({3, 1, 4, 1, 5, 9, 2, 6}, 50) == 3.5);
    CHECK_CLOSE(pace::StreamStats::percentile({3, 1, 4, 1, 5, 9, 2, 6}, 99), 8.79, 1e-15);
    CHECK(pace::StreamStats::percentile({2.5}, 99) == 2.5);
    CHECK(pace::snake_case("TransportTimeout") == "transport_timeout");
    CHECK(pace::snake_case("ChecksumError") == "checksum_error");
    pace::StreamStats s;
    s.received = 5;
    s.classified = s.frames_classified = 3;
    s.rejected["checksum_error"] = 1;
    s.rejected["saturated"] = 1;
    s.latency["infer"] = {1.0, 2.0, 3.0};
    CHECK(s.accounted());
    const std::string text = s.summary_text(2048);
    CHECK(text.find("frames received 5, spectra classified 3 (from 3 frames), rejected 2 "
                    "(checksum_error 1, saturated 1), reconnects 0") == 0);
    CHECK(text.find("\nlatency infer      p50    2.000 ms   p99    2.980 ms   max    3.000 ms") != std::string::npos);
    CHECK(text.find("peak RSS 2.0 MiB") != std::string::npos);
    CHECK(s.summary(2048).at("rejected_total").as_integer() == 2);
}

TEST(softmax_rows) {
    const std::vector<float> logits = {1.0f, 2.0f, 3.0f, 0.0f, 0.0f, 0.0f};
    const std::vector<double> p = pace::softmax(logits, 2, 3);
    CHECK_CLOSE(p[2], 0.6652409557748219, 1e-15);  // numpy: softmax([1, 2, 3])[2]
    CHECK_CLOSE(p[3], 1.0 / 3.0, 1e-15);
}

// -- drivers over a pty ----------------------------------------------------------------------------

namespace {

// A pty pair whose master end a scripted device thread serves; the slave path is the port.
class FakeDevice {
public:
    using Reply = std::function<obp::Bytes(const obp::Message&)>;

    FakeDevice() {
        char name[128];
        if (::openpty(&master_, &slave_, name, nullptr, nullptr) != 0) throw std::runtime_error("openpty");
        path_ = name;
        ::fcntl(master_, F_SETFL, O_NONBLOCK);
    }
    ~FakeDevice() {
        stop();
        close_link();
    }
    const std::string& path() const { return path_; }

    // Serve OBP requests: `reply` returns the bytes to send back for each request.
    void serve_obp(Reply reply) {
        thread_ = std::thread([this, reply] {
            obp::FrameParser parser;
            std::uint8_t buf[4096];
            while (!stop_) {
                pollfd p{master_, POLLIN, 0};
                if (::poll(&p, 1, 20) <= 0) continue;
                const ssize_t n = ::read(master_, buf, sizeof buf);
                if (n <= 0) continue;
                for (const auto& item : parser.feed(buf, size_t(n)))
                    if (const auto* m = std::get_if<obp::Message>(&item)) send(reply(*m));
            }
        });
    }
    void send(const obp::Bytes& bytes) {
        if (!bytes.empty() && ::write(master_, bytes.data(), bytes.size()) < 0) std::perror("write");
    }
    void send(const std::string& text) { send(obp::Bytes(text.begin(), text.end())); }
    void stop() {
        stop_ = true;
        if (thread_.joinable()) thread_.join();
    }
    void close_link() {
        for (int* fd : {&master_, &slave_})
            if (*fd >= 0) ::close(*fd), *fd = -1;
    }

private:
    int master_ = -1, slave_ = -1;
    std::string path_;
    std::thread thread_;
    std::atomic<bool> stop_{false};
};

obp::Bytes reply_to(const obp::Message& req, const obp::Bytes& data, std::uint16_t extra_flags = 0) {
    obp::Message m = obp::Message::with_data(req.message_type, data);
    m.flags = obp::kFlagResponse | extra_flags | (req.ack_requested() ? obp::kFlagAck : 0);
    m.regarding = req.regarding;
    m.checksum_type = obp::kChecksumMd5;
    return obp::encode(m);
}

obp::Bytes float_bytes(float f) {
    obp::Bytes b(4);
    std::memcpy(b.data(), &f, 4);
    return b;
}

// An STS-like device with 8 pixels; `spectrum` decides what a spectrum request gets.
FakeDevice::Reply sts(std::function<obp::Bytes(const obp::Message&, int)> spectrum) {
    auto count = std::make_shared<int>(0);
    return [spectrum, count](const obp::Message& req) -> obp::Bytes {
        switch (req.message_type) {
            case obp::kMsgGetSerial: return reply_to(req, {'F', 'A', 'K', 'E', 0});
            case obp::kMsgGetWlCoeffCount: return reply_to(req, {2});
            case obp::kMsgGetWlCoeff: return reply_to(req, float_bytes(req.data()[0] == 0 ? 790.0f : 2.0f));
            case obp::kMsgGetRawSpectrum: return spectrum(req, (*count)++);
            default: {
                obp::Message nack;
                nack.message_type = req.message_type;
                nack.flags = obp::kFlagResponse | obp::kFlagNack;
                nack.error = 2;
                nack.regarding = req.regarding;
                return obp::encode(nack);
            }
        }
    };
}

obp::Bytes counts(int base) {
    obp::Bytes b;
    for (int i = 0; i < 8; ++i) {
        b.push_back(std::uint8_t((base + i) & 0xFF));
        b.push_back(std::uint8_t((base + i) >> 8));
    }
    return b;
}

pace::ObpOptions obp_options() {
    pace::ObpOptions o;
    o.pixels = 8;
    o.timeout_s = 0.3;
    return o;
}

ErrorKind read_error(pace::Spectrometer& s) {
    try {
        s.read_spectrum();
    } catch (const pace::StreamError& e) {
        return e.kind();
    }
    return ErrorKind::ConfigError;  // "no error"
}

}  // namespace

TEST(obp_driver_handshake_and_spectra) {
    FakeDevice dev;
    dev.serve_obp(sts([](const obp::Message& req, int) { return reply_to(req, counts(1000)); }));
    pace::ObpSpectrometer s(dev.path(), obp_options());
    s.open();
    CHECK(s.serial_number() == std::string("FAKE"));
    CHECK(s.coefficients() && *s.coefficients() == (Vec{790.0, 2.0}));
    CHECK(s.wavelengths() && s.wavelengths()->back() == 804.0);
    const pace::RawFrame f = s.read_spectrum();
    CHECK(f.counts.size() == 8 && f.counts[0] == 1000 && f.counts[7] == 1007 && f.sequence == 0);
    CHECK(f.nbytes == 64 && !f.saturated() && f.max_count == 16383.0);
    CHECK(s.read_spectrum().sequence == 1);
    CHECK_THROWS(s.request(0x00ABCDEF), pace::DeviceError, "device NACK to message 0x00ABCDEF: error 2 (unknown message type)");
    CHECK(s.stats.frames == 2);
}

TEST(obp_driver_faults_are_typed_and_recoverable) {
    FakeDevice dev;
    dev.serve_obp(sts([](const obp::Message& req, int k) -> obp::Bytes {
        obp::Bytes good = reply_to(req, counts(100 + k));
        switch (k) {
            case 0: {  // a stale reply first (other regarding), then noise, then the answer
                obp::Message old = req;
                old.regarding = req.regarding + 1000;
                obp::Bytes out = reply_to(old, counts(1));
                out.insert(out.end(), {0x00, 0x13, 0xC1, 0x77});
                out.insert(out.end(), good.begin(), good.end());
                return out;
            }
            case 1: good[30] ^= 0x01; return good;                               // checksum
            case 2: return obp::Bytes(good.begin(), good.begin() + 50);          // truncated
            case 3: return {};                                                   // stall
            case 4: return reply_to(req, obp::Bytes(10, 0));                     // 5 pixels
            default: return good;
        }
    }));
    pace::ObpSpectrometer s(dev.path(), obp_options());
    s.open();
    CHECK(s.read_spectrum().counts[0] == 100);
    CHECK(s.stale_replies == 1);
    CHECK(read_error(s) == ErrorKind::ChecksumError);
    CHECK(read_error(s) == ErrorKind::TruncatedFrame);
    CHECK(read_error(s) == ErrorKind::TransportTimeout);
    CHECK(read_error(s) == ErrorKind::PixelCountError);
    CHECK(s.read_spectrum().counts[0] == 105);  // usable after every fault
    CHECK(s.stats.errors["ChecksumError"] == 1 && s.stats.errors["TransportTimeout"] == 1);
}

TEST(ascii_driver_free_running_with_faults) {
    FakeDevice dev;
    pace::AsciiOptions o;
    o.pixels = 3;
    o.timeout_s = 0.3;
    o.wavelength_coefficients = Vec{500.0, 1.0};
    pace::AsciiSpectrometer s(dev.path(), o);
    s.open();
    // the first line after opening is dropped (likely cut), blank lines are skipped
    dev.send(std::string("9,9,9,\r\n\r\n1,2,3,\r\n1,x,3,\r\n4,5\r\n7,8,nan,\r\n\xff\xfe 4,5,6\n"));
    CHECK(s.read_spectrum().counts == (Vec{1, 2, 3}));
    CHECK(read_error(s) == ErrorKind::NonNumericValue);
    CHECK(read_error(s) == ErrorKind::PixelCountError);
    CHECK(read_error(s) == ErrorKind::NonFiniteValue);
    CHECK(read_error(s) == ErrorKind::NonNumericValue);  // non-ASCII garbage before the line
    dev.send(std::string("10,11"));                        // cut: no line end
    CHECK(read_error(s) == ErrorKind::TruncatedFrame);
    dev.send(std::string(",12\r\n13,14,15\r\n"));  // the cut line's end is dropped
    CHECK(s.read_spectrum().counts == (Vec{13, 14, 15}));
    CHECK(read_error(s) == ErrorKind::TransportTimeout);
    CHECK(s.wavelengths() && s.wavelengths()->back() == 502.0);
}

TEST(disconnect_is_transport_closed_and_reconnect_gives_up_cleanly) {
    auto dev = std::make_unique<FakeDevice>();
    pace::AsciiOptions o;
    o.pixels = 3;
    o.timeout_s = 0.5;
    pace::AsciiSpectrometer s(dev->path(), o);
    s.open();
    const std::string path = dev->path();
    dev.reset();  // the device goes away
    CHECK(read_error(s) == ErrorKind::TransportClosed);
    const auto t0 = pace::Clock::now();
    CHECK_THROWS(s.reconnect(0.3), pace::TransportError, "cannot open");
    CHECK(pace::Clock::now() - t0 < std::chrono::seconds(2));
    CHECK(!s.is_open());
    CHECK_THROWS(pace::SerialPort("/nonexistent/tty", 115200, 1.0), pace::TransportError, "cannot open");
    CHECK_THROWS(pace::SerialPort(path, 12345, 1.0), pace::ConfigError, "unsupported baud rate 12345");
}

namespace {

// Logits for 2 classes; every third row (over the whole run) is NaN.
class NanEveryThird : public pace::Backend {
public:
    explicit NanEveryThird(size_t length) : Backend("fake", "fp32", length, 2) {}
    std::string describe() const override { return "fake"; }

protected:
    std::vector<float> run(const float*, size_t rows) override {
        std::vector<float> out;
        for (size_t r = 0; r < rows; ++r) {
            const bool bad = ++calls_ % 3 == 0;
            out.push_back(bad ? std::nanf("") : 1.0f);
            out.push_back(0.0f);
        }
        return out;
    }

private:
    size_t calls_ = 0;
};

}  // namespace

TEST(non_finite_outputs_are_rejected_and_the_stop_flag_is_atomic) {
    FakeDevice dev;
    dev.serve_obp(sts([](const obp::Message& req, int k) { return reply_to(req, counts(1000 + k)); }));
    pace::ObpSpectrometer s(dev.path(), obp_options());
    s.open();
    pace::Model model;
    model.pipeline = pace::Pipeline::from_json(pace::json::Value::array({}));
    model.axis = *s.wavelengths();
    model.classes = {"a", "b"};
    model.backend = std::make_unique<NanEveryThird>(model.axis.size());
    pace::StreamConfig config;
    config.max_frames = 9;
    config.max_batch = 1;
    std::vector<std::string> lines;
    std::atomic<bool> stop{false};
    pace::StreamClassifier stream(s, model, config,
                                  [&](const pace::json::Value& v) { lines.push_back(v.dump()); },
                                  [](const std::string&) {}, &stop);
    const pace::StreamStats& stats = stream.run();
    CHECK(stats.received == 9 && stats.classified == 6 && stats.accounted());
    CHECK(stats.rejected.at("non_finite_output") == 3);
    CHECK(lines.size() == 9);
    for (const std::string& line : lines)  // no NaN / Infinity values (the detail text names them)
        CHECK(line.find(":NaN") == std::string::npos && line.find("Infinity") == std::string::npos);
}

namespace {

// Two-class logits after a pause: a model slower than the device.
class Slow : public pace::Backend {
public:
    explicit Slow(size_t length) : Backend("slow", "fp32", length, 2) {}
    std::string describe() const override { return "slow"; }

protected:
    std::vector<float> run(const float*, size_t rows) override {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        return std::vector<float>(rows * 2, 0.5f);
    }
};

}  // namespace

TEST(free_running_overrun_is_counted_never_a_timeout) {
    FakeDevice dev;
    pace::AsciiOptions o;
    o.pixels = 3;
    o.timeout_s = 0.5;
    o.wavelength_coefficients = Vec{500.0, 1.0};
    pace::AsciiSpectrometer s(dev.path(), o);
    s.open();
    std::string lines = "9,9,9,\n";  // dropped: the first line after opening may be cut
    for (int i = 0; i < 100; ++i) lines += "1,2,3,\n";
    dev.send(lines);
    pace::Model model;
    model.pipeline = pace::Pipeline::from_json(pace::json::Value::array({}));
    model.axis = *s.wavelengths();
    model.classes = {"a", "b"};
    model.backend = std::make_unique<Slow>(model.axis.size());
    pace::StreamConfig config;
    config.max_frames = 100;
    config.max_batch = 1;
    config.queue_size = 2;
    size_t overrun_frames = 0;
    pace::StreamClassifier stream(
        s, model, config,
        [&](const pace::json::Value& v) {
            if (v.dump().find("\"rejected\":\"overrun\"") != std::string::npos)
                overrun_frames += size_t(v.at("frames").as_integer());
        },
        [](const std::string&) {}, nullptr);
    const pace::StreamStats& stats = stream.run();
    CHECK(stats.received == 100 && s.stats.frames == 100 && stats.accounted());
    CHECK(stats.rejected.size() == 1 && stats.rejected.at("overrun") > 0);
    CHECK(overrun_frames == stats.rejected.at("overrun"));
    CHECK(stats.classified + stats.rejected.at("overrun") == 100);
}

TEST_MAIN()
