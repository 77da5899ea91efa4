"""Bytes over any pyserial port or URL, with deadlines and typed errors.

:meth:`Transport.open` accepts whatever :func:`serial.serial_for_url` does: a device path
(``/dev/ttyUSB0``, ``COM3``, an emulator's pty link) or a URL (``socket://host:port``,
``rfc2217://...``). Defaults are 8N1 without flow control. Reads poll the port in short slices
so that every call honours an absolute deadline (``time.monotonic()`` seconds); running out of
time raises :class:`TransportTimeout`, a vanished port raises :class:`TransportClosed`.
"""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import serial

from .errors import ConfigError, TransportClosed, TransportTimeout

try:
    import termios

    _TERMIOS_ERRORS: tuple[type[Exception], ...] = (termios.error,)
except ImportError:  # Windows
    _TERMIOS_ERRORS = ()

# what a vanished or broken port raises (termios.error is not an OSError)
LINK_ERRORS: tuple[type[Exception], ...] = (serial.SerialException, OSError, *_TERMIOS_ERRORS)

POLL_S = 0.02  # read slice: deadlines are honoured to about this much
DEFAULT_BAUD = 115200  # line-oriented micro-spectrometers (Arduino sketches)
OBP_DEFAULT_BAUD = 9600  # Ocean STS and other OBP devices over RS-232


def open_error(url: str, exc: BaseException) -> str:
    """One line saying why ``url`` could not be opened (pyserial repeats the path), with a
    hint for the usual causes."""
    code = getattr(exc, "errno", None)
    if code in (errno.EACCES, errno.EPERM):
        return (f"cannot open {url}: permission denied; add your user to the dialout group "
                "(sudo usermod -aG dialout $USER, then log in again) or check the device's "
                "permissions")
    if code == errno.ENOENT:
        return (f"cannot open {url}: no such port; is the device connected? (list ports with "
                "python -m serial.tools.list_ports)")
    if code == errno.EBUSY:
        return f"cannot open {url}: the port is busy (another program has it open)"
    if isinstance(code, int) and code > 0:
        return f"cannot open {url}: {os.strerror(code)}"
    return f"cannot open {url}: {' '.join(str(exc).split())}"


class Transport:
    """A byte link with deadline-based reads. Wraps an open pyserial port object."""

    def __init__(self, port: serial.SerialBase, timeout: float = 1.0, name: str | None = None):
        self.port = port
        self.timeout = float(timeout)
        self.name = name or str(getattr(port, "port", None) or port)
        self._pending = bytearray()  # bytes read from the port but not handed out yet

    @classmethod
    def open(
        cls,
        url: str,
        baudrate: int = DEFAULT_BAUD,
        timeout: float = 1.0,
        *,
        bytesize: int = serial.EIGHTBITS,
        parity: str = serial.PARITY_NONE,
        stopbits: float = serial.STOPBITS_ONE,
        xonxoff: bool = False,
        rtscts: bool = False,
        dsrdtr: bool = False,
        **options: Any,
    ) -> Transport:
        """Open ``url`` (a port name or pyserial URL); ``timeout`` is the default per call."""
        if timeout <= 0:
            raise ConfigError(f"timeout must be positive, got {timeout}")
        try:
            port = serial.serial_for_url(
                url,
                baudrate=baudrate,
                bytesize=bytesize,
                parity=parity,
                stopbits=stopbits,
                xonxoff=xonxoff,
                rtscts=rtscts,
                dsrdtr=dsrdtr,
                timeout=min(POLL_S, timeout),
                write_timeout=timeout,
                **options,
            )
        except ValueError as exc:  # unknown URL scheme, bad baud rate / framing
            raise ConfigError(f"cannot open {url}: {exc}") from exc
        except LINK_ERRORS as exc:
            raise TransportClosed(open_error(url, exc)) from exc
        return cls(port, timeout, name=url)

    # -- reading ---------------------------------------------------------------------------

    def deadline(self, timeout: float | None = None) -> float:
        """An absolute deadline ``timeout`` seconds (default: this transport's) from now."""
        return time.monotonic() + (self.timeout if timeout is None else timeout)

    def read_some(self, deadline: float | None = None, max_bytes: int = 1 << 16) -> bytes:
        """At least one byte (whatever is waiting, up to ``max_bytes``), or TransportTimeout."""
        if self._pending:
            data = bytes(self._pending[:max_bytes])
            del self._pending[:max_bytes]
            return data
        end = self.deadline() if deadline is None else deadline
        while True:
            with self._guard("read"):
                waiting = self.port.in_waiting
                data = self.port.read(min(max(waiting, 1), max_bytes))
                if data and len(data) < max_bytes:
                    more = self.port.in_waiting
                    if more:
                        data += self.port.read(min(more, max_bytes - len(data)))
            if data:
                return data
            if time.monotonic() >= end:
                raise TransportTimeout(f"{self.name}: no data within the timeout")

    def read_exact(self, n: int, deadline: float | None = None) -> bytes:
        """Exactly ``n`` bytes; TransportTimeout if they do not all arrive by ``deadline``."""
        end = self.deadline() if deadline is None else deadline
        buf = bytearray()
        while len(buf) < n:
            try:
                buf += self.read_some(end, n - len(buf))
            except TransportTimeout:
                self._pending[:0] = buf  # keep what arrived for the next call
                raise TransportTimeout(
                    f"{self.name}: got {len(buf)} of {n} bytes within the timeout"
                ) from None
        return bytes(buf)

    def read_until(
        self, terminator: bytes = b"\n", deadline: float | None = None, max_bytes: int = 1 << 16
    ) -> bytes:
        """Bytes up to and including ``terminator``, or the first ``max_bytes`` if none came."""
        end = self.deadline() if deadline is None else deadline
        buf = bytearray()
        while True:
            i = buf.find(terminator)
            if i >= 0 or len(buf) >= max_bytes:
                stop = i + len(terminator) if i >= 0 else max_bytes
                self._pending[:0] = buf[stop:]
                return bytes(buf[:stop])
            try:
                buf += self.read_some(end)
            except TransportTimeout:
                self._pending[:0] = buf
                raise TransportTimeout(
                    f"{self.name}: no {terminator!r} within the timeout ({len(buf)} bytes)"
                ) from None

    def unread(self, data: bytes) -> None:
        """Push ``data`` back so the next read returns it first."""
        self._pending[:0] = data

    def reset_input(self) -> None:
        """Drop everything received so far (buffered here and in the OS)."""
        self._pending.clear()
        with self._guard("flush"):
            self.port.reset_input_buffer()

    # -- writing / lifetime ---------------------------------------------------------------

    def write(self, data: bytes) -> None:
        """Send all of ``data``; TransportTimeout if the link does not take it in time."""
        with self._guard("write"):
            self.port.write(data)

    @property
    def is_open(self) -> bool:
        return bool(self.port.is_open)

    def close(self) -> None:
        """Close the port (idempotent; errors on the way out are ignored)."""
        try:
            self.port.close()
        except LINK_ERRORS:
            pass

    def __enter__(self) -> Transport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _guard(self, what: str) -> Iterator[None]:
        try:
            yield
        except serial.SerialTimeoutException as exc:
            raise TransportTimeout(f"{self.name}: {what} timed out") from exc
        except LINK_ERRORS as exc:
            raise TransportClosed(f"{self.name}: {what} failed: {exc}") from exc
