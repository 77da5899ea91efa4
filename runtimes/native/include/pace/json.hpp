// JSON through nlohmann/json (`ordered_json`: objects keep document order, as Python's dicts
// do), plus the typed reads pace-stream needs: each names the field it reads in a JsonError,
// so a malformed manifest is reported as "input length must be an integer, got a string".
//
// The manifest is strict JSON (pace_edge.export.manifest writes a non-finite figure as
// null): `number_or_nan` reads such a figure back as NaN, every other read refuses null.
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "pace/errors.hpp"

namespace pace {

using Json = nlohmann::ordered_json;

namespace json {

// A whole document; JsonError (nlohmann's message: what was expected at which byte) when
// malformed. Duplicate keys keep the last value, as Python's json does.
Json parse(std::string_view text);

// Serialise: indent < 0 gives compact JSON (separators "," and ":"), indent >= 0 pretty JSON
// as Python's json.dumps(indent=...) writes it; non-ASCII escaped (\uXXXX) as ensure_ascii
// does; non-finite numbers become null.
std::string dump(const Json& value, int indent = -1);

// `d` with the shortest digits that read back as `d` ("1.0", "0.1", "1e-05").
std::string number_text(double d);

// Object member, or nullptr when `object` is not an object or lacks `key`.
const Json* find(const Json& object, const std::string& key);
// Object member; JsonError "missing field 'KEY'" when absent.
const Json& at(const Json& object, const std::string& key);

// Typed reads; JsonError "WHAT must be a string, got null" and so on.
bool boolean(const Json& value, std::string_view what);
double number(const Json& value, std::string_view what);
double number_or_nan(const Json& value, std::string_view what);  // null → NaN
long long integer(const Json& value, std::string_view what);     // 3.0 counts, as in Python
const std::string& string(const Json& value, std::string_view what);
const Json& array(const Json& value, std::string_view what);
const Json& object(const Json& value, std::string_view what);

}  // namespace json
}  // namespace pace
