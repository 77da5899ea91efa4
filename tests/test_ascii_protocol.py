"""Text-line spectra: parsing, separators, typed errors, line splitting, fuzzing."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pace_edge.streaming.errors import (
    ConfigError,
    LineError,
    LineTooLong,
    NonFiniteValue,
    NonNumericValue,
    PixelCountError,
    ProtocolError,
)
from pace_edge.streaming.protocols.ascii_lines import LineFormat, LineSplitter, separator_of


def test_arduino_line_with_trailing_comma_and_crlf():
    values = LineFormat(4).parse(b"812,790,805,777,\r\n")
    assert values.dtype == np.float64
    assert values.tolist() == [812, 790, 805, 777]


@pytest.mark.parametrize(
    "line, separator",
    [
        (b"1,2,3\n", ","),
        (b"1, 2, 3,\n", ","),
        (b"1\t2\t3\t\r\n", "tab"),
        (b"1 2  3 \n", "space"),
        (b"1;2;3;\n", ";"),
        (b"1;2;3\r\n", "auto"),
        (b"1,2,3,\r\n", "auto"),
        (b"1\t2\t3\n", "auto"),
        (b"  1   2 3\n", "auto"),
        (b"1.0,2e0,0.3e1\n", "comma"),
        (b"1,2,3", ","),  # no line end at all
    ],
)
def test_separators_and_number_styles(line, separator):
    assert LineFormat(3, separator).parse(line).tolist() == [1.0, 2.0, 3.0]


def test_wrong_pixel_count():
    with pytest.raises(PixelCountError) as info:
        LineFormat(288).parse(b",".join([b"5"] * 256) + b",\r\n")
    assert info.value.expected == 288 and info.value.got == 256
    with pytest.raises(PixelCountError):
        LineFormat(3).parse(b"\r\n")


@pytest.mark.parametrize(
    "line", [b"1,x2,3\n", b"1,,3\n", b"1,2,3,,\n", b"1,\xff\xfe,3\n", b"1,2_0,3\n", b"1,0x10,3\n"]
)
def test_non_numeric_cells(line):
    with pytest.raises(NonNumericValue):
        LineFormat(3).parse(line)


@pytest.mark.parametrize("line", [b"1,nan,3\n", b"1,2,inf,\r\n", b"-Infinity,2,3\n"])
def test_nan_and_inf_are_rejected(line):
    with pytest.raises(NonFiniteValue):
        LineFormat(3).parse(line)


def test_error_classes_share_one_base():
    for cls in (NonNumericValue, NonFiniteValue, LineTooLong, PixelCountError):
        assert issubclass(cls, ProtocolError)
    assert issubclass(NonFiniteValue, LineError)


def test_format_round_trip_integers_and_floats():
    values = np.array([0, 17, 4095, 1200])
    line = LineFormat(4).format(values)
    assert line == b"0,17,4095,1200,\r\n"
    assert LineFormat(4).parse(line).tolist() == values.tolist()
    fmt = LineFormat(3, "tab", trailing_separator=False, eol=b"\n", decimals=2)
    assert fmt.format([1.5, 2.25, 3]) == b"1.50\t2.25\t3.00\n"
    assert fmt.parse(fmt.format([1.5, 2.25, 3])).tolist() == [1.5, 2.25, 3.0]
    assert b"nan" in LineFormat(2).format([1.0, np.nan])


def test_bad_configs():
    with pytest.raises(ConfigError):
        separator_of("pipe")
    with pytest.raises(ConfigError):
        LineFormat(0)
    assert separator_of("semicolon") == ";" and separator_of("auto") is None


def test_line_splitter_keeps_partial_lines_and_limits_length():
    s = LineSplitter(max_line=10)
    assert s.feed(b"1,2") == []
    assert s.feed(b",3\r\n4,") == [b"1,2,3\r\n"]
    assert s.pending == 2
    out = s.feed(b"5" * 20)
    assert len(out) == 1 and isinstance(out[0], LineTooLong)
    assert s.feed(b"555\n7\n") == [b"7\n"]  # the rest of the long line is dropped


# -- property-based fuzzing --------------------------------------------------------------

FUZZ = settings(max_examples=200, deadline=None)
cells = st.one_of(
    st.integers(-5, 70000).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["", " ", "nan", "x", "1e", "--1", "\xff", "inf"]),
)


@FUZZ
@given(st.binary(max_size=200), st.sampled_from([",", "tab", "space", ";", "auto"]))
def test_fuzz_any_bytes_parse_to_spectrum_or_typed_error(line, separator):
    fmt = LineFormat(5, separator)
    try:
        values = fmt.parse(line)
    except ProtocolError as exc:
        assert isinstance(exc, LineError | PixelCountError)
    else:
        assert values.shape == (5,) and np.isfinite(values).all()


@FUZZ
@given(st.lists(cells, max_size=8), st.sampled_from([",", ";", "\t"]), st.booleans())
def test_fuzz_text_cells_parse_to_spectrum_or_typed_error(parts, sep, trailing):
    line = (sep.join(parts) + (sep if trailing else "") + "\r\n").encode("latin-1", "replace")
    try:
        values = LineFormat(4, "auto").parse(line)
    except ProtocolError:
        return
    assert values.shape == (4,) and np.isfinite(values).all()


@FUZZ
@given(st.lists(st.integers(0, 65535), min_size=1, max_size=300), st.sampled_from(",;\t "))
def test_fuzz_format_parse_round_trip(values, sep):
    fmt = LineFormat(len(values), sep)
    assert fmt.parse(fmt.format(values)).tolist() == values


@FUZZ
@given(st.binary(max_size=300), st.lists(st.integers(0, 300), max_size=10))
def test_fuzz_line_splitter_is_chunking_invariant(data, cuts):
    def run(points: list[int]) -> list:
        s = LineSplitter(max_line=40)
        out: list = []
        bounds = sorted({min(c, len(data)) for c in points} | {0, len(data)})
        for a, b in itertools.pairwise(bounds):
            out += s.feed(data[a:b])
        return [o if isinstance(o, bytes) else type(o) for o in out]

    assert run(cuts) == run([])
