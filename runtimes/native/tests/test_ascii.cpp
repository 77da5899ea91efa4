// ASCII lines: separators (auto, trailing), Python float() syntax, typed errors in the
// documented order, the line splitter's long-line handling.
#include "check.hpp"
#include "pace/ascii_lines.hpp"

namespace ascii = pace::ascii;
using pace::ErrorKind;
using pace::ProtocolError;

namespace {
ErrorKind kind_of(const ascii::LineFormat& f, const std::string& line) {
    try {
        f.parse(line);
    } catch (const ProtocolError& e) {
        return e.kind();
    }
    return ErrorKind::ConfigError;  // "no error"
}
}  // namespace

TEST(cells_and_separators) {
    ascii::LineFormat comma(3, ',');
    CHECK(comma.parse("812,790,805,\r\n") == (pace::Vec{812, 790, 805}));
    CHECK(comma.parse("1,2,3\n") == (pace::Vec{1, 2, 3}));
    ascii::LineFormat autodetect(3, 0);
    CHECK(autodetect.parse("1;2;3;\n") == (pace::Vec{1, 2, 3}));
    CHECK(autodetect.parse("1\t2\t3\n") == (pace::Vec{1, 2, 3}));
    CHECK(autodetect.parse("  1   2 \t 3  \r\n") == (pace::Vec{1, 2, 3}));
    CHECK(autodetect.parse("1.5e2, -2 ,+.5\n") == (pace::Vec{150, -2, 0.5}));
    CHECK(autodetect.cells("\r\n").empty());
    CHECK(comma.cells(",\n").empty());  // a lone trailing separator: no cells
    CHECK(ascii::separator_of("tab") == '\t' && ascii::separator_of(";") == ';');
}

TEST(python_float_syntax) {
    CHECK(*ascii::parse_number(" 12 ") == 12);
    CHECK(*ascii::parse_number("1E3") == 1000);
    CHECK(*ascii::parse_number("5.") == 5);
    CHECK(std::isinf(*ascii::parse_number("-Infinity")));
    CHECK(std::isnan(*ascii::parse_number("nan")));
    for (const char* bad : {"", " ", "1_000", "0x10", "1e", "e5", ".", "--1", "1,0", "12a", "\xc3\xa9"})
        if (ascii::parse_number(bad)) check::fail(__FILE__, __LINE__, std::string("accepted: ") + bad);
}

TEST(errors_in_the_documented_order) {
    ascii::LineFormat f(3, ',');
    CHECK(kind_of(f, "1,2,x\n") == ErrorKind::NonNumericValue);
    CHECK(kind_of(f, "1,2\n") == ErrorKind::PixelCountError);
    CHECK(kind_of(f, "1,2,nan\n") == ErrorKind::NonFiniteValue);
    CHECK(kind_of(f, "1,x\n") == ErrorKind::NonNumericValue);  // non-numeric before the count
    CHECK(kind_of(f, "1,nan\n") == ErrorKind::PixelCountError);  // count before non-finite
    CHECK(kind_of(f, "1,\xff\xfe,3\n") == ErrorKind::NonNumericValue);
    CHECK_THROWS(f.parse("1,2#,3\n"), ProtocolError, "value 1 is not a number: '2#'");
    CHECK_THROWS(f.parse("1,2\n"), ProtocolError, "line has 2 values, expected 3");
    CHECK_THROWS(f.parse("1,inf,3\n"), ProtocolError, "non-finite value inf at pixel 1");
}

TEST(splitter_cuts_lines_and_long_lines) {
    ascii::LineSplitter s(10);
    auto items = s.feed("ab\r\ncd", 6);
    CHECK(items.size() == 1 && std::get<std::string>(items[0]) == "ab\r\n");
    CHECK(s.pending() == 2);
    items = s.feed("ef\n", 3);
    CHECK(items.size() == 1 && std::get<std::string>(items[0]) == "cdef\n");
    items = s.feed("0123456789ABCD", 14);  // no line end within 10 bytes
    CHECK(items.size() == 1 && std::get<pace::ProtocolFault>(items[0]).kind == ErrorKind::LineTooLong);
    items = s.feed("EF\nok\n", 6);  // the rest of the long line is discarded
    CHECK(items.size() == 1 && std::get<std::string>(items[0]) == "ok\n");
    items = s.feed("012345678901\n", 13);  // a complete line that is too long
    CHECK(items.size() == 1 && std::holds_alternative<pace::ProtocolFault>(items[0]));
}

TEST_MAIN()
