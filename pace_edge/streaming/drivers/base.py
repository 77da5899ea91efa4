"""The interface every spectrometer driver offers, and the frame it delivers."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections import Counter
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from ..errors import DeviceChanged, StreamError, TransportClosed, TransportError
from ..transport import DEFAULT_BAUD, Deadline, Transport, wire_seconds

GAP_BYTES = 64  # the silence limit is never shorter than this many byte times


@dataclass(frozen=True)
class ReplyTiming:
    """When a reply is due: first byte within ``first_byte_s`` of the request, then no
    silence over ``gap_s``, and all of it within ``total_s``.

    Built by :meth:`Spectrometer.reply_timing` from the link (baud rate, request and reply
    sizes), the device's work (integration time × scans) and the slack (``--timeout``).
    """

    first_byte_s: float
    gap_s: float
    total_s: float
    explain: str = ""

    def clock(self) -> ReplyClock:
        return ReplyClock(self)


class ReplyClock:
    """The deadlines of one reply: :meth:`deadline` before each read, :meth:`got` after."""

    def __init__(self, timing: ReplyTiming):
        self.timing = timing
        self._total = Deadline(timing.total_s)
        self._first = Deadline(timing.first_byte_s)
        self.received = 0
        self._last: float | None = None

    def deadline(self) -> Deadline:
        """First byte: the first-byte deadline; afterwards the silence limit (both capped by
        the total)."""
        total = self._total.end
        assert total is not None
        if self._last is None:
            end = self._first.end
            assert end is not None
        else:
            end = self._last + self.timing.gap_s
        return Deadline.at(min(end, total))

    def got(self, nbytes: int) -> None:
        self.received += nbytes
        self._last = time.monotonic()

    def describe(self) -> str:
        """Which limit passed, for the error message."""
        t = self.timing
        if self._last is None:
            return f"no reply within {t.first_byte_s:.3g} s ({t.explain})"
        if self._total.expired():
            return f"reply not complete within {t.total_s:.3g} s ({self.received} bytes)"
        return f"line silent for {t.gap_s:.3g} s after {self.received} bytes"


@dataclass(frozen=True)
class RawFrame:
    """One spectrum as read from the device, before any axis or dark handling.

    ``counts``: float64 per pixel in device order; ``sequence``: 0, 1, 2, ... per driver;
    ``timestamp_ns``: :func:`time.monotonic_ns` when the frame was complete; ``nbytes``: bytes
    the frame took on the wire; ``max_count``: the ADC full scale when known.
    """

    counts: np.ndarray
    sequence: int
    timestamp_ns: int
    nbytes: int
    max_count: float | None = None

    @property
    def saturated(self) -> bool:
        """True when any pixel sits at the ADC full scale (unknown full scale: False)."""
        return self.max_count is not None and bool((self.counts >= self.max_count).any())


@dataclass
class DriverStats:
    """What a driver has seen: good frames and typed errors by class name."""

    frames: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    bytes_in: int = 0
    reconnects: int = 0


class Spectrometer(ABC):
    """A spectrometer on a serial port or pyserial URL.

    Use as a context manager or call :meth:`open` / :meth:`close`. Every failure is a typed
    :class:`~pace_edge.streaming.errors.StreamError`: protocol errors and device errors leave
    the driver usable (call :meth:`read_spectrum` again); after
    :class:`~pace_edge.streaming.errors.TransportClosed` call :meth:`reconnect`.
    """

    protocol: ClassVar[str]

    def __init__(
        self,
        port: str,
        *,
        baudrate: int = DEFAULT_BAUD,
        timeout: float = 1.0,
        allow_device_change: bool = False,
    ):
        self.port = port
        self.baudrate = baudrate
        self.timeout = float(timeout)  # slack on every reply, and the silence limit
        self.allow_device_change = allow_device_change
        self.stats = DriverStats()
        self.integration_us: int | None = None  # as last set through this driver
        self.scans_to_average = 1  # scans the device sums per reply (device-side averaging)
        self.identity: str | None = None  # of the first device opened (see :meth:`open`)
        self.device_changes: list[tuple[str | None, str | None]] = []
        self._transport: Transport | None = None
        self._opened_once = False
        self._sequence = 0

    # -- lifetime --------------------------------------------------------------------------

    def open(self) -> Spectrometer:
        """Open the port, run the protocol's handshake and check the device's identity.

        The first device opened sets :attr:`identity` (its serial number or identification
        line). A later open (a reconnect) that finds another device raises
        :class:`DeviceChanged` unless ``allow_device_change``; then the change is recorded
        in :attr:`device_changes` and the new identity kept.
        """
        if self._transport is None:
            self._transport = Transport.open(self.port, self.baudrate, self.timeout)
            try:
                self._handshake()
                self._check_identity(self.read_identity())
            except BaseException:
                self.close()
                raise
        return self

    def read_identity(self) -> str | None:
        """What identifies the device on the link now (None: it has no way to say)."""
        return self.serial_number

    def _check_identity(self, found: str | None) -> None:
        if not self._opened_once:
            self.identity = found
            self._opened_once = True
            return
        if found == self.identity:
            return
        if not self.allow_device_change:
            raise DeviceChanged(
                f"{self.port}: another device answered after the reconnect ({self.protocol} "
                f"identity {found!r}, expected {self.identity!r}); refusing it "
                "(--allow-device-change accepts it)",
                expected=self.identity,
                found=found,
            )
        self.device_changes.append((self.identity, found))
        self.identity = found

    # -- timing ----------------------------------------------------------------------------

    def work_seconds(self) -> float:
        """Seconds the device needs before it can answer a spectrum request: integration
        time × scans averaged (0 when the integration time was never set here)."""
        return (self.integration_us or 0) * 1e-6 * max(self.scans_to_average, 1)

    def reply_timing(
        self, request_bytes: int, reply_bytes: int, work_s: float = 0.0
    ) -> ReplyTiming:
        """Deadlines for a reply of about ``reply_bytes`` to a request of ``request_bytes``.

        First byte: the request on the wire + ``work_s`` + slack (:attr:`timeout`). Then
        silence on the line may last at most the slack (never under :data:`GAP_BYTES` byte
        times), and the whole reply gets the first-byte time + twice its wire time + slack.
        """
        slack = self.timeout
        request_s = wire_seconds(request_bytes, self.baudrate)
        reply_s = wire_seconds(reply_bytes, self.baudrate)
        first = request_s + work_s + slack
        gap = max(slack, wire_seconds(GAP_BYTES, self.baudrate))
        explain = (f"request {request_s * 1e3:.0f} ms + device {work_s * 1e3:.0f} ms + slack "
                   f"{slack * 1e3:.0f} ms at {self.baudrate} baud")
        return ReplyTiming(first, gap, first + 2 * reply_s + slack, explain)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    @property
    def is_open(self) -> bool:
        return self._transport is not None

    def reconnect(self, timeout_s: float = 5.0, interval_s: float = 0.05) -> None:
        """Close, then retry :meth:`open` until it succeeds or ``timeout_s`` runs out.

        A different device (:class:`DeviceChanged`) is not retried: it is raised at once.
        """
        self.close()
        end = time.monotonic() + timeout_s
        while True:
            try:
                self.open()
                self.stats.reconnects += 1
                return
            except TransportError:
                if time.monotonic() + interval_s >= end:
                    raise
                time.sleep(interval_s)

    def __enter__(self) -> Spectrometer:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def transport(self) -> Transport:
        if self._transport is None:
            raise TransportClosed(f"{self.port}: not open")
        return self._transport

    # -- device ----------------------------------------------------------------------------

    @property
    def free_running(self) -> bool:
        """True when the device sends spectra unasked (no request per spectrum)."""
        return False

    @property
    @abstractmethod
    def serial_number(self) -> str | None:
        """The device's serial number, when the protocol has one."""

    @property
    @abstractmethod
    def pixels(self) -> int:
        """Pixels per spectrum."""

    @abstractmethod
    def wavelengths(self) -> np.ndarray | None:
        """Wavelength (nm) of each pixel, or None when not calibrated."""

    @abstractmethod
    def set_integration_time_us(self, microseconds: int) -> None:
        """Set the detector integration time."""

    def read_spectrum(self) -> RawFrame:
        """The next spectrum; typed errors are counted in :attr:`stats` and re-raised."""
        try:
            counts, nbytes = self._read_counts()
        except StreamError as exc:
            self.stats.errors[type(exc).__name__] += 1
            raise
        frame = RawFrame(counts, self._sequence, time.monotonic_ns(), nbytes, self.max_count)
        self._sequence += 1
        self.stats.frames += 1
        return frame

    @property
    def max_count(self) -> float | None:
        """ADC full scale in counts, when known."""
        return None

    @abstractmethod
    def _handshake(self) -> None:
        """Protocol set-up right after the port opens (identify, calibrate, sync)."""

    @abstractmethod
    def _read_counts(self) -> tuple[np.ndarray, int]:
        """One spectrum's counts and its size on the wire."""
