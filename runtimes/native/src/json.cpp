#include "pace/json.hpp"

#include <cmath>

namespace pace::json {

namespace {

const char* type_name(const Json& v) {
    switch (v.type()) {
        case Json::value_t::null: return "null";
        case Json::value_t::boolean: return "a boolean";
        case Json::value_t::number_integer:
        case Json::value_t::number_unsigned:
        case Json::value_t::number_float: return "a number";
        case Json::value_t::string: return "a string";
        case Json::value_t::array: return "an array";
        case Json::value_t::object: return "an object";
        default: return "not JSON data";
    }
}

[[noreturn]] void wrong_type(std::string_view what, const char* expected, const Json& got) {
    throw JsonError(std::string(what) + " must be " + expected + ", got " + type_name(got));
}

}  // namespace

Json parse(std::string_view text) {
    try {
        return Json::parse(text.begin(), text.end());
    } catch (const Json::parse_error& e) {
        throw JsonError(e.what());
    }
}

std::string dump(const Json& value, int indent) {
    return value.dump(indent, ' ', /*ensure_ascii=*/true, Json::error_handler_t::replace);
}

std::string number_text(double d) { return Json(d).dump(); }

const Json* find(const Json& object, const std::string& key) {
    if (!object.is_object()) return nullptr;
    const auto it = object.find(key);
    return it == object.end() ? nullptr : &*it;
}

const Json& at(const Json& object, const std::string& key) {
    const Json* v = find(object, key);
    if (v == nullptr) throw JsonError("missing field '" + key + "'");
    return *v;
}

bool boolean(const Json& value, std::string_view what) {
    if (!value.is_boolean()) wrong_type(what, "a boolean", value);
    return value.get<bool>();
}

double number(const Json& value, std::string_view what) {
    if (!value.is_number()) wrong_type(what, "a number", value);
    return value.get<double>();
}

double number_or_nan(const Json& value, std::string_view what) {
    return value.is_null() ? std::nan("") : number(value, what);
}

long long integer(const Json& value, std::string_view what) {
    if (value.is_number_integer()) return value.get<long long>();
    if (value.is_number_unsigned()) {
        const auto u = value.get<unsigned long long>();
        if (u <= 9007199254740992ULL) return static_cast<long long>(u);
    } else if (value.is_number_float()) {
        const double d = value.get<double>();
        if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) <= 9007199254740992.0)
            return static_cast<long long>(d);
    }
    wrong_type(what, "an integer", value);
}

const std::string& string(const Json& value, std::string_view what) {
    if (!value.is_string()) wrong_type(what, "a string", value);
    return value.get_ref<const std::string&>();
}

const Json& array(const Json& value, std::string_view what) {
    if (!value.is_array()) wrong_type(what, "an array", value);
    return value;
}

const Json& object(const Json& value, std::string_view what) {
    if (!value.is_object()) wrong_type(what, "an object", value);
    return value;
}

}  // namespace pace::json
