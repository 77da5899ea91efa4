"""Ocean Binary Protocol frames: byte-exact encoding, parsing, errors, resync, fuzzing."""

from __future__ import annotations

import hashlib
import itertools
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pace_edge.streaming.errors import (
    ChecksumError,
    DeviceError,
    FrameError,
    ProtocolError,
    TruncatedFrame,
)
from pace_edge.streaming.protocols import obp


def hand_frame(
    message_type: int,
    *,
    flags: int = 0,
    error: int = 0,
    regarding: int = 0,
    immediate: bytes = b"",
    payload: bytes = b"",
    md5: bool = False,
    version: int = 0x1100,
) -> bytes:
    """An OBP frame assembled field by field, independently of the module under test."""
    head = b"\xc1\xc0"
    head += struct.pack("<H", version)
    head += struct.pack("<H", flags)
    head += struct.pack("<H", error)
    head += struct.pack("<I", message_type)
    head += struct.pack("<I", regarding)
    head += b"\x00" * 6
    head += bytes([1 if md5 else 0, len(immediate)])
    head += immediate + b"\x00" * (16 - len(immediate))
    head += struct.pack("<I", len(payload) + 20)
    assert len(head) == 44
    body = head + payload
    checksum = hashlib.md5(body).digest() if md5 else b"\x00" * 16
    return body + checksum + b"\xc5\xc4\xc3\xc2"


def test_get_serial_request_is_byte_exact():
    msg = obp.Message(obp.MSG_GET_SERIAL, flags=obp.FLAG_ACK_REQUESTED, regarding=7)
    expected = hand_frame(0x00000100, flags=0x0004, regarding=7)
    assert obp.encode(msg) == expected
    assert len(expected) == 64
    assert expected[:8].hex() == "c1c0001104000000"


def test_set_integration_time_request_carries_immediate_u32():
    msg = obp.Message.with_data(
        obp.MSG_SET_INTEGRATION_TIME, struct.pack("<I", 100_000), checksum_type=obp.CHECKSUM_MD5
    )
    expected = hand_frame(0x00110010, immediate=b"\xa0\x86\x01\x00", md5=True)
    assert obp.encode(msg) == expected
    assert expected[23] == 4  # immediate length
    assert expected[40:44] == b"\x14\x00\x00\x00"  # bytes remaining = 20


def test_spectrum_response_with_payload_and_md5_is_byte_exact_and_parses():
    counts = list(range(100, 132))
    payload = struct.pack("<32H", *counts)
    raw = hand_frame(0x00101100, flags=obp.FLAG_RESPONSE, regarding=99, payload=payload, md5=True)
    msg = obp.Message.with_data(
        obp.MSG_GET_RAW_SPECTRUM,
        payload,
        flags=obp.FLAG_RESPONSE,
        regarding=99,
        checksum_type=obp.CHECKSUM_MD5,
    )
    assert msg.payload == payload and msg.immediate == b""
    assert obp.encode(msg) == raw
    assert struct.unpack_from("<I", raw, 40)[0] == 64 + 20

    (parsed,) = obp.FrameParser().feed(raw)
    assert parsed == msg
    assert parsed.is_response and not parsed.is_error
    assert list(struct.unpack("<32H", parsed.data)) == counts


def test_coefficient_reply_parses_float32_immediate():
    raw = hand_frame(
        0x00180101, flags=obp.FLAG_RESPONSE, regarding=3, immediate=struct.pack("<f", 790.25)
    )
    (msg,) = obp.FrameParser().feed(raw)
    assert msg.message_type == obp.MSG_GET_WL_COEFF
    assert struct.unpack("<f", msg.data)[0] == 790.25
    assert msg.regarding == 3


def test_version_0x1000_is_accepted():
    (msg,) = obp.FrameParser().feed(hand_frame(0x00000100, version=0x1000))
    assert isinstance(msg, obp.Message) and msg.version == 0x1000


def test_nack_becomes_device_error_with_number_and_name():
    raw = hand_frame(0x00110010, flags=obp.FLAG_RESPONSE | obp.FLAG_NACK, error=6, regarding=5)
    (msg,) = obp.FrameParser().feed(raw)
    assert msg.is_nack and msg.is_error
    err = msg.device_error()
    assert isinstance(err, DeviceError)
    assert err.error_number == 6
    assert err.error_name == "payload data invalid"
    assert err.message_type == obp.MSG_SET_INTEGRATION_TIME
    assert "NACK" in str(err) and "set integration time" in str(err)
    assert obp.error_name(2) == "unknown message type"
    assert "unknown error" in obp.error_name(4242)


def test_checksum_mismatch_is_reported_and_the_next_frame_survives():
    good = hand_frame(0x00000100, immediate=b"SN1", md5=True)
    bad = bytearray(hand_frame(0x00101100, payload=bytes(range(40)), md5=True))
    bad[50] ^= 0x01
    parser = obp.FrameParser()
    out = parser.feed(bytes(bad) + good)
    assert isinstance(out[0], ChecksumError)
    assert isinstance(out[1], obp.Message) and out[1].data == b"SN1"
    assert parser.pending == 0


def test_a_corrupted_length_that_swallows_the_next_frame_loses_only_itself():
    """A bit flip in 'bytes remaining' (header offset 40) can stretch a frame over the next
    one so that the footer still matches (found by the fuzz test below): the checksum fails,
    and the intact frame inside must still come out."""
    good = hand_frame(0x00000100, md5=True)  # no data: 64 bytes
    bad = bytearray(good)
    bad[40] ^= 1 << 6  # bytes remaining + 64: the next frame becomes its tail
    assert len(good) == 64
    parser = obp.FrameParser()
    out = parser.feed(bytes(bad) + good)
    assert isinstance(out[0], ChecksumError) and "128 bytes" in str(out[0])
    assert [m.message_type for m in out[1:]] == [0x00000100]
    assert parser.pending == 0


def test_bad_version_and_bad_footer_are_frame_errors_then_resync():
    bad_version = bytearray(hand_frame(0x00000100))
    bad_version[2:4] = b"\x00\x22"
    bad_footer = bytearray(hand_frame(0x00000100))
    bad_footer[-1] = 0x00
    good = hand_frame(0x00180100, immediate=b"\x04")
    out = obp.FrameParser().feed(bytes(bad_version) + bytes(bad_footer) + good)
    errors = [o for o in out if isinstance(o, ProtocolError)]
    messages = [o for o in out if isinstance(o, obp.Message)]
    assert all(isinstance(e, FrameError) for e in errors)
    assert any("version" in str(e) for e in errors)
    assert any("footer" in str(e) for e in errors)
    assert messages == [obp.Message(obp.MSG_GET_WL_COEFF_COUNT, immediate=b"\x04")]


def test_immediate_length_and_size_limits_are_frame_errors():
    too_long = bytearray(hand_frame(0x00000100))
    too_long[23] = 17
    huge = bytearray(hand_frame(0x00000100))
    huge[40:44] = struct.pack("<I", 10_000_000)
    for raw in (too_long, huge):
        out = obp.FrameParser(max_payload=4096).feed(bytes(raw))
        assert isinstance(out[0], FrameError)  # reported at once, without waiting for 10 MB


def test_resync_after_garbage_counts_skipped_bytes():
    frame = hand_frame(0x00000100, immediate=b"ABC")
    garbage = b"\x00\xff\x13\xc0\xc2 noise \xc1"
    parser = obp.FrameParser()
    out = parser.feed(garbage + frame + garbage + frame + b"\x01\x02")
    assert [type(o) for o in out] == [obp.Message, obp.Message]
    assert parser.skipped == 2 * len(garbage) + 2


def test_truncated_frame_waits_then_expires():
    frame = hand_frame(0x00101100, payload=bytes(100))
    parser = obp.FrameParser()
    assert parser.feed(frame[:70]) == []
    assert parser.in_frame and parser.pending == 70
    (err,) = parser.expire()
    assert isinstance(err, TruncatedFrame) and isinstance(err, FrameError)
    assert not parser.in_frame
    assert parser.expire() == []
    assert isinstance(parser.feed(frame)[0], obp.Message)


def test_split_start_bytes_across_feeds():
    frame = hand_frame(0x00000100)
    parser = obp.FrameParser()
    assert parser.feed(b"junk\xc1") == []
    (msg,) = parser.feed(frame[1:])
    assert msg.message_type == obp.MSG_GET_SERIAL


def test_message_validation():
    with pytest.raises(ValueError):
        obp.Message(1, immediate=bytes(17))
    with pytest.raises(ValueError):
        obp.Message(1, immediate=b"a", payload=b"b")
    assert obp.Message.with_data(1, bytes(16)).immediate == bytes(16)
    assert obp.Message.with_data(1, bytes(17)).payload == bytes(17)


# -- property-based fuzzing --------------------------------------------------------------

messages = st.builds(
    lambda mtype, data, flags, error, regarding, ctype, version, reserved: obp.Message.with_data(
        mtype,
        data,
        flags=flags,
        error=error,
        regarding=regarding,
        checksum_type=ctype,
        version=version,
        reserved=reserved,
    ),
    st.integers(0, 2**32 - 1),
    st.binary(max_size=80),
    st.integers(0, 2**16 - 1),
    st.integers(0, 2**16 - 1),
    st.integers(0, 2**32 - 1),
    st.sampled_from([obp.CHECKSUM_NONE, obp.CHECKSUM_MD5]),
    st.sampled_from(obp.VERSIONS),
    st.binary(min_size=6, max_size=6),
)
garbage = st.binary(max_size=40).filter(lambda b: obp.START not in b)
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def feed_in_chunks(data: bytes, cuts: list[int]) -> tuple[list, obp.FrameParser]:
    parser = obp.FrameParser(max_payload=512)
    out: list = []
    points = sorted({min(c, len(data)) for c in cuts} | {0, len(data)})
    for a, b in itertools.pairwise(points):
        out += parser.feed(data[a:b])
    return out, parser


def signature(items: list) -> list:
    return [item if isinstance(item, obp.Message) else (type(item), str(item)) for item in items]


@FUZZ
@given(st.binary(max_size=600), st.lists(st.integers(0, 600), max_size=12))
def test_fuzz_any_bytes_any_chunking_gives_only_messages_or_protocol_errors(data, cuts):
    chunked, parser = feed_in_chunks(data, cuts)
    whole, _ = feed_in_chunks(data, [])
    for item in chunked + parser.expire():
        assert isinstance(item, obp.Message | ProtocolError)
    assert signature(chunked) == signature(whole)  # chunking never changes the outcome


@FUZZ
@given(
    st.lists(st.tuples(garbage, messages), min_size=1, max_size=5),
    garbage,
    st.lists(st.integers(0, 2000), max_size=10),
)
def test_fuzz_frames_embedded_in_garbage_are_all_recovered(pairs, tail, cuts):
    stream = b"".join(g + obp.encode(m) for g, m in pairs) + tail
    out, _ = feed_in_chunks(stream, cuts)
    assert out == [m for _, m in pairs]


@FUZZ
@given(messages, st.integers(0, 10_000), st.integers(0, 7))
def test_fuzz_a_flipped_bit_never_escapes_as_another_exception(msg, where, bit):
    raw = bytearray(obp.encode(msg))
    raw[where % len(raw)] ^= 1 << bit
    out, parser = feed_in_chunks(bytes(raw) + obp.encode(msg), [where])
    out += parser.expire()
    assert all(isinstance(o, obp.Message | ProtocolError) for o in out)
    if msg.checksum_type == obp.CHECKSUM_MD5:
        assert out.count(msg) >= 1
