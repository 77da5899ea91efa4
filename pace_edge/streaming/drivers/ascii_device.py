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
    ):
        super().__init__(port, baudrate=baudrate, timeout=timeout)
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

    def _handshake(self) -> None:
        self._resync()

    def _resync(self) -> None:
        self.transport.reset_input()
        self._splitter.reset()
        self._pending.clear()
        self._drop_next_line = self.query is None

    def _read_counts(self) -> tuple[np.ndarray, int]:
        t = self.transport
        if self.query is not None:
            self._resync()
            t.write((self.query + self.command_eol).encode("ascii"))
        deadline = t.deadline()
        while True:
            while self._pending:
                item = self._pending.popleft()
                if isinstance(item, ProtocolError):
                    raise item
                if self._skip(item):
                    continue
                return self.format.parse(item), len(item)
            try:
                chunk = t.read_some(deadline)
            except TransportTimeout as exc:
                if self._splitter.pending:
                    cut = self._splitter.pending
                    self._splitter.reset()
                    self._drop_next_line = self.query is None  # its end may still come
                    raise TruncatedFrame(f"line cut after {cut} bytes") from exc
                raise
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
