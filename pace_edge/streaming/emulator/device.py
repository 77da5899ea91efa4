"""Device state shared by the emulated protocols: counts, integration time, faults, stats."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from .faults import FaultDraw
from .sources import SpectrumSource


@dataclass(frozen=True)
class Send:
    """Write ``data``; ``frame`` marks a spectrum (paced by the emulator's ``rate``)."""

    data: bytes
    frame: bool = False


@dataclass(frozen=True)
class Silence:
    """Free-running: send nothing for ``seconds``."""

    seconds: float


@dataclass(frozen=True)
class Disconnect:
    """Drop the pty pair and bring up a new one behind the same path."""


@dataclass(frozen=True)
class Acquire:
    """A requested spectrum: ``render()`` reads the detector out and gives the actions that
    deliver it (a frame :class:`Send`, a :class:`Disconnect`, or nothing for a stall).

    A paced emulator renders it just before the frame's slot, as a spectrometer reads out
    at the end of its exposure, so the rendering work does not land while the client is
    still busy with the previous frame.
    """

    render: Callable[[], list[Action]]


Action = Send | Silence | Disconnect | Acquire


@dataclass
class EmulatorStats:
    """What the emulator served. ``frames == good + sum(faults.values())`` always holds."""

    frames: int = 0  # spectrum frames produced (answered requests or free-running ticks)
    good: int = 0  # frames sent without a fault
    faults: Counter[str] = field(default_factory=Counter)  # frames per fault kind
    requests: int = 0  # commands / request messages received
    bad_requests: int = 0  # corrupt or unknown requests
    bytes_sent: int = 0
    garbage_bytes: int = 0  # noise bytes written by the 'garbage' fault
    dropped_bytes: int = 0  # bytes the client never took (pty full or gone)
    disconnects: int = 0  # links dropped (faults and manual)
    silent: int = 0  # free-running 'stall' frames: the device said nothing (not served)
    lost: int = 0  # frames of which not one byte reached the client (pty full: an overrun)
    labels: Counter[int] = field(default_factory=Counter)  # class labels of frames produced

    @property
    def accounted(self) -> bool:
        return self.frames == self.good + sum(self.faults.values())

    @property
    def served(self) -> int:
        """Spectrum outcomes the client can see: every answered (or stalled, or dropped)
        request, every free-running line that went out and every free-running disconnect.
        A client that reads every one of them counts exactly this many frames received."""
        return self.frames - self.silent - self.lost

    def copy(self) -> EmulatorStats:
        return replace(self, faults=Counter(self.faults), labels=Counter(self.labels))

    def summary(self) -> str:
        faults = ", ".join(f"{k} {v}" for k, v in sorted(self.faults.items()) if v) or "none"
        return (
            f"{self.served} frames served ({self.frames} produced, {self.good} good; faults: "
            f"{faults}; {self.lost} lost to a full buffer), {self.requests} requests, "
            f"{self.bytes_sent} bytes, {self.disconnects} disconnects"
        )


@dataclass(frozen=True)
class Frame:
    fault: str | None
    counts: np.ndarray  # rounded, clipped counts (other length / NaN for those faults)
    label: int


class DeviceState:
    """Integration time, ADC and fault drawing for one emulated spectrometer."""

    def __init__(
        self,
        source: SpectrumSource,
        *,
        pixels: int,
        bits: int,
        faults: FaultDraw,
        rng: np.random.Generator,
        integration_us: int = 100_000,
        integration_range_us: tuple[int, int] = (10, 85_000_000),
    ):
        self.source = source
        self.pixels = pixels
        self.full_scale = float(2**bits - 1)
        self.faults = faults
        self.rng = rng  # fault details (positions, lengths, noise bytes)
        self.reference_us = integration_us
        self.integration_us = integration_us
        self.integration_range_us = integration_range_us
        self.stats = EmulatorStats()
        self.lock = threading.Lock()
        self.last_label: int | None = None

    def reset(self) -> None:
        self.integration_us = self.reference_us

    def count(self, **increments: int) -> None:
        with self.lock:
            for name, n in increments.items():
                setattr(self.stats, name, getattr(self.stats, name) + n)

    def next_frame(self) -> Frame:
        """Draw this frame's fault and render its counts."""
        fault = self.faults.draw()
        signal, label = self.source.next()
        k = self.integration_us / self.reference_us
        dark = self.source.dark
        counts = np.clip(np.rint(dark + (np.asarray(signal) - dark) * k), 0.0, self.full_scale)
        if counts.size != self.pixels:
            counts = np.resize(counts, self.pixels)
        if fault == "saturate":
            counts[:] = self.full_scale
        elif fault == "pixels":
            counts = self._other_length(counts)
        elif fault == "nan":
            counts[self.rng.choice(counts.size, int(self.rng.integers(1, 4)), replace=False)] = (
                np.nan
            )
        with self.lock:
            self.stats.frames += 1
            if fault is None:
                self.stats.good += 1
            else:
                self.stats.faults[fault] += 1
            self.stats.labels[label] += 1
        self.last_label = label
        return Frame(fault, counts, label)

    def _other_length(self, counts: np.ndarray) -> np.ndarray:
        delta = int(self.rng.integers(1, 17)) * (1 if self.rng.random() < 0.5 else -1)
        n = self.pixels + delta
        if n < 1:
            n = self.pixels + abs(delta)
        if n <= counts.size:
            return counts[:n].copy()
        return np.concatenate([counts, np.full(n - counts.size, counts[-1])])

    def noise_bytes(self, n_max: int, exclude: bytes = b"") -> bytes:
        """1..``n_max`` random bytes, none of them in ``exclude``."""
        n = int(self.rng.integers(1, n_max + 1))
        allowed = np.setdiff1d(np.arange(256, dtype=np.uint8), np.frombuffer(exclude, np.uint8))
        return self.rng.choice(allowed, n).astype(np.uint8).tobytes()
