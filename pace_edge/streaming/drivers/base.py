"""The interface every spectrometer driver offers, and the frame it delivers."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections import Counter
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from ..errors import StreamError, TransportClosed, TransportError
from ..transport import DEFAULT_BAUD, Transport


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

    def __init__(self, port: str, *, baudrate: int = DEFAULT_BAUD, timeout: float = 1.0):
        self.port = port
        self.baudrate = baudrate
        self.timeout = float(timeout)
        self.stats = DriverStats()
        self._transport: Transport | None = None
        self._sequence = 0

    # -- lifetime --------------------------------------------------------------------------

    def open(self) -> Spectrometer:
        """Open the port and run the protocol's handshake."""
        if self._transport is None:
            self._transport = Transport.open(self.port, self.baudrate, self.timeout)
            try:
                self._handshake()
            except BaseException:
                self.close()
                raise
        return self

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    @property
    def is_open(self) -> bool:
        return self._transport is not None

    def reconnect(self, timeout_s: float = 5.0, interval_s: float = 0.05) -> None:
        """Close, then retry :meth:`open` until it succeeds or ``timeout_s`` runs out."""
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
