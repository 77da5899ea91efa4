// The JSON reader and writer: documents, Python's NaN/Infinity, escapes, errors, repr floats.
#include <cmath>

#include "check.hpp"
#include "pace/errors.hpp"
#include "pace/json.hpp"

using pace::JsonError;
namespace json = pace::json;

TEST(parses_a_document) {
    const auto v = json::parse(R"( {"a": [1, 2.5, -3e2, true, false, null], "b": {"c": "d"}, "n": 7} )");
    const auto& a = v.at("a").as_array();
    CHECK(a.size() == 6);
    CHECK(a[0].is_integer() && a[0].as_integer() == 1);
    CHECK(!a[1].is_integer() && a[1].as_number() == 2.5);
    CHECK(a[2].as_number() == -300.0 && !a[2].is_integer());
    CHECK(a[3].as_bool() && !a[4].as_bool() && a[5].is_null());
    CHECK(v.at("b").at("c").as_string() == "d");
    CHECK(v.at("n").as_integer() == 7);
    CHECK(v.find("missing") == nullptr);
}

TEST(python_special_floats_and_round_trip) {
    const auto v = json::parse("[NaN, Infinity, -Infinity, 0.1, 1e-320, 1e400]");
    const auto& a = v.as_array();
    CHECK(std::isnan(a[0].as_number()));
    CHECK(std::isinf(a[1].as_number()) && a[1].as_number() > 0);
    CHECK(std::isinf(a[2].as_number()) && a[2].as_number() < 0);
    CHECK(a[3].as_number() == 0.1);
    CHECK(a[4].as_number() > 0 && a[4].as_number() < 1e-300);
    CHECK(std::isinf(a[5].as_number()));
}

TEST(string_escapes_and_unicode) {
    const auto v = json::parse(R"(["a\"b\\c\/\n\t", "\u00e9\u2026", "\ud83d\ude00"])");
    const auto& a = v.as_array();
    CHECK(a[0].as_string() == "a\"b\\c/\n\t");
    CHECK(a[1].as_string() == "\xc3\xa9\xe2\x80\xa6");
    CHECK(a[2].as_string() == "\xf0\x9f\x98\x80");
    // written back as Python's json.dumps (ensure_ascii) writes them
    CHECK(json::quote(a[1].as_string()) == "\"\\u00e9\\u2026\"");
    CHECK(json::quote(a[2].as_string()) == "\"\\ud83d\\ude00\"");
    CHECK(json::quote(std::string("x\x01\x7f")) == "\"x\\u0001\\u007f\"");
}

TEST(malformed_documents_are_json_errors) {
    for (const char* bad : {"", "{", "[1,]", "{\"a\" 1}", "01", "1.", "-", "\"abc", "[1] 2",
                            "tru", "{\"a\":1,}", "\"\x01\"", "[\"\\x\"]", "1e"}) {
        bool threw = false;
        try {
            json::parse(bad);
        } catch (const JsonError&) {
            threw = true;
        }
        if (!threw) check::fail(__FILE__, __LINE__, std::string("accepted: ") + bad);
    }
    CHECK_THROWS(json::parse("{\n  \"a\": x}"), JsonError, "line 2");
    CHECK_THROWS(json::parse("[1]").as_object("manifest"), JsonError, "manifest must be an object");
    CHECK_THROWS(json::parse("{}").at("format"), JsonError, "missing field 'format'");
}

TEST(duplicate_keys_keep_the_last) {
    CHECK(json::parse(R"({"a": 1, "a": 2})").at("a").as_integer() == 2);
}

TEST(numbers_print_as_python_repr) {
    CHECK(json::number(1.0) == "1.0");
    CHECK(json::number(0.1) == "0.1");
    CHECK(json::number(-2.5) == "-2.5");
    CHECK(json::number(1e-5) == "1e-05");
    CHECK(json::number(0.0001) == "0.0001");
    CHECK(json::number(1e16) == "1e+16");
    CHECK(json::number(123456789012345.0) == "123456789012345.0");
    CHECK(json::number(1.5e300) == "1.5e+300");
    CHECK(json::number(0.3333333333333333) == "0.3333333333333333");
    CHECK(json::number(1764060000.1234567) == "1764060000.1234567");
    CHECK(json::number(NAN) == "NaN");
    CHECK(json::number(-INFINITY) == "-Infinity");
    CHECK(json::number(-0.0) == "-0.0");
}

TEST(dump_compact_and_indented) {
    const auto v = json::parse(R"({"b": [1, 2.0, "x"], "a": {"k": null}, "e": []})");
    CHECK(v.dump() == R"({"b":[1,2.0,"x"],"a":{"k":null},"e":[]})");
    CHECK(v.dump(2) == "{\n  \"b\": [\n    1,\n    2.0,\n    \"x\"\n  ],\n  \"a\": {\n    \"k\": null\n  },\n  \"e\": []\n}");
}

TEST_MAIN()
