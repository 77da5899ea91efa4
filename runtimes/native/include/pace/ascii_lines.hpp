// Spectra as text lines, Arduino style (pace_edge.streaming.protocols.ascii_lines):
// "812,790,805,...,777,\r\n". Pure text handling, no I/O.
#pragma once

#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "pace/errors.hpp"
#include "pace/numeric.hpp"

namespace pace::ascii {

constexpr size_t kMaxLine = 1 << 16;

// `pixels` values per line split by `separator` (',', '\t', ' ', ';' or 0 = auto-detect per
// line: semicolon, else comma, else tab, else runs of blanks). A trailing separator is fine.
class LineFormat {
public:
    explicit LineFormat(size_t pixels, char separator = 0);
    size_t pixels() const { return pixels_; }

    std::vector<std::string> cells(const std::string& line) const;
    // The spectrum in `line`, or a ProtocolError (NonNumericValue, PixelCountError,
    // NonFiniteValue, checked in that order).
    Vec parse(const std::string& line) const;

private:
    size_t pixels_;
    char separator_;
};

// The separator character for a name ("comma", "tab", "space", "semicolon", "auto") or the
// character itself; ConfigError otherwise.
char separator_of(const std::string& name_or_char);

// Python's float() on one cell: nullopt when it is not a number.
std::optional<double> parse_number(const std::string& text);

using Item = std::variant<std::string, ProtocolFault>;

// Cuts a byte stream into lines ending in '\n' (a preceding '\r' kept); a line longer than
// max_line is a LineTooLong fault and the rest of it is discarded.
class LineSplitter {
public:
    explicit LineSplitter(size_t max_line = kMaxLine) : max_line_(max_line) {}
    std::vector<Item> feed(const char* data, size_t n);
    size_t pending() const { return buf_.size(); }
    void reset() {
        buf_.clear();
        discarding_ = false;
    }

private:
    size_t max_line_;
    std::string buf_;
    bool discarding_ = false;
};

}  // namespace pace::ascii
