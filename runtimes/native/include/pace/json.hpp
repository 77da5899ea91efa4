// A minimal JSON reader (RFC 8259 plus Python's NaN/Infinity/-Infinity) and the few
// writing helpers pace-stream needs. Numbers are doubles; integers are exact up to 2^53.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "pace/errors.hpp"

namespace pace::json {

class Value;
using Array = std::vector<Value>;
using Object = std::vector<std::pair<std::string, Value>>;  // document order kept

enum class Type { Null, Bool, Number, String, Array, Object };

class Value {
public:
    Value() = default;
    static Value boolean(bool b);
    static Value number(double d, bool integral);
    static Value string(std::string s);
    static Value array(Array a);
    static Value object(Object o);

    Type type() const { return type_; }
    bool is_null() const { return type_ == Type::Null; }
    bool is_bool() const { return type_ == Type::Bool; }
    bool is_number() const { return type_ == Type::Number; }
    bool is_integer() const { return type_ == Type::Number && integral_; }
    bool is_string() const { return type_ == Type::String; }
    bool is_array() const { return type_ == Type::Array; }
    bool is_object() const { return type_ == Type::Object; }

    // Typed access; JsonError (naming `what`) when the type is wrong.
    bool as_bool(std::string_view what = "value") const;
    double as_number(std::string_view what = "value") const;
    long long as_integer(std::string_view what = "value") const;
    const std::string& as_string(std::string_view what = "value") const;
    const Array& as_array(std::string_view what = "value") const;
    const Object& as_object(std::string_view what = "value") const;

    // Object member or nullptr (also nullptr when this is not an object).
    const Value* find(const std::string& key) const;
    // Object member; JsonError naming the key when absent.
    const Value& at(const std::string& key) const;

    // Serialise: indent < 0 gives compact JSON with Python's separators (",", ":"),
    // indent >= 0 pretty JSON as json.dumps(indent=...) writes it. Non-ASCII is escaped
    // (\uXXXX) as Python's ensure_ascii does; integral numbers print without ".0".
    std::string dump(int indent = -1) const;

private:
    Type type_ = Type::Null;
    bool bool_ = false;
    bool integral_ = false;
    double number_ = 0.0;
    std::shared_ptr<const std::string> string_;
    std::shared_ptr<const Array> array_;
    std::shared_ptr<const Object> object_;
};

const char* type_name(Type t);

// Insert or replace `key` in an object under construction.
void set(Object& object, const std::string& key, Value value);

// Parse a whole document; JsonError with line/column on malformed input.
Value parse(std::string_view text);

// `s` (UTF-8) as a JSON string literal, quotes included, escaped like Python's json.dumps
// with ensure_ascii (everything outside ' '..'~' as \uXXXX).
std::string quote(std::string_view s);

// `d` the way Python's repr()/json.dumps write a float: shortest round-trip digits,
// "1.0", "1e-05", "1.5e+16", "NaN", "Infinity".
std::string number(double d);

}  // namespace pace::json
