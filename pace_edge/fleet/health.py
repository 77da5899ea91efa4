"""What a streaming device reports about itself: counts, rates and latency over the last
interval, plus who it is (serial, model, preprocessing, backend)."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np


class StatsLike(Protocol):
    """The parts of :class:`~pace_edge.streaming.pipeline.StreamStats` health reads."""

    received: int
    classified: int
    frames_classified: int
    reconnects: int
    rejected: Any  # Counter[str]
    latency: dict[str, list[float]]


def model_sha256(model_dir: str | Path) -> str | None:
    """sha256 of what identifies a model: an export's ``manifest.json`` (it lists every file's
    sha256) or a bundle's ``model.json`` (it records the weights' sha256)."""
    root = Path(model_dir)
    for name in ("manifest.json", "model.json"):
        path = root / name
        if path.is_file():
            return hashlib.sha256(path.read_bytes()).hexdigest()
    return None


@dataclass(frozen=True)
class DeviceIdentity:
    """Who is streaming: fixed for the life of a stream."""

    device_id: str
    serial: str | None
    model: str
    model_sha256: str | None
    preprocessing: list[dict[str, Any]]
    backend: str
    precision: str
    stream_start: float  # unix time; with device_id and n it keys every result

    def stamp(self) -> dict[str, Any]:
        """The fields added to each published result."""
        return {"device_id": self.device_id, "model_sha256": self.model_sha256,
                "stream_start": self.stream_start}


class HealthReporter:
    """Builds health messages from live stream stats; rates and latency cover the time since
    the previous message (totals are since the stream started)."""

    def __init__(self, identity: DeviceIdentity, stats: StatsLike) -> None:
        self.identity = identity
        self.stats = stats
        self._started = time.monotonic()
        self._last_t = self._started
        self._last_classified = 0
        self._last_received = 0
        self._last_frames = 0
        self._latency_index = 0

    def report(self, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        s = self.stats
        now = time.monotonic()
        received, classified, frames = s.received, s.classified, s.frames_classified
        rejected = dict(sorted(s.rejected.items()))
        totals = s.latency["total"]
        window = totals[self._latency_index:len(totals)]  # appended by the stream thread
        self._latency_index += len(window)
        dt = max(now - self._last_t, 1e-9)
        d_received = received - self._last_received
        d_frames = frames - self._last_frames
        spectra_per_s = (classified - self._last_classified) / dt
        self._last_t, self._last_classified = now, classified
        self._last_received, self._last_frames = received, frames
        latency: dict[str, float] = {}
        if window:
            a = np.asarray(window)
            latency = {"p50": round(float(np.percentile(a, 50)), 4),
                       "p99": round(float(np.percentile(a, 99)), 4)}
        ident = self.identity
        report = {
            "time": time.time(),
            "device_id": ident.device_id,
            "serial": ident.serial,
            "uptime_s": round(now - self._started, 3),
            "stream_start": ident.stream_start,
            "frames": {"received": received, "classified": frames, "spectra": classified,
                       "rejected": rejected, "rejected_total": sum(rejected.values())},
            "reconnects": s.reconnects,
            "interval_s": round(dt, 3),
            "spectra_per_s": round(spectra_per_s, 3),
            "accept_rate": round(d_frames / d_received, 4) if d_received else None,
            "accept_rate_total": round(frames / received, 4) if received else None,
            "saturation_share": round(rejected.get("saturated", 0) / received, 4)
            if received else None,
            "latency_ms": latency,
            "model": {"path": ident.model, "sha256": ident.model_sha256,
                      "preprocessing": ident.preprocessing},
            "backend": ident.backend,
            "precision": ident.precision,
        }
        if extra:
            report.update(extra)
        return report
