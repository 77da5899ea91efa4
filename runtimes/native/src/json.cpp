#include "pace/json.hpp"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>

namespace pace::json {

// -- Value -------------------------------------------------------------------------------

Value Value::boolean(bool b) {
    Value v;
    v.type_ = Type::Bool;
    v.bool_ = b;
    return v;
}

Value Value::number(double d, bool integral) {
    Value v;
    v.type_ = Type::Number;
    v.number_ = d;
    v.integral_ = integral;
    return v;
}

Value Value::string(std::string s) {
    Value v;
    v.type_ = Type::String;
    v.string_ = std::make_shared<const std::string>(std::move(s));
    return v;
}

Value Value::array(Array a) {
    Value v;
    v.type_ = Type::Array;
    v.array_ = std::make_shared<const Array>(std::move(a));
    return v;
}

Value Value::object(Object o) {
    Value v;
    v.type_ = Type::Object;
    v.object_ = std::make_shared<const Object>(std::move(o));
    return v;
}

const char* type_name(Type t) {
    switch (t) {
        case Type::Null: return "null";
        case Type::Bool: return "a boolean";
        case Type::Number: return "a number";
        case Type::String: return "a string";
        case Type::Array: return "an array";
        case Type::Object: return "an object";
    }
    return "?";
}

namespace {
[[noreturn]] void wrong_type(std::string_view what, const char* expected, Type got) {
    throw JsonError(std::string(what) + " must be " + expected + ", got " + type_name(got));
}
}  // namespace

bool Value::as_bool(std::string_view what) const {
    if (type_ != Type::Bool) wrong_type(what, "a boolean", type_);
    return bool_;
}

double Value::as_number(std::string_view what) const {
    if (type_ != Type::Number) wrong_type(what, "a number", type_);
    return number_;
}

long long Value::as_integer(std::string_view what) const {
    // Like the Python side, integral floats (3.0) count as integers.
    if (type_ != Type::Number || !std::isfinite(number_) || number_ != std::floor(number_) ||
        std::fabs(number_) > 9007199254740992.0) {
        wrong_type(what, "an integer", type_);
    }
    return static_cast<long long>(number_);
}

const std::string& Value::as_string(std::string_view what) const {
    if (type_ != Type::String) wrong_type(what, "a string", type_);
    return *string_;
}

const Array& Value::as_array(std::string_view what) const {
    if (type_ != Type::Array) wrong_type(what, "an array", type_);
    return *array_;
}

const Object& Value::as_object(std::string_view what) const {
    if (type_ != Type::Object) wrong_type(what, "an object", type_);
    return *object_;
}

const Value* Value::find(const std::string& key) const {
    if (type_ != Type::Object) return nullptr;
    for (const auto& [k, v] : *object_)
        if (k == key) return &v;
    return nullptr;
}

void set(Object& object, const std::string& key, Value value) {
    for (auto& [k, v] : object) {
        if (k == key) {
            v = std::move(value);
            return;
        }
    }
    object.emplace_back(key, std::move(value));
}

const Value& Value::at(const std::string& key) const {
    const Value* v = find(key);
    if (v == nullptr) throw JsonError("missing field '" + key + "'");
    return *v;
}

// -- parser ------------------------------------------------------------------------------

namespace {

constexpr int kMaxDepth = 256;

class Parser {
public:
    explicit Parser(std::string_view text) : s_(text) {}

    Value document() {
        skip_space();
        Value v = value(0);
        skip_space();
        if (i_ != s_.size()) fail("extra data after the JSON value");
        return v;
    }

private:
    std::string_view s_;
    size_t i_ = 0;

    [[noreturn]] void fail(const std::string& what) const {
        size_t line = 1, col = 1;
        for (size_t k = 0; k < i_ && k < s_.size(); ++k) {
            if (s_[k] == '\n') {
                ++line;
                col = 1;
            } else {
                ++col;
            }
        }
        throw JsonError(what + " (line " + std::to_string(line) + ", column " +
                        std::to_string(col) + ")");
    }

    bool at_end() const { return i_ >= s_.size(); }
    char peek() const { return at_end() ? '\0' : s_[i_]; }

    void skip_space() {
        while (!at_end() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r'))
            ++i_;
    }

    bool consume(std::string_view word) {
        if (s_.substr(i_, word.size()) == word) {
            i_ += word.size();
            return true;
        }
        return false;
    }

    Value value(int depth) {
        if (depth > kMaxDepth) fail("nesting too deep");
        if (at_end()) fail("unexpected end of input");
        char c = s_[i_];
        if (c == '{') return object(depth);
        if (c == '[') return array(depth);
        if (c == '"') return Value::string(string());
        if (consume("true")) return Value::boolean(true);
        if (consume("false")) return Value::boolean(false);
        if (consume("null")) return Value();
        if (consume("NaN")) return Value::number(std::numeric_limits<double>::quiet_NaN(), false);
        if (consume("Infinity")) return Value::number(HUGE_VAL, false);
        if (consume("-Infinity")) return Value::number(-HUGE_VAL, false);
        if (c == '-' || (c >= '0' && c <= '9')) return number();
        fail(std::string("unexpected character '") + c + "'");
    }

    Value object(int depth) {
        ++i_;  // {
        Object out;
        skip_space();
        if (peek() == '}') {
            ++i_;
            return Value::object(std::move(out));
        }
        while (true) {
            skip_space();
            if (peek() != '"') fail("expected a string key");
            std::string key = string();
            skip_space();
            if (peek() != ':') fail("expected ':'");
            ++i_;
            skip_space();
            set(out, key, value(depth + 1));  // the last of duplicate keys wins, as in Python
            skip_space();
            if (peek() == ',') {
                ++i_;
                continue;
            }
            if (peek() == '}') {
                ++i_;
                return Value::object(std::move(out));
            }
            fail("expected ',' or '}'");
        }
    }

    Value array(int depth) {
        ++i_;  // [
        Array out;
        skip_space();
        if (peek() == ']') {
            ++i_;
            return Value::array(std::move(out));
        }
        while (true) {
            skip_space();
            out.push_back(value(depth + 1));
            skip_space();
            if (peek() == ',') {
                ++i_;
                continue;
            }
            if (peek() == ']') {
                ++i_;
                return Value::array(std::move(out));
            }
            fail("expected ',' or ']'");
        }
    }

    Value number() {
        size_t start = i_;
        bool integral = true;
        if (peek() == '-') ++i_;
        if (peek() == '0') {
            ++i_;
        } else if (peek() >= '1' && peek() <= '9') {
            while (peek() >= '0' && peek() <= '9') ++i_;
        } else {
            fail("bad number");
        }
        if (peek() == '.') {
            integral = false;
            ++i_;
            if (!(peek() >= '0' && peek() <= '9')) fail("bad number");
            while (peek() >= '0' && peek() <= '9') ++i_;
        }
        if (peek() == 'e' || peek() == 'E') {
            integral = false;
            ++i_;
            if (peek() == '+' || peek() == '-') ++i_;
            if (!(peek() >= '0' && peek() <= '9')) fail("bad number");
            while (peek() >= '0' && peek() <= '9') ++i_;
        }
        double d = 0.0;
        auto [end, ec] = std::from_chars(s_.data() + start, s_.data() + i_, d);
        if (ec == std::errc::result_out_of_range) {
            // Like Python's float(): overflow gives +-inf, underflow (signed) zero. strtod
            // does that; the program never changes the "C" locale, so '.' is the point.
            d = std::strtod(std::string(s_.substr(start, i_ - start)).c_str(), nullptr);
        } else if (ec != std::errc() || end != s_.data() + i_) {
            fail("bad number");
        }
        return Value::number(d, integral);
    }

    unsigned hex4() {
        if (i_ + 4 > s_.size()) fail("bad \\u escape");
        unsigned v = 0;
        for (int k = 0; k < 4; ++k) {
            char c = s_[i_++];
            v <<= 4;
            if (c >= '0' && c <= '9') v |= unsigned(c - '0');
            else if (c >= 'a' && c <= 'f') v |= unsigned(c - 'a' + 10);
            else if (c >= 'A' && c <= 'F') v |= unsigned(c - 'A' + 10);
            else fail("bad \\u escape");
        }
        return v;
    }

    static void utf8(std::string& out, unsigned cp) {
        if (cp < 0x80) {
            out += char(cp);
        } else if (cp < 0x800) {
            out += char(0xC0 | (cp >> 6));
            out += char(0x80 | (cp & 0x3F));
        } else if (cp < 0x10000) {
            out += char(0xE0 | (cp >> 12));
            out += char(0x80 | ((cp >> 6) & 0x3F));
            out += char(0x80 | (cp & 0x3F));
        } else {
            out += char(0xF0 | (cp >> 18));
            out += char(0x80 | ((cp >> 12) & 0x3F));
            out += char(0x80 | ((cp >> 6) & 0x3F));
            out += char(0x80 | (cp & 0x3F));
        }
    }

    std::string string() {
        ++i_;  // "
        std::string out;
        while (true) {
            if (at_end()) fail("unterminated string");
            char c = s_[i_++];
            if (c == '"') return out;
            if (static_cast<unsigned char>(c) < 0x20) fail("control character in string");
            if (c != '\\') {
                out += c;
                continue;
            }
            if (at_end()) fail("unterminated string");
            char e = s_[i_++];
            switch (e) {
                case '"': out += '"'; break;
                case '\\': out += '\\'; break;
                case '/': out += '/'; break;
                case 'b': out += '\b'; break;
                case 'f': out += '\f'; break;
                case 'n': out += '\n'; break;
                case 'r': out += '\r'; break;
                case 't': out += '\t'; break;
                case 'u': {
                    unsigned cp = hex4();
                    if (cp >= 0xD800 && cp < 0xDC00 && s_.substr(i_, 2) == "\\u") {
                        size_t save = i_;
                        i_ += 2;
                        unsigned lo = hex4();
                        if (lo >= 0xDC00 && lo < 0xE000) {
                            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                        } else {
                            i_ = save;  // lone high surrogate, kept as is (Python does too)
                        }
                    }
                    utf8(out, cp);
                    break;
                }
                default: fail(std::string("bad escape '\\") + e + "'");
            }
        }
    }
};

}  // namespace

Value parse(std::string_view text) { return Parser(text).document(); }

// -- writing -----------------------------------------------------------------------------

namespace {

// The next code point of UTF-8 `s` at `i` (advancing i); U+FFFD for invalid bytes.
unsigned next_code_point(std::string_view s, size_t& i) {
    const auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
    const unsigned c = byte(i++);
    if (c < 0x80) return c;
    int extra = c >= 0xF0 && c < 0xF8 ? 3 : c >= 0xE0 ? 2 : c >= 0xC0 ? 1 : -1;
    if (extra < 0 || i + size_t(extra) > s.size()) return 0xFFFD;
    unsigned cp = c & (0x3F >> extra);
    for (int k = 0; k < extra; ++k) {
        if ((byte(i) & 0xC0) != 0x80) return 0xFFFD;
        cp = cp << 6 | (byte(i++) & 0x3F);
    }
    return cp;
}

void escape_unit(std::string& out, unsigned unit) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "\\u%04x", unit);
    out += buf;
}

}  // namespace

std::string quote(std::string_view s) {
    std::string out = "\"";
    for (size_t i = 0; i < s.size();) {
        const unsigned cp = next_code_point(s, i);
        switch (cp) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            case '\b': out += "\\b"; break;
            case '\f': out += "\\f"; break;
            default:
                if (cp >= 0x20 && cp < 0x7F) {
                    out += char(cp);
                } else if (cp < 0x10000) {
                    escape_unit(out, cp);
                } else {  // a surrogate pair
                    escape_unit(out, 0xD800 + ((cp - 0x10000) >> 10));
                    escape_unit(out, 0xDC00 + ((cp - 0x10000) & 0x3FF));
                }
        }
    }
    return out + "\"";
}

namespace {

void dump_to(std::string& out, const Value& v, int indent, int level) {
    const auto newline = [&](int lvl) {
        if (indent >= 0) out += "\n" + std::string(size_t(indent * lvl), ' ');
    };
    switch (v.type()) {
        case Type::Null: out += "null"; return;
        case Type::Bool: out += v.as_bool() ? "true" : "false"; return;
        case Type::Number: {
            const double d = v.as_number();
            if (v.is_integer() && std::fabs(d) < 9007199254740992.0) {
                out += std::to_string(static_cast<long long>(d));
            } else {
                out += number(d);
            }
            return;
        }
        case Type::String: out += quote(v.as_string()); return;
        case Type::Array: {
            const Array& a = v.as_array();
            if (a.empty()) {
                out += "[]";
                return;
            }
            out += '[';
            for (size_t i = 0; i < a.size(); ++i) {
                if (i) out += indent >= 0 ? "," : ",";
                newline(level + 1);
                dump_to(out, a[i], indent, level + 1);
            }
            newline(level);
            out += ']';
            return;
        }
        case Type::Object: {
            const Object& o = v.as_object();
            if (o.empty()) {
                out += "{}";
                return;
            }
            out += '{';
            for (size_t i = 0; i < o.size(); ++i) {
                if (i) out += ',';
                newline(level + 1);
                out += quote(o[i].first);
                out += indent >= 0 ? ": " : ":";
                dump_to(out, o[i].second, indent, level + 1);
            }
            newline(level);
            out += '}';
            return;
        }
    }
}

}  // namespace

std::string Value::dump(int indent) const {
    std::string out;
    dump_to(out, *this, indent, 0);
    return out;
}

std::string number(double d) {
    if (std::isnan(d)) return "NaN";
    if (std::isinf(d)) return d > 0 ? "Infinity" : "-Infinity";
    char buf[64];
    auto res = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::scientific);
    std::string sci(buf, res.ptr);  // e.g. "-1.2345e-05", shortest round-trip digits
    bool neg = sci[0] == '-';
    size_t epos = sci.find('e');
    std::string mant = sci.substr(neg ? 1 : 0, epos - (neg ? 1 : 0));
    int exp = std::stoi(sci.substr(epos + 1));
    std::string digits;
    for (char c : mant)
        if (c != '.') digits += c;
    std::string out = neg ? "-" : "";
    if (exp < -4 || exp >= 16) {  // Python repr switches to exponent notation here
        out += digits.substr(0, 1);
        if (digits.size() > 1) out += "." + digits.substr(1);
        char e[16];
        std::snprintf(e, sizeof e, "e%c%02d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
        return out + e;
    }
    if (exp < 0) return out + "0." + std::string(size_t(-exp - 1), '0') + digits;
    size_t int_len = size_t(exp) + 1;
    if (digits.size() <= int_len) return out + digits + std::string(int_len - digits.size(), '0') + ".0";
    return out + digits.substr(0, int_len) + "." + digits.substr(int_len);
}

}  // namespace pace::json
