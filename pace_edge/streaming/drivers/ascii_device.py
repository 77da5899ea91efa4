"""Driver for micro-spectrometers that print each spectrum as a text line (Arduino style)."""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

import numpy as np

from .. import spectral_axis
from ..errors import ConfigError, ProtocolError, TransportTimeout, TruncatedFrame
from ..protocols.ascii_lines import MAX_LINE, LineFormat, LineSplitter
from ..transport import DEFAULT_BAUD
from .base import Spectrometer


class AsciiSpectrometer(Spectrometer):
    """A line-per-spectrum device, free-running (``query=None``) or polled with ``query``.

    Polled: each read flushes stale input, sends ``query`` and parses the next data line.
    Free-running: the first line after opening (likely cut) is dropped, then lines are read
    as they come. Blank lines and lines starting with ``header_prefix`` are skipped.

    Deadlines: a polled reply's first byte is due within the query's wire time + the
    integration time (when set here, × ``scans_to_average``) + ``timeout``; a free-running
    device's next line within ``frame_period_s`` (if known) + integration + ``timeout``. Once
    a line has started, the line may fall silent for at most ``timeout``.

    ``identify``: a command the device answers with one identification line (e.g. its
    serial number); it is sent on every (re)connect and a different answer than the first
    device's is refused (see :meth:`Spectrometer.open`).
    """

    protocol = "ascii"

    def __init__(
        self,
        port: str,
        *,
        baudrate: int = DEFAULT_BAUD,
        timeout: float = 1.0,
        pixels: int = 288,
        separator: str | None = "auto",
        query: str | None = None,
        command_eol: str = "\n",
        header_prefix: str | None = None,
        wavelength_coefficients: Sequence[float] | None = None,
        integration_command: str | None = None,
        max_count: float | None = None,
        serial_number: str | None = None,
        max_line: int = MAX_LINE,
        identify: str | None = None,
        frame_period_s: float | None = None,
        allow_device_change: bool = False,
    ):
        super().__init__(port, baudrate=baudrate, timeout=timeout,
                         allow_device_change=allow_device_change)
        self.format = LineFormat(pixels, separator)
        self.query = query
        self.command_eol = command_eol
        self.header_prefix = header_prefix.encode() if header_prefix else None
        self.integration_command = integration_command
        self._max_count = max_count
        self._serial = serial_number
        self._wavelengths = (
            None
            if wavelength_coefficients is None
            else spectral_axis.wavelengths_from_coefficients(wavelength_coefficients, pixels)
        )
        self._splitter = LineSplitter(max_line)
        self._pending: deque[bytes | ProtocolError] = deque()
        self._drop_next_line = False
        self.skipped_lines = 0
        self.identify = identify
        self.frame_period_s = frame_period_s
        self._line_bytes = pixels * 6 + 2  # a typical line: up to 5 digits and a separator

    @property
    def free_running(self) -> bool:
        return self.query is None

    def read_identity(self) -> str | None:
        """The answer to ``identify`` (its first non-spectrum line), else the configured
        ``serial_number``."""
        if self.identify is None:
            return self._serial
        t = self.transport
        command = (self.identify + self.command_eol).encode("ascii")
        clock = self.reply_timing(len(command), 64).clock()
        t.write(command)
        lines: deque[bytes | ProtocolError] = deque()
        while True:
            while lines:
                item = lines.popleft()
                if isinstance(item, ProtocolError):
                    continue
                text = item.strip()
                if not text or len(self.format.cells(item)) > max(2, self.pixels // 2):
                    continue
                self._resync()
                return text.decode("ascii", "replace")
            try:
                chunk = t.read_some(clock.deadline())
            except TransportTimeout as exc:
                raise TransportTimeout(
                    f"{self.port}: no answer to the identify command {self.identify!r} "
                    f"({clock.describe()})"
                ) from exc
            clock.got(len(chunk))
            lines.extend(self._splitter.feed(chunk))

    @property
    def serial_number(self) -> str | None:
        return self._serial

    @property
    def pixels(self) -> int:
        return self.format.pixels

    @property
    def max_count(self) -> float | None:
        return self._max_count

    def wavelengths(self) -> np.ndarray | None:
        return None if self._wavelengths is None else self._wavelengths.copy()

    def set_integration_time_us(self, microseconds: int) -> None:
        """Send ``integration_command`` formatted with ``{us}``, ``{ms}`` or ``{s}``."""
        if self.integration_command is None:
            raise ConfigError(
                f"{self.port}: no integration_command configured for this ASCII device"
            )
        if microseconds <= 0:
            raise ConfigError(f"integration time must be positive, got {microseconds} µs")
        us = int(microseconds)
        command = self.integration_command.format(us=us, ms=us / 1e3, s=us / 1e6)
        self.transport.write((command + self.command_eol).encode("ascii"))
        self.integration_us = us

    def _handshake(self) -> None:
        self._resync()
        if self.integration_us is not None and self._opened_once:  # a reconnect: restore it
            self.set_integration_time_us(self.integration_us)

    def _resync(self) -> None:
        self.transport.reset_input()
        self._splitter.reset()
        self._pending.clear()
        self._drop_next_line = self.query is None

    def _read_counts(self) -> tuple[np.ndarray, int]:
        t = self.transport
        work = self.work_seconds()
        if self.query is not None:
            self._resync()
            command = (self.query + self.command_eol).encode("ascii")
            clock = self.reply_timing(len(command), self._line_bytes, work).clock()
            t.write(command)
        else:
            clock = self.reply_timing(0, self._line_bytes, work + (self.frame_period_s or 0.0)
                                      ).clock()
        while True:
            while self._pending:
                item = self._pending.popleft()
                if isinstance(item, ProtocolError):
                    raise item
                if self._skip(item):
                    continue
                return self.format.parse(item), len(item)
            try:
                chunk = t.read_some(clock.deadline())
            except TransportTimeout as exc:
                if self._splitter.pending:
                    cut = self._splitter.pending
                    self._splitter.reset()
                    self._drop_next_line = self.query is None  # its end may still come
                    raise TruncatedFrame(f"line cut after {cut} bytes ({clock.describe()})"
                                         ) from exc
                raise TransportTimeout(f"{self.port}: {clock.describe()}") from exc
            clock.got(len(chunk))
            self.stats.bytes_in += len(chunk)
            self._pending.extend(self._splitter.feed(chunk))

    def _skip(self, line: bytes) -> bool:
        if self._drop_next_line:
            self._drop_next_line = False
            return True
        if not line.strip() or (self.header_prefix and line.startswith(self.header_prefix)):
            self.skipped_lines += 1
            return True
        return False
