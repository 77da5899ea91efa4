#include "pace/ascii_lines.hpp"

#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>

namespace pace::ascii {

namespace {

bool blank(char c) { return c == ' ' || c == '\t'; }
bool py_space(char c) { return c == ' ' || (c >= '\t' && c <= '\r') || (c >= 0x1c && c <= 0x1f); }

std::string strip(const std::string& s, bool (*pred)(char)) {
    size_t a = 0, b = s.size();
    while (a < b && pred(s[a])) ++a;
    while (b > a && pred(s[b - 1])) --b;
    return s.substr(a, b - a);
}

bool lower_equal(const std::string& s, size_t from, const char* word) {
    size_t n = std::char_traits<char>::length(word);
    if (s.size() - from != n) return false;
    for (size_t i = 0; i < n; ++i)
        if (std::tolower(static_cast<unsigned char>(s[from + i])) != word[i]) return false;
    return true;
}

// Python's repr() of a short str, for error messages.
std::string py_repr(const std::string& s) {
    std::string out = "'";
    for (unsigned char c : s) {
        if (c == '\'' || c == '\\') {
            out += '\\';
            out += char(c);
        } else if (c == '\t') {
            out += "\\t";
        } else if (c == '\n') {
            out += "\\n";
        } else if (c == '\r') {
            out += "\\r";
        } else if (c < 0x20 || c >= 0x7f) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\x%02x", c);
            out += buf;
        } else {
            out += char(c);
        }
    }
    return out + "'";
}

std::string float_text(double v) {
    if (std::isnan(v)) return "nan";
    return v > 0 ? "inf" : "-inf";
}

}  // namespace

char separator_of(const std::string& s) {
    if (s == "comma" || s == ",") return ',';
    if (s == "tab" || s == "\t") return '\t';
    if (s == "space" || s == " ") return ' ';
    if (s == "semicolon" || s == ";") return ';';
    if (s == "auto") return 0;
    throw ConfigError("unknown separator '" + s + "'; choose comma, tab, space, semicolon or auto");
}

std::optional<double> parse_number(const std::string& cell) {
    for (char c : cell)
        if (static_cast<unsigned char>(c) >= 0x80) return std::nullopt;  // not ASCII
    const std::string text = strip(cell, py_space);
    if (text.empty() || text.find('_') != std::string::npos) return std::nullopt;
    size_t i = 0;
    bool negative = false;
    if (text[0] == '+' || text[0] == '-') {
        negative = text[0] == '-';
        i = 1;
    }
    double value = 0.0;
    if (lower_equal(text, i, "inf") || lower_equal(text, i, "infinity")) {
        value = std::numeric_limits<double>::infinity();
    } else if (lower_equal(text, i, "nan")) {
        value = std::numeric_limits<double>::quiet_NaN();
    } else {
        // digits [. digits] | . digits, then an optional exponent
        size_t j = i, digits = 0;
        while (j < text.size() && std::isdigit(static_cast<unsigned char>(text[j]))) ++j, ++digits;
        if (j < text.size() && text[j] == '.') {
            ++j;
            while (j < text.size() && std::isdigit(static_cast<unsigned char>(text[j]))) ++j, ++digits;
        }
        if (digits == 0) return std::nullopt;
        if (j < text.size() && (text[j] == 'e' || text[j] == 'E')) {
            ++j;
            if (j < text.size() && (text[j] == '+' || text[j] == '-')) ++j;
            size_t exp_digits = 0;
            while (j < text.size() && std::isdigit(static_cast<unsigned char>(text[j]))) ++j, ++exp_digits;
            if (exp_digits == 0) return std::nullopt;
        }
        if (j != text.size()) return std::nullopt;
        auto res = std::from_chars(text.data() + i, text.data() + text.size(), value);
        if (res.ec == std::errc::result_out_of_range) {
            value = std::strtod(text.c_str() + i, nullptr);  // +-inf / 0 like Python
        } else if (res.ec != std::errc() || res.ptr != text.data() + text.size()) {
            return std::nullopt;
        }
    }
    return negative ? -value : value;
}

LineFormat::LineFormat(size_t pixels, char separator) : pixels_(pixels), separator_(separator) {
    if (pixels < 1) throw ConfigError("pixel count must be positive, got " + std::to_string(pixels));
}

std::vector<std::string> LineFormat::cells(const std::string& line) const {
    size_t end = line.size();
    while (end > 0 && (line[end - 1] == '\r' || line[end - 1] == '\n')) --end;
    const std::string text = line.substr(0, end);
    char sep = separator_;
    if (sep == 0) {
        sep = ' ';
        for (char s : {';', ',', '\t'}) {
            if (text.find(s) != std::string::npos) {
                sep = s;
                break;
            }
        }
    }
    std::vector<std::string> out;
    if (sep == ' ' || sep == '\t') {
        const std::string t = strip(text, blank);
        size_t i = 0;
        while (i < t.size()) {
            size_t j = i;
            while (j < t.size() && !blank(t[j])) ++j;
            out.push_back(t.substr(i, j - i));
            while (j < t.size() && blank(t[j])) ++j;
            i = j;
        }
        return out;  // "" splits into no cells
    }
    size_t i = 0;
    while (true) {
        size_t j = text.find(sep, i);
        out.push_back(text.substr(i, j == std::string::npos ? std::string::npos : j - i));
        if (j == std::string::npos) break;
        i = j + 1;
    }
    if (out.size() > 1 && strip(out.back(), blank).empty()) out.pop_back();  // trailing separator
    if (out.size() == 1 && out[0].empty()) out.clear();
    return out;
}

Vec LineFormat::parse(const std::string& line) const {
    const std::vector<std::string> cs = cells(line);
    Vec values(cs.size());
    for (size_t i = 0; i < cs.size(); ++i) {
        auto v = parse_number(cs[i]);
        if (!v) {
            throw ProtocolError(ErrorKind::NonNumericValue, "value " + std::to_string(i) +
                                                                " is not a number: " +
                                                                py_repr(cs[i].substr(0, 20)));
        }
        values[i] = *v;
    }
    if (values.size() != pixels_) {
        throw ProtocolError(ErrorKind::PixelCountError, "line has " + std::to_string(values.size()) +
                                                            " values, expected " +
                                                            std::to_string(pixels_));
    }
    for (size_t i = 0; i < values.size(); ++i) {
        if (!std::isfinite(values[i])) {
            throw ProtocolError(ErrorKind::NonFiniteValue, "non-finite value " +
                                                               float_text(values[i]) + " at pixel " +
                                                               std::to_string(i));
        }
    }
    return values;
}

std::vector<Item> LineSplitter::feed(const char* data, size_t n) {
    std::vector<Item> out;
    buf_.append(data, n);
    while (true) {
        const size_t i = buf_.find('\n');
        if (i == std::string::npos) {
            if (buf_.size() > max_line_) {
                if (!discarding_) {
                    out.emplace_back(ProtocolFault{ErrorKind::LineTooLong,
                                                   "no line end within " + std::to_string(max_line_) +
                                                       " bytes"});
                }
                discarding_ = true;
                buf_.clear();
            }
            return out;
        }
        std::string line = buf_.substr(0, i + 1);
        buf_.erase(0, i + 1);
        if (discarding_) {
            discarding_ = false;
        } else if (line.size() > max_line_) {
            out.emplace_back(ProtocolFault{ErrorKind::LineTooLong,
                                           "line of " + std::to_string(line.size()) +
                                               " bytes exceeds " + std::to_string(max_line_)});
        } else {
            out.emplace_back(std::move(line));
        }
    }
}

}  // namespace pace::ascii
