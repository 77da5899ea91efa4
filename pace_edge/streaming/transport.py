"""Bytes over any pyserial port or URL, with deadlines and typed errors.

:meth:`Transport.open` accepts whatever :func:`serial.serial_for_url` does: a device path
(``/dev/ttyUSB0``, ``COM3``, an emulator's pty link) or a URL (``socket://host:port``,
``rfc2217://...``). Defaults are 8N1 without flow control.

Reads honour a :class:`Deadline` (pyserial's ``Timeout`` idea: a monotonic target with
``time_left()``). A port with a file descriptor is waited on with ``select`` for the time left;
other ports (``loop://``, ``socket://``) are polled in short slices. A deadline only counts as
missed when, after it passed, nothing is waiting in the port's buffer: a reader that was simply
late (a busy CPU, the GIL held by inference) still gets bytes the device sent in time.
Running out of time raises :class:`TransportTimeout`, a vanished port :class:`TransportClosed`.

:func:`wire_seconds` gives a UART's time for ``n`` bytes (start bit, data bits, parity, stop
bits: 10 bit times a byte for 8N1); drivers build their reply deadlines from it.
"""

from __future__ import annotations

import errno
import os
import select
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

POLL_S = 0.02  # read slice for ports without a file descriptor
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


def wire_seconds(nbytes: int, baudrate: int, bits_per_byte: float = 10.0) -> float:
    """Seconds a UART at ``baudrate`` takes to send ``nbytes`` (8N1: 10 bits a byte)."""
    return nbytes * bits_per_byte / float(baudrate)


class Deadline:
    """A point in time (``time.monotonic()``) to wait until; ``None`` seconds waits forever.

    ``Deadline(0)`` never blocks. Pass one object down through a whole exchange so that every
    wait inside it draws on the same budget.
    """

    __slots__ = ("end",)

    def __init__(self, seconds: float | None):
        self.end = None if seconds is None else time.monotonic() + max(float(seconds), 0.0)

    @classmethod
    def at(cls, end: float | None) -> Deadline:
        """A deadline at the absolute monotonic time ``end``."""
        d = cls(None)
        d.end = end
        return d

    def time_left(self) -> float | None:
        """Seconds left (0 once expired), or None for no limit."""
        return None if self.end is None else max(self.end - time.monotonic(), 0.0)

    def expired(self) -> bool:
        return self.end is not None and time.monotonic() >= self.end

    def __repr__(self) -> str:
        return f"Deadline(time_left={self.time_left()})"


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

    def deadline(self, timeout: float | None = None) -> Deadline:
        """A :class:`Deadline` ``timeout`` seconds (default: this transport's) from now."""
        return Deadline(self.timeout if timeout is None else timeout)

    def read_some(self, deadline: Deadline | None = None, max_bytes: int = 1 << 16) -> bytes:
        """At least one byte (whatever is waiting, up to ``max_bytes``), or TransportTimeout.

        Waits until ``deadline`` (default: this transport's timeout from now). Expiry is only
        declared after a last look finds the port's buffer empty.
        """
        end = self.deadline() if deadline is None else deadline
        while True:
            if self._pending:
                data = bytes(self._pending[:max_bytes])
                del self._pending[:max_bytes]
                return data
            data = self._take(max_bytes)
            if data:
                return data
            left = end.time_left()
            if left == 0.0:
                data = self._take(max_bytes)  # we may have been late, not the device
                if data:
                    return data
                raise TransportTimeout(f"{self.name}: no data within the timeout")
            if self._wait(left):
                data = self._take(max_bytes)
                if data:
                    return data
                with self._guard("read"):  # readable yet empty: a hang-up raises here
                    data = self.port.read(1)
                if data:
                    return bytes(data)

    def _take(self, max_bytes: int) -> bytes:
        """Whatever the port holds now, without blocking (at most ``max_bytes``)."""
        with self._guard("read"):
            waiting = self.port.in_waiting
            if not waiting:
                return b""
            return bytes(self.port.read(min(waiting, max_bytes)))

    def _wait(self, seconds: float | None) -> bool:
        """Block until the port is readable or ``seconds`` pass; True when readable.

        Ports without a file descriptor block in a one-byte read for their own timeout
        (:data:`POLL_S`) and keep what it returns.
        """
        fd = self._fd
        if fd is None:
            with self._guard("read"):
                data = self.port.read(1)
            if data:
                self._pending += data
            return False
        try:
            readable, _, _ = select.select([fd], [], [], seconds)
        except (OSError, ValueError) as exc:  # closed underneath us
            raise TransportClosed(f"{self.name}: read failed: {exc}") from exc
        return bool(readable)

    @property
    def _fd(self) -> int | None:
        fileno = getattr(self.port, "fileno", None)
        if fileno is None:
            return None
        try:
            fd = fileno()
        except Exception:  # noqa: BLE001 - URL handlers raise their own "not supported"
            return None
        return fd if isinstance(fd, int) and fd >= 0 else None

    def read_exact(self, n: int, deadline: Deadline | None = None) -> bytes:
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
        self, terminator: bytes = b"\n", deadline: Deadline | None = None,
        max_bytes: int = 1 << 16
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
