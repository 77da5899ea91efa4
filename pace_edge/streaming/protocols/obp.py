"""Ocean Binary Protocol (OBP) frames, as spoken by Ocean STS, Flame-S, ... over serial or USB.

A frame (all integers little-endian)::

    offset  size  field
    0       2     start bytes C1 C0
    2       2     protocol version (0x1100; 0x1000 accepted)
    4       2     flags: bit0 response, bit1 ACK, bit2 ACK requested, bit3 NACK, bit4 exception
    6       2     error number
    8       4     message type
    12      4     regarding (echoed by the device in its reply)
    16      6     reserved
    22      1     checksum type (0 none, 1 MD5)
    23      1     immediate data length (<= 16)
    24      16    immediate data
    40      4     bytes remaining = payload length + 16 (checksum) + 4 (footer)
    44      n     payload (only when the data does not fit the immediate field)
    44+n    16    checksum: MD5 of bytes 0 .. 44+n-1 (type 1), else zeros
    60+n    4     footer C5 C4 C3 C2

Pure bytes: :func:`encode` builds frames, :class:`FrameParser` recovers them from a byte stream
in any chunking and resynchronises on the start bytes after garbage.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

from ..errors import ChecksumError, DeviceError, FrameError, ProtocolError, TruncatedFrame

START = b"\xc1\xc0"
FOOTER = b"\xc5\xc4\xc3\xc2"
HEADER = struct.Struct("<2sHHHII6sBB16sI")
HEADER_SIZE = HEADER.size  # 44
CHECKSUM_SIZE = 16
FOOTER_SIZE = 4
TRAILER_SIZE = CHECKSUM_SIZE + FOOTER_SIZE  # counted in "bytes remaining" with the payload
MIN_FRAME = HEADER_SIZE + TRAILER_SIZE  # 64
IMMEDIATE_SIZE = 16
MAX_PAYLOAD = 1 << 16

VERSION = 0x1100
VERSIONS = (0x1100, 0x1000)

CHECKSUM_NONE = 0
CHECKSUM_MD5 = 1

FLAG_RESPONSE = 1 << 0
FLAG_ACK = 1 << 1
FLAG_ACK_REQUESTED = 1 << 2
FLAG_NACK = 1 << 3
FLAG_EXCEPTION = 1 << 4

MSG_RESET = 0x00000000
MSG_GET_SERIAL = 0x00000100
MSG_GET_RAW_SPECTRUM = 0x00101100
MSG_SET_INTEGRATION_TIME = 0x00110010
MSG_GET_WL_COEFF_COUNT = 0x00180100
MSG_GET_WL_COEFF = 0x00180101

MESSAGE_NAMES = {
    MSG_RESET: "reset",
    MSG_GET_SERIAL: "get serial number",
    MSG_GET_RAW_SPECTRUM: "get raw spectrum",
    MSG_SET_INTEGRATION_TIME: "set integration time",
    MSG_GET_WL_COEFF_COUNT: "get wavelength coefficient count",
    MSG_GET_WL_COEFF: "get wavelength coefficient",
}

ERROR_NAMES = {
    0: "success",
    1: "invalid or unsupported protocol",
    2: "unknown message type",
    3: "bad checksum",
    4: "message too large",
    5: "payload length does not match message type",
    6: "payload data invalid",
    7: "device not ready for this message type",
    8: "unknown checksum type",
    9: "device reset unexpectedly",
    10: "too many buses",
    11: "out of memory",
    12: "message valid but the requested information does not exist",
    13: "internal device error",
    14: "message did not end properly",
    15: "current scan interrupted",
    100: "could not decrypt properly",
    101: "firmware layout invalid",
    102: "data packet was the wrong size",
    103: "hardware revision not compatible with the firmware",
    104: "existing flash map not compatible with the firmware",
}

ERR_UNKNOWN_MESSAGE = 2
ERR_BAD_CHECKSUM = 3
ERR_PAYLOAD_LENGTH = 5
ERR_PAYLOAD_INVALID = 6


def message_name(message_type: int) -> str:
    return MESSAGE_NAMES.get(message_type, f"message 0x{message_type:08X}")


def error_name(error_number: int) -> str:
    return ERROR_NAMES.get(error_number, f"unknown error {error_number}")


@dataclass(frozen=True)
class Message:
    """One OBP message. Data of up to 16 bytes travels in ``immediate``, longer in ``payload``."""

    message_type: int
    immediate: bytes = b""
    payload: bytes = b""
    flags: int = 0
    error: int = 0
    regarding: int = 0
    checksum_type: int = CHECKSUM_NONE
    version: int = VERSION
    reserved: bytes = bytes(6)

    def __post_init__(self) -> None:
        if len(self.immediate) > IMMEDIATE_SIZE:
            raise ValueError(f"immediate data is at most 16 bytes, got {len(self.immediate)}")
        if self.immediate and self.payload:
            raise ValueError("a message carries immediate data or a payload, not both")
        if len(self.reserved) != 6:
            raise ValueError("reserved must be 6 bytes")

    @classmethod
    def with_data(cls, message_type: int, data: bytes = b"", **fields: int) -> Message:
        """A message whose ``data`` goes in the immediate field if it fits, else the payload."""
        if len(data) <= IMMEDIATE_SIZE:
            return cls(message_type, immediate=bytes(data), **fields)
        return cls(message_type, payload=bytes(data), **fields)

    @property
    def data(self) -> bytes:
        return self.payload or self.immediate

    @property
    def is_response(self) -> bool:
        return bool(self.flags & FLAG_RESPONSE)

    @property
    def is_ack(self) -> bool:
        return bool(self.flags & FLAG_ACK)

    @property
    def is_nack(self) -> bool:
        return bool(self.flags & FLAG_NACK)

    @property
    def ack_requested(self) -> bool:
        return bool(self.flags & FLAG_ACK_REQUESTED)

    @property
    def is_error(self) -> bool:
        """NACK, exception flag or a non-zero error number."""
        return bool(self.flags & (FLAG_NACK | FLAG_EXCEPTION)) or self.error != 0

    def device_error(self) -> DeviceError:
        """The :class:`DeviceError` this (error) reply stands for."""
        name = error_name(self.error)
        kind = "NACK" if self.is_nack else "exception" if self.flags & FLAG_EXCEPTION else "error"
        return DeviceError(
            f"device {kind} to {message_name(self.message_type)}: error {self.error} ({name})",
            error_number=self.error,
            error_name=name,
            message_type=self.message_type,
        )


def checksum_of(frame_body: bytes, checksum_type: int) -> bytes:
    """The 16 checksum bytes for ``frame_body`` (start bytes through the last payload byte)."""
    if checksum_type == CHECKSUM_MD5:
        return hashlib.md5(frame_body).digest()
    return bytes(CHECKSUM_SIZE)


def encode(msg: Message) -> bytes:
    """The bytes of ``msg`` as one OBP frame."""
    if msg.checksum_type not in (CHECKSUM_NONE, CHECKSUM_MD5):
        raise ValueError(f"unknown checksum type {msg.checksum_type}")
    header = HEADER.pack(
        START,
        msg.version,
        msg.flags,
        msg.error,
        msg.message_type,
        msg.regarding,
        msg.reserved,
        msg.checksum_type,
        len(msg.immediate),
        msg.immediate.ljust(IMMEDIATE_SIZE, b"\0"),
        len(msg.payload) + TRAILER_SIZE,
    )
    body = header + msg.payload
    return body + checksum_of(body, msg.checksum_type) + FOOTER


class FrameParser:
    """Incremental OBP frame parser with resynchronisation.

    :meth:`feed` returns, in stream order, every complete :class:`Message` and every
    :class:`ProtocolError` found so far (errors are returned, not raised). Bytes before a start
    sequence are skipped and counted in :attr:`skipped`. A frame that fails its checks
    (version, lengths, footer) is abandoned one byte at a time, so a real frame hidden behind a
    false start is still found; a frame with a bad checksum is dropped up to the next start
    sequence inside it (whole, if there is none). Results do not
    depend on how the stream is chunked.
    """

    def __init__(self, max_payload: int = MAX_PAYLOAD):
        self.max_payload = max_payload
        self._buf = bytearray()
        self.skipped = 0  # garbage bytes discarded while looking for start bytes
        self.frames = 0  # messages returned
        self.errors = 0  # errors returned

    @property
    def pending(self) -> int:
        """Bytes held back waiting for the rest of a frame."""
        return len(self._buf)

    @property
    def in_frame(self) -> bool:
        """True when the buffered bytes begin a frame whose end has not arrived."""
        return self._buf.startswith(START)

    def reset(self) -> None:
        self._buf.clear()

    def feed(self, data: bytes) -> list[Message | ProtocolError]:
        self._buf += data
        return self._drain()

    def expire(self) -> list[Message | ProtocolError]:
        """Declare the frame in progress truncated (its end will never come); parse on."""
        if not self.in_frame:
            return []
        out: list[Message | ProtocolError] = [
            self._error(TruncatedFrame(f"frame truncated after {len(self._buf)} bytes"))
        ]
        self._drop(1)
        return out + self._drain()

    # -- internals -------------------------------------------------------------------------

    def _drop(self, n: int) -> None:
        del self._buf[:n]

    def _error(self, exc: ProtocolError) -> ProtocolError:
        self.errors += 1
        return exc

    def _drain(self) -> list[Message | ProtocolError]:
        out: list[Message | ProtocolError] = []
        buf = self._buf
        while True:
            i = buf.find(START)
            if i < 0:
                keep = 1 if buf.endswith(START[:1]) else 0  # a start byte may be half-arrived
                self.skipped += len(buf) - keep
                del buf[: len(buf) - keep]
                return out
            if i:
                self.skipped += i
                del buf[:i]
            if len(buf) < HEADER_SIZE:
                return out
            result = self._frame_at_start()
            if result is None:
                return out
            out.append(result)

    def _frame_at_start(self) -> Message | ProtocolError | None:
        """Parse the frame at the buffer start; None when more bytes are needed."""
        buf = self._buf
        (_, version, flags, error, mtype, regarding, reserved, ctype, ilen, imm, remaining) = (
            HEADER.unpack_from(buf)
        )
        problem = None
        if version not in VERSIONS:
            problem = f"unsupported protocol version 0x{version:04X}"
        elif ctype not in (CHECKSUM_NONE, CHECKSUM_MD5):
            problem = f"unknown checksum type {ctype}"
        elif ilen > IMMEDIATE_SIZE:
            problem = f"immediate data length {ilen} > 16"
        elif not TRAILER_SIZE <= remaining <= self.max_payload + TRAILER_SIZE:
            problem = f"bytes remaining {remaining} outside 20..{self.max_payload + TRAILER_SIZE}"
        elif ilen and remaining != TRAILER_SIZE:
            problem = f"immediate data ({ilen} bytes) and a payload ({remaining - 20} bytes)"
        if problem:
            self._drop(1)
            return self._error(FrameError(problem))
        total = HEADER_SIZE + remaining
        if len(buf) < total:
            return None
        if buf[total - FOOTER_SIZE : total] != FOOTER:
            self._drop(1)
            return self._error(FrameError(f"bad footer {bytes(buf[total - 4 : total]).hex()}"))
        end_body = total - TRAILER_SIZE
        if ctype == CHECKSUM_MD5:
            digest = bytes(buf[end_body : end_body + CHECKSUM_SIZE])
            if hashlib.md5(buf[:end_body]).digest() != digest:
                # dropped whole, unless a start sequence lies inside: a corrupted length field
                # can stretch the frame over the next, intact one
                inner = buf.find(START, 1, total)
                self._drop(inner if inner > 0 else total)
                return self._error(
                    ChecksumError(f"MD5 mismatch in {message_name(mtype)} frame ({total} bytes)")
                )
        msg = Message(
            message_type=mtype,
            immediate=bytes(imm[:ilen]),
            payload=bytes(buf[HEADER_SIZE:end_body]),
            flags=flags,
            error=error,
            regarding=regarding,
            checksum_type=ctype,
            version=version,
            reserved=bytes(reserved),
        )
        self._drop(total)
        self.frames += 1
        return msg
