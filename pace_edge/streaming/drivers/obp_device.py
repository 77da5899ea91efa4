"""Driver for Ocean Binary Protocol spectrometers (Ocean STS and relatives) on a serial port."""

from __future__ import annotations

import struct

import numpy as np

from .. import spectral_axis
from ..errors import (
    ConfigError,
    DeviceError,
    FrameError,
    PixelCountError,
    ProtocolError,
    TransportTimeout,
    TruncatedFrame,
)
from ..protocols import obp
from ..transport import OBP_DEFAULT_BAUD
from .base import Spectrometer

CHECKSUMS = {"none": obp.CHECKSUM_NONE, "md5": obp.CHECKSUM_MD5}


class ObpSpectrometer(Spectrometer):
    """An OBP device: identify and read its wavelength calibration on open, then spectra.

    Every request carries a fresh ``regarding`` number; replies with another number (late
    answers to earlier requests) are dropped, so a slow reply cannot be mistaken for the next.

    Reply deadlines follow from the link (see :meth:`Spectrometer.reply_timing`): a spectrum
    (2 bytes a pixel plus 64 bytes of frame: 2,112 bytes, 2.2 s at 9600 baud for 1024 pixels)
    may start after the integration time set through :meth:`set_integration_time_us` and
    ``timeout`` seconds of slack, and the line may then fall silent for at most ``timeout``.
    """

    protocol = "obp"

    def __init__(
        self,
        port: str,
        *,
        baudrate: int = OBP_DEFAULT_BAUD,
        timeout: float = 1.0,
        pixels: int = 1024,
        bits: int = 14,
        checksum: str = "md5",
        read_calibration: bool = True,
        allow_device_change: bool = False,
    ):
        super().__init__(port, baudrate=baudrate, timeout=timeout,
                         allow_device_change=allow_device_change)
        if checksum not in CHECKSUMS:
            raise ConfigError(f"checksum must be 'md5' or 'none', got {checksum!r}")
        if pixels < 1 or not 1 <= bits <= 32:
            raise ConfigError(f"bad pixels={pixels} / bits={bits}")
        self._pixels = pixels
        self._bits = bits
        self._checksum = CHECKSUMS[checksum]
        self._read_calibration = read_calibration
        self._parser = obp.FrameParser()
        self._regarding = 0
        self._serial: str | None = None
        self._coefficients: list[float] | None = None
        self.stale_replies = 0

    # -- Spectrometer ----------------------------------------------------------------------

    @property
    def serial_number(self) -> str | None:
        return self._serial

    @property
    def pixels(self) -> int:
        return self._pixels

    @property
    def max_count(self) -> float:
        return float(2**self._bits - 1)

    @property
    def coefficients(self) -> list[float] | None:
        """Wavelength polynomial coefficients c₀, c₁, ... read from the device."""
        return None if self._coefficients is None else list(self._coefficients)

    def wavelengths(self) -> np.ndarray | None:
        if not self._coefficients:
            return None
        return spectral_axis.wavelengths_from_coefficients(self._coefficients, self._pixels)

    def set_integration_time_us(self, microseconds: int) -> None:
        if not 0 < int(microseconds) <= 0xFFFFFFFF:
            raise ConfigError(f"integration time must be 1..2³²-1 µs, got {microseconds}")
        self.request(obp.MSG_SET_INTEGRATION_TIME, struct.pack("<I", int(microseconds)), ack=True)
        self.integration_us = int(microseconds)

    def reset(self) -> None:
        """Ask the device to reset (acknowledged)."""
        self.request(obp.MSG_RESET, ack=True)

    def _handshake(self) -> None:
        self._parser.reset()
        if self.integration_us is not None and self._opened_once:  # a reconnect: restore it
            self.request(obp.MSG_SET_INTEGRATION_TIME, struct.pack("<I", self.integration_us),
                         ack=True)
        self._serial = self.read_serial_number()
        if self._read_calibration:
            try:
                self._coefficients = self.read_coefficients()
            except DeviceError:
                self._coefficients = None

    @property
    def spectrum_reply_bytes(self) -> int:
        """Bytes on the wire of one spectrum reply at the configured pixel count."""
        size = 2 * self._pixels
        return obp.MIN_FRAME + (size if size > obp.IMMEDIATE_SIZE else 0)

    def _read_counts(self) -> tuple[np.ndarray, int]:
        reply = self.request(obp.MSG_GET_RAW_SPECTRUM, reply_bytes=self.spectrum_reply_bytes,
                             work_s=self.work_seconds())
        data = reply.data
        if len(data) != 2 * self._pixels:
            raise PixelCountError(
                f"spectrum of {len(data)} bytes, expected {2 * self._pixels} "
                f"({self._pixels} pixels)",
                expected=self._pixels,
                got=len(data) // 2,
            )
        counts = np.frombuffer(data, dtype="<u2").astype(np.float64)
        return counts, obp.MIN_FRAME + len(reply.payload)

    # -- OBP requests ----------------------------------------------------------------------

    def read_serial_number(self) -> str:
        data = self.request(obp.MSG_GET_SERIAL).data
        return data.split(b"\0", 1)[0].decode("ascii", "replace")

    def read_coefficients(self) -> list[float]:
        count = self.request(obp.MSG_GET_WL_COEFF_COUNT).data
        if not count:
            raise FrameError("empty reply to 'get wavelength coefficient count'")
        coefficients = []
        for i in range(count[0]):
            data = self.request(obp.MSG_GET_WL_COEFF, bytes([i])).data
            if len(data) < 4:
                raise FrameError(f"coefficient {i}: reply of {len(data)} bytes, expected 4")
            coefficients.append(float(struct.unpack_from("<f", data)[0]))
        return coefficients

    def request(
        self,
        message_type: int,
        data: bytes = b"",
        *,
        ack: bool = False,
        reply_bytes: int = obp.MIN_FRAME,
        work_s: float = 0.0,
    ) -> obp.Message:
        """Send one request and return its reply (an ACK for ``ack=True`` set-commands).

        ``reply_bytes`` (expected size) and ``work_s`` (device time before it answers) set
        the deadlines. Raises DeviceError for a NACK, ProtocolError for a corrupt reply,
        TransportTimeout when nothing answers, TruncatedFrame when a reply started but the
        line then fell silent.
        """
        t = self.transport
        self._regarding = self._regarding % 0xFFFFFFFF + 1
        rid = self._regarding
        msg = obp.Message.with_data(
            message_type,
            data,
            flags=obp.FLAG_ACK_REQUESTED if ack else 0,
            regarding=rid,
            checksum_type=self._checksum,
        )
        wire = obp.encode(msg)
        clock = self.reply_timing(len(wire), reply_bytes, work_s).clock()
        t.write(wire)
        while True:
            try:
                chunk = t.read_some(clock.deadline())
            except TransportTimeout as exc:
                items = self._parser.expire()
                reply = self._match(items, message_type, rid)
                if reply is not None:
                    return reply
                truncated = next((e for e in items if isinstance(e, TruncatedFrame)), None)
                if truncated is not None:
                    raise TruncatedFrame(f"{truncated} ({clock.describe()})") from exc
                raise TransportTimeout(f"{self.port}: {clock.describe()}") from exc
            clock.got(len(chunk))
            self.stats.bytes_in += len(chunk)
            items = self._parser.feed(chunk)
            reply = self._match(items, message_type, rid)
            if reply is not None:
                return reply
            error = next((e for e in items if isinstance(e, ProtocolError)), None)
            if error is not None:
                raise error

    def _match(
        self, items: list[obp.Message | ProtocolError], message_type: int, rid: int
    ) -> obp.Message | None:
        for item in items:
            if not isinstance(item, obp.Message) or not item.is_response:
                continue
            if item.regarding != rid or item.message_type != message_type:
                self.stale_replies += 1
                continue
            if item.is_error:
                raise item.device_error()
            return item
        return None
