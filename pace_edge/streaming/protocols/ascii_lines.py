"""Spectra as text lines, the way Arduino-driven micro-spectrometers print them.

Typical devices: Hamamatsu C12880MA (288 pixels) or C12666MA (256) behind an Arduino at 115200
or 9600 baud, printing one spectrum per line, ``"812,790,805,...,777,\\r\\n"`` (note the
trailing comma), either free-running or in answer to a query command such as ``SPEC.READ?``.

Pure text handling, no I/O: :class:`LineSplitter` cuts a byte stream into lines,
:class:`LineFormat` parses a line into a float array (or raises a typed :class:`LineError` /
:class:`PixelCountError`) and formats one for the emulator. Separators: comma, tab, space,
semicolon, or ``auto``; integers or floats; CRLF or LF; a trailing separator is fine.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from ..errors import (
    ConfigError,
    LineTooLong,
    NonFiniteValue,
    NonNumericValue,
    PixelCountError,
    ProtocolError,
)

SEPARATORS = {"comma": ",", "tab": "\t", "space": " ", "semicolon": ";", "auto": None}
MAX_LINE = 1 << 16
_SPACES = re.compile(rb"[ \t]+")


def separator_of(name_or_char: str | None) -> str | None:
    """``","``, ``"\\t"``, ``" "``, ``";"`` or None (auto) from a name or the character itself."""
    if name_or_char is None:
        return None
    if name_or_char in SEPARATORS:
        return SEPARATORS[name_or_char]
    if name_or_char in SEPARATORS.values():
        return name_or_char
    raise ConfigError(
        f"unknown separator {name_or_char!r}; choose comma, tab, space, semicolon or auto"
    )


@dataclass(frozen=True)
class LineFormat:
    """How a device prints a spectrum: ``pixels`` values per line, split by ``separator``.

    ``separator`` is ``","``, ``"\\t"``, ``" "``, ``";"`` or None to detect it per line
    (semicolon, else comma, else tab, else runs of blanks). Space and tab separators also
    accept runs of blanks.
    """

    pixels: int
    separator: str | None = ","
    trailing_separator: bool = True  # only used when formatting
    eol: bytes = b"\r\n"  # only used when formatting
    decimals: int | None = None  # None: print integers

    def __post_init__(self) -> None:
        if self.pixels < 1:
            raise ConfigError(f"pixel count must be positive, got {self.pixels}")
        object.__setattr__(self, "separator", separator_of(self.separator))

    def cells(self, line: bytes) -> list[bytes]:
        """The value cells of ``line`` (line end and one trailing separator removed)."""
        text = line.rstrip(b"\r\n")
        sep = self.separator
        if sep is None:
            sep = next((s for s in (";", ",", "\t") if s.encode() in text), " ")
        if sep in (" ", "\t"):
            cells = _SPACES.split(text.strip(b" \t"))
            return [] if cells == [b""] else cells
        cells = text.split(sep.encode())
        if len(cells) > 1 and cells[-1].strip(b" \t") == b"":
            cells.pop()  # trailing separator
        return [] if cells == [b""] else cells

    def parse(self, line: bytes) -> np.ndarray:
        """The spectrum in ``line`` as float64, or a typed :class:`ProtocolError`.

        Checks run in a fixed order: non-numeric cell (including non-ASCII bytes), wrong pixel
        count, then NaN/inf.
        """
        cells = self.cells(line)
        values = np.empty(len(cells), dtype=np.float64)
        for i, cell in enumerate(cells):
            values[i] = _number(cell, i)
        if values.size != self.pixels:
            raise PixelCountError(
                f"line has {values.size} values, expected {self.pixels}",
                expected=self.pixels,
                got=int(values.size),
            )
        bad = ~np.isfinite(values)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise NonFiniteValue(f"non-finite value {values[i]} at pixel {i}")
        return values

    def format(self, values: np.ndarray | list[float]) -> bytes:
        """``values`` as one device line (any length: the emulator also sends wrong ones)."""
        if self.decimals is None:
            cells = [str(int(v)) if math.isfinite(v) else str(v) for v in np.asarray(values)]
        else:
            cells = [f"{v:.{self.decimals}f}" for v in np.asarray(values, dtype=np.float64)]
        sep = self.separator or ","
        text = sep.join(cells) + (sep if self.trailing_separator else "")
        return text.encode("ascii") + self.eol


def _number(cell: bytes, index: int) -> float:
    try:
        text = cell.decode("ascii").strip()
        if not text or "_" in text:
            raise ValueError
        return float(text)
    except (UnicodeDecodeError, ValueError):
        shown = cell[:20].decode("ascii", "backslashreplace")
        raise NonNumericValue(f"value {index} is not a number: {shown!r}") from None


class LineSplitter:
    """Cuts a byte stream into lines ending in ``\\n`` (a preceding ``\\r`` is kept).

    :meth:`feed` returns complete lines and, for a line longer than ``max_line`` bytes, a
    :class:`LineTooLong` error (the rest of that line is discarded).
    """

    def __init__(self, max_line: int = MAX_LINE):
        self.max_line = max_line
        self._buf = bytearray()
        self._discarding = False

    @property
    def pending(self) -> int:
        return len(self._buf)

    def reset(self) -> None:
        self._buf.clear()
        self._discarding = False

    def feed(self, data: bytes) -> list[bytes | ProtocolError]:
        out: list[bytes | ProtocolError] = []
        self._buf += data
        while True:
            i = self._buf.find(b"\n")
            if i < 0:
                if len(self._buf) > self.max_line:
                    if not self._discarding:
                        out.append(LineTooLong(f"no line end within {self.max_line} bytes"))
                    self._discarding = True
                    self._buf.clear()
                return out
            line = bytes(self._buf[: i + 1])
            del self._buf[: i + 1]
            if self._discarding:
                self._discarding = False
            elif len(line) > self.max_line:
                out.append(LineTooLong(f"line of {len(line)} bytes exceeds {self.max_line}"))
            else:
                out.append(line)
