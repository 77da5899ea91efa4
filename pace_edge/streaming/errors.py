"""Typed errors of the streaming layer.

Everything a driver can raise at run time is a :class:`StreamError` (a
:class:`~pace_edge.errors.PaceEdgeError`, so the CLI prints it as one line)::

    StreamError
    ├── TransportError ── TransportTimeout, TransportClosed
    ├── ProtocolError ─┬─ FrameError ── TruncatedFrame
    │                  ├─ ChecksumError
    │                  ├─ PixelCountError
    │                  └─ LineError ── NonNumericValue, NonFiniteValue, LineTooLong
    ├── DeviceError        (the device answered with a NACK / error number)
    ├── DeviceChanged      (after a reconnect another device answers on the link)
    └── ConfigError        (bad options: fault spec, axis calibration, driver options)
"""

from __future__ import annotations

from ..errors import PaceEdgeError


class StreamError(PaceEdgeError):
    """Any failure while talking to a spectrometer."""


class TransportError(StreamError):
    """The byte link failed."""


class TransportTimeout(TransportError):
    """Nothing (or not enough) arrived before the deadline."""


class TransportClosed(TransportError):
    """The port could not be opened, or it went away (unplugged, emulator dropped the pty)."""


class ProtocolError(StreamError):
    """Bytes arrived but do not form a valid message."""


class FrameError(ProtocolError):
    """A malformed binary frame: bad version, length, flags or footer."""


class TruncatedFrame(FrameError):
    """A frame (or line) started but its end never came."""


class ChecksumError(ProtocolError):
    """A frame's checksum does not match its contents."""


class PixelCountError(ProtocolError):
    """A spectrum with the wrong number of pixels."""

    def __init__(self, message: str, *, expected: int | None = None, got: int | None = None):
        super().__init__(message)
        self.expected = expected
        self.got = got


class LineError(ProtocolError):
    """A text line that is not a spectrum."""


class NonNumericValue(LineError):
    """A cell that is not a number (or bytes that are not ASCII)."""


class NonFiniteValue(LineError):
    """A NaN or infinite value in a text spectrum."""


class LineTooLong(LineError):
    """No line end within the maximum line length."""


class DeviceError(StreamError):
    """The device refused a request (NACK or non-zero error number)."""

    def __init__(
        self,
        message: str,
        *,
        error_number: int | None = None,
        error_name: str | None = None,
        message_type: int | None = None,
    ):
        super().__init__(message)
        self.error_number = error_number
        self.error_name = error_name
        self.message_type = message_type


class DeviceChanged(StreamError):
    """After a reconnect, the link leads to another device than the one first opened."""

    def __init__(self, message: str, *, expected: str | None, found: str | None):
        super().__init__(message)
        self.expected = expected
        self.found = found


class ConfigError(StreamError):
    """An option that cannot work (unknown protocol, bad fault spec, bad axis calibration)."""
