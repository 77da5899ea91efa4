"""The fleet view: what each device published (results, health, status), deduplicated and
summed up as one row per device, as a text table or JSON."""

from __future__ import annotations

import json
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

RATE_WINDOW_S = 10.0  # spectra/s over the last seconds of device time
LATENCY_SAMPLES = 1000  # recent total latencies kept per device for p99 without health


class Seen:
    """Which (stream start, n) results arrived: a contiguous high-water mark per stream plus
    the few above it, so memory stays small however long a stream runs."""

    def __init__(self) -> None:
        self._streams: dict[float, tuple[int, set[int]]] = {}

    def add(self, start: float, n: int) -> bool:
        """True the first time a result is seen."""
        below, above = self._streams.get(start, (0, set()))
        if n < below or n in above:
            return False
        above.add(n)
        while below in above:
            above.discard(below)
            below += 1
        self._streams[start] = (below, above)
        return True


@dataclass
class DeviceState:
    device_id: str
    online: bool | None = None
    last_seen: float | None = None  # unix time, this machine's clock
    results: int = 0
    classified: int = 0
    rejected: int = 0
    duplicates: int = 0
    classes: Counter[str] = field(default_factory=Counter)
    model: str | None = None
    health: dict[str, Any] | None = None
    seen: Seen = field(default_factory=Seen)
    times: deque[float] = field(default_factory=deque)  # device times of recent results
    latency: deque[float] = field(default_factory=lambda: deque(maxlen=LATENCY_SAMPLES))

    def spectra_per_s(self) -> float | None:
        if not self.times:
            return None
        span = min(RATE_WINDOW_S, max(self.times[-1] - self.times[0], 1e-3))
        return len(self.times) / span if len(self.times) > 1 else None

    def row(self, now: float) -> dict[str, Any]:
        health = self.health or {}
        p99 = (health.get("latency_ms") or {}).get("p99")
        if p99 is None and self.latency:
            p99 = float(np.percentile(np.asarray(self.latency), 99))
        rate = health.get("spectra_per_s") if self.health else self.spectra_per_s()
        total = self.classified + self.rejected
        return {
            "device": self.device_id,
            "online": self.online,
            "last_seen_s": None if self.last_seen is None else round(now - self.last_seen, 1),
            "spectra_per_s": None if rate is None else round(rate, 1),
            "results": self.results,
            "classes": dict(sorted(self.classes.items())),
            "accept_rate": round(self.classified / total, 4) if total else None,
            "p99_ms": None if p99 is None else round(p99, 3),
            "model": self.model,
            "duplicates": self.duplicates,
        }


class FleetView:
    """Feed it every message under ``PREFIX/+/(results|health|status)``; read :meth:`rows`."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix.rstrip("/") + "/"
        self.devices: dict[str, DeviceState] = {}
        self.malformed = 0

    def handle(self, topic: str, payload: bytes) -> dict[str, Any] | None:
        """Update the view; the result record when ``topic`` carried a result not seen before."""
        if not topic.startswith(self.prefix):
            return None
        parts = topic[len(self.prefix):].split("/")
        if len(parts) != 2 or parts[1] not in ("results", "health", "status"):
            return None
        device_id, leaf = parts
        if leaf == "status":
            if not payload:  # a cleared retained status
                return None
            state = self._device(device_id)
            state.online = payload == b"online"
            state.last_seen = time.time()
            return None
        try:
            message = json.loads(payload)
        except ValueError:
            self.malformed += 1
            return None
        if not isinstance(message, dict):
            self.malformed += 1
            return None
        state = self._device(device_id)
        state.last_seen = time.time()
        if leaf == "health":
            state.health = message
            state.model = (message.get("model") or {}).get("sha256") or state.model
            return None
        return self._result(state, message)

    def _device(self, device_id: str) -> DeviceState:
        if device_id not in self.devices:
            self.devices[device_id] = DeviceState(device_id)
        return self.devices[device_id]

    def _result(self, state: DeviceState, result: dict[str, Any]) -> dict[str, Any] | None:
        start, n = result.get("stream_start"), result.get("n")
        if not isinstance(n, int) or not isinstance(start, (int, float)):
            self.malformed += 1
            return None
        if not state.seen.add(float(start), n):
            state.duplicates += 1
            return None
        state.results += 1
        state.model = result.get("model_sha256") or state.model
        if "class" in result:
            state.classified += 1
            state.classes[str(result["class"])] += 1
            total = (result.get("latency_ms") or {}).get("total")
            if isinstance(total, (int, float)):
                state.latency.append(float(total))
        else:
            state.rejected += 1
        t = result.get("time")
        if isinstance(t, (int, float)):
            state.times.append(float(t))
            while state.times and state.times[0] < state.times[-1] - RATE_WINDOW_S:
                state.times.popleft()
        return result

    def rows(self) -> list[dict[str, Any]]:
        now = time.time()
        return [self.devices[d].row(now) for d in sorted(self.devices)]


COLUMNS = ("device", "online", "last seen", "spectra/s", "results", "accept", "p99 ms", "model",
           "classes")


def render_table(rows: list[dict[str, Any]]) -> str:
    """The rows as an aligned text table."""

    def cells(r: dict[str, Any]) -> list[str]:
        online = {True: "online", False: "OFFLINE", None: "?"}[r["online"]]
        seen = "-" if r["last_seen_s"] is None else f"{r['last_seen_s']:.0f} s ago"
        rate = "-" if r["spectra_per_s"] is None else f"{r['spectra_per_s']:.1f}"
        accept = "-" if r["accept_rate"] is None else f"{100 * r['accept_rate']:.1f} %"
        p99 = "-" if r["p99_ms"] is None else f"{r['p99_ms']:.2f}"
        classes = " ".join(f"{k}:{v}" for k, v in r["classes"].items()) or "-"
        return [r["device"], online, seen, rate, str(r["results"]), accept, p99,
                (r["model"] or "-")[:12], classes]

    table = [list(COLUMNS)] + [cells(r) for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(COLUMNS))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
             for row in table]
    if not rows:
        lines.append("(no device has published yet)")
    return "\n".join(lines)
