// pace::json over nlohmann/json: strict parsing with JsonError, typed reads that name the
// field, null read as NaN where a figure may be missing, output as Python's json writes it.
#include <cmath>
#include <cstdlib>

#include "checks.hpp"
#include "pace/errors.hpp"
#include "pace/json.hpp"

using pace::Json;
using pace::JsonError;
namespace json = pace::json;

TEST_CASE("parses a document in order") {
    const Json v = json::parse(R"( {"b": [1, 2.5, -3e2, true, false, null], "a": {"c": "d"}, "n": 7} )");
    const Json& b = json::array(json::at(v, "b"), "b");
    CHECK(b.size() == 6);
    CHECK(json::integer(b[0], "b[0]") == 1);
    CHECK(json::number(b[1], "b[1]") == 2.5);
    CHECK(json::number(b[2], "b[2]") == -300.0);
    CHECK(json::boolean(b[3], "b[3]"));
    CHECK(b[5].is_null());
    CHECK(json::string(json::at(json::at(v, "a"), "c"), "c") == "d");
    CHECK(json::find(v, "missing") == nullptr);
    CHECK(json::find(b, "b") == nullptr);  // not an object
    CHECK(v.begin().key() == "b");          // document order kept
}

TEST_CASE("strict json only") {
    // pace-edge writes strict JSON (null for a non-finite figure); Python's NaN tokens are
    // not JSON and are refused like any other malformed document.
    for (const char* bad : {"", "{", "[1,]", "{\"a\" 1}", "01", "1.", "-", "\"abc", "[1] 2", "tru",
                            "{\"a\":1,}", "\"\x01\"", "[\"\\x\"]", "1e", "[NaN]", "[Infinity]"}) {
        bool threw = false;
        try {
            json::parse(bad);
        } catch (const JsonError&) {
            threw = true;
        }
        CHECK_MESSAGE(threw, "accepted: " << bad);
    }
    CHECK_THROWS_CONTAINING(json::parse("{\n  \"a\": x}"), JsonError, "line 2");
}

TEST_CASE("typed reads name the field") {
    const Json v = json::parse(R"({"s": "x", "n": null, "f": 2.5, "i": 3.0, "big": 1e300})");
    CHECK_THROWS_CONTAINING(json::object(json::parse("[1]"), "manifest"), JsonError,
                            "manifest must be an object, got an array");
    CHECK_THROWS_CONTAINING(json::at(v, "format"), JsonError, "missing field 'format'");
    CHECK_THROWS_CONTAINING(json::string(json::at(v, "f"), "target"), JsonError, "target must be a string, got a number");
    CHECK_THROWS_CONTAINING(json::number(json::at(v, "n"), "axis value"), JsonError, "axis value must be a number, got null");
    CHECK_THROWS_CONTAINING(json::integer(json::at(v, "f"), "length"), JsonError, "length must be an integer");
    CHECK_THROWS_CONTAINING(json::integer(json::at(v, "big"), "length"), JsonError, "length must be an integer");
    CHECK(json::integer(json::at(v, "i"), "i") == 3);  // an integral float counts, as in Python
}

TEST_CASE("null reads as nan where a figure may be missing") {
    const Json v = json::parse(R"({"max_abs_diff": null, "agreement": 0.5, "bad": "x"})");
    CHECK(std::isnan(json::number_or_nan(json::at(v, "max_abs_diff"), "max_abs_diff")));
    CHECK(json::number_or_nan(json::at(v, "agreement"), "agreement") == 0.5);
    CHECK_THROWS_CONTAINING(json::number_or_nan(json::at(v, "bad"), "bad"), JsonError, "bad must be a number");
}

TEST_CASE("duplicate keys keep the last") {
    CHECK(json::parse(R"({"a": 1, "a": 2})").at("a") == 2);
}

TEST_CASE("numbers round trip with the shortest digits") {
    CHECK(json::number_text(1.0) == "1.0");
    CHECK(json::number_text(0.1) == "0.1");
    CHECK(json::number_text(-2.5) == "-2.5");
    CHECK(json::number_text(1e-5) == "1e-05");
    CHECK(json::number_text(0.0001) == "0.0001");
    CHECK(json::number_text(1e16) == "1e+16");
    CHECK(json::number_text(0.3333333333333333) == "0.3333333333333333");
    CHECK(json::number_text(1764060000.1234567) == "1764060000.1234567");
    CHECK(json::number_text(-0.0) == "-0.0");
    for (double d : {0.1, 1.0 / 3.0, 1e-320, 123456.789e10, -7.25e-8})
        CHECK(std::strtod(json::number_text(d).c_str(), nullptr) == d);
}

TEST_CASE("dump as python writes it") {
    const Json v = json::parse(R"({"b": [1, 2.0, "x"], "a": {"k": null}, "e": []})");
    CHECK(json::dump(v) == R"({"b":[1,2.0,"x"],"a":{"k":null},"e":[]})");
    CHECK(json::dump(v, 2) == "{\n  \"b\": [\n    1,\n    2.0,\n    \"x\"\n  ],\n  \"a\": {\n    \"k\": null\n  },\n  \"e\": []\n}");
    // ensure_ascii: non-ASCII as \uXXXX (surrogate pairs beyond the BMP), as json.dumps does
    CHECK(json::dump(Json("\xc3\xa9\xe2\x80\xa6")) == "\"\\u00e9\\u2026\"");
    CHECK(json::dump(Json("\xf0\x9f\x98\x80")) == "\"\\ud83d\\ude00\"");
    CHECK(json::dump(Json(std::string("x\x01"))) == "\"x\\u0001\"");
    // a non-finite number is written as null (strict JSON), never NaN
    CHECK(json::dump(Json::array({std::nan(""), INFINITY})) == "[null,null]");
}
