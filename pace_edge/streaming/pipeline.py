"""The streaming classifier: device frames → axis and dark → preprocessing → runner → JSON lines.

Two schedules. ``threaded`` (the default): a reader thread pulls frames from the driver and
queues every outcome (a frame or a typed error), so the device is drained while inference
runs; the main loop takes what is queued (micro-batching when frames arrive faster than one
inference), classifies, and writes one JSON line per spectrum. ``inline``: one thread reads a
frame and classifies it to completion before reading the next; no hand-off between threads,
so the lowest latency per spectrum for a device slower than the model, but no micro-batching,
and a free-running device that outpaces the model overflows its serial buffer.

Every frame is accounted for: it ends in a classified spectrum (alone or in an average) or
is rejected with a reason, frames read after a stop request included. The reader never gives
up on a reply because the classifier kept it waiting: request/response devices are simply
asked later when the backlog is full (backpressure); a free-running device that outruns a
full backlog loses frames, which are counted as rejected ``overrun`` (never as timeouts).
Non-finite model inputs or outputs are rejected with a reason, so every JSON line is strict
JSON. The runner is any object with ``preprocess``, ``infer`` and ``classes`` (see
:mod:`pace_edge.runtimes`).
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any, Protocol

import numpy as np

from ..errors import DataError, PaceEdgeError
from .drivers.base import RawFrame, Spectrometer
from .errors import ConfigError, DeviceChanged, StreamError, TransportClosed, TransportTimeout
from .spectral_axis import Averager, SpectralAxis

SCHEDULES = ("threaded", "inline")


class Runner(Protocol):
    """What the pipeline needs from a runtime runner."""

    classes: list[str]
    axis: np.ndarray

    def preprocess(self, raw: np.ndarray, axis: np.ndarray) -> np.ndarray: ...
    def infer(self, inputs: np.ndarray) -> np.ndarray: ...
    def judge_inputs(self, raw: np.ndarray | None,
                     inputs: np.ndarray) -> tuple[Any, np.ndarray]: ...


@dataclass(frozen=True)
class StreamConfig:
    """How to turn device frames into spectra."""

    laser_nm: float | None = None
    dark: np.ndarray | None = None  # counts per pixel, device order
    average: int = 1
    max_batch: int = 64
    max_frames: int | None = None
    reconnect_initial_s: float = 0.1
    reconnect_max_s: float = 5.0
    queue_size: int = 4096
    schedule: str = "threaded"  # or "inline" (see the module docstring)


@dataclass
class _Item:
    """One read outcome, as queued by the reader thread."""

    frame: RawFrame | None
    error: StreamError | None
    read_s: float
    done_ns: int


def reason_of(error: Exception) -> str:
    """A short, stable rejection reason for an error (its type, in snake case)."""
    name = type(error).__name__
    return "".join("_" + c.lower() if c.isupper() else c for c in name).lstrip("_")


@dataclass
class StreamStats:
    """Frames received, spectra classified, rejections by reason and latency samples (ms)."""

    received: int = 0
    classified: int = 0
    frames_classified: int = 0
    averaging: int = 0  # frames waiting in an unfinished average
    rejected: Counter[str] = field(default_factory=Counter)
    refused: Counter[str] = field(default_factory=Counter)  # classified, answer "unknown"
    reconnects: int = 0
    batches: int = 0
    silences: int = 0  # free-running device quiet past its deadline (no frame: not received)
    device_changes: int = 0  # reconnects to another device, accepted (--allow-device-change)
    stop_reason: str | None = None  # why the stream ended by itself (e.g. another device)
    latency: dict[str, list[float]] = field(
        default_factory=lambda: {k: [] for k in ("read", "preprocess", "infer", "total",
                                                 "overhead")}
    )

    @property
    def accounted(self) -> bool:
        """Every received frame is classified, rejected, or still in an open average."""
        return self.received == self.frames_classified + sum(self.rejected.values()) + (
            self.averaging
        )

    def percentiles(self, key: str) -> dict[str, float]:
        values = self.latency[key]
        if not values:
            return {}
        a = np.asarray(values)
        return {"p50": float(np.percentile(a, 50)), "p99": float(np.percentile(a, 99)),
                "max": float(a.max())}

    def summary(self) -> dict[str, Any]:
        return {
            "received": self.received,
            "classified": self.classified,
            "frames_classified": self.frames_classified,
            "averaging_incomplete": self.averaging,
            "rejected": dict(sorted(self.rejected.items())),
            "rejected_total": sum(self.rejected.values()),
            "accepted": self.classified - sum(self.refused.values()),
            "refused": dict(sorted(self.refused.items())),
            "reconnects": self.reconnects,
            "batches": self.batches,
            "silences": self.silences,
            "device_changes": self.device_changes,
            "stop_reason": self.stop_reason,
            "accounted": self.accounted,
            "latency_ms": {k: self.percentiles(k) for k in self.latency if self.latency[k]},
        }

    def summary_text(self) -> str:
        s = self.summary()
        rejected = ", ".join(f"{k} {v}" for k, v in s["rejected"].items()) or "none"
        lines = [
            f"frames received {s['received']}, spectra classified {s['classified']} "
            f"(from {s['frames_classified']} frames), rejected {s['rejected_total']} "
            f"({rejected}), reconnects {s['reconnects']}",
            f"accepted {s['accepted']} of {s['classified']} spectra, refused "
            + (", ".join(f"{k} {v}" for k, v in s["refused"].items()) or "none"),
        ]
        if s["silences"]:
            lines.append(f"device silent past its deadline {s['silences']} times")
        if s["device_changes"]:
            lines.append(f"accepted {s['device_changes']} change(s) of device")
        if s["stop_reason"]:
            lines.append(f"stopped: {s['stop_reason']}")
        for key, p in s["latency_ms"].items():
            lines.append(f"latency {key:<10} p50 {p['p50']:8.3f} ms   p99 {p['p99']:8.3f} ms   "
                         f"max {p['max']:8.3f} ms")
        return "\n".join(lines)


class StreamClassifier:
    """Classify spectra from a spectrometer with a runner until stopped or ``max_frames``."""

    def __init__(
        self,
        device: Spectrometer,
        runner: Runner,
        config: StreamConfig,
        emit: Callable[[dict[str, Any]], None],
        log: Callable[[str], None] = lambda message: None,
    ) -> None:
        if config.average < 1:
            raise ConfigError(f"--average must be at least 1, got {config.average}")
        if config.schedule not in SCHEDULES:
            raise ConfigError(f"schedule must be one of {', '.join(SCHEDULES)}, got "
                              f"{config.schedule!r}")
        self.device = device
        self.runner = runner
        self.config = config
        self.emit = emit
        self.log = log
        self.stats = StreamStats()
        self.stop_event = threading.Event()
        self._queue: queue.Queue[_Item] = queue.Queue(maxsize=config.queue_size)
        self._late: list[_Item] = []  # read after the consumer left: processed at the end
        self._consumer_done = threading.Event()
        self._lock = threading.Lock()  # guards _overruns and _late (reader vs main thread)
        self._overruns = 0
        self._averager = Averager(config.average) if config.average > 1 else None
        self._axis = self._device_axis()
        self._check_coverage()

    # -- set-up ------------------------------------------------------------------------------

    def _device_axis(self) -> SpectralAxis:
        wavelengths = self.device.wavelengths()
        if wavelengths is None:
            raise ConfigError(
                f"the {self.device.protocol} device reports no wavelength calibration: give "
                "--wavelength-coeffs c0,c1,... (λ(p) = Σ cᵢ pⁱ in nm)"
            )
        return SpectralAxis(np.asarray(wavelengths), self.config.laser_nm)

    def _check_coverage(self) -> None:
        device = self._axis.sorted_axis()
        model = np.asarray(self.runner.axis)
        if model[0] < device[0] - 1e-9 or model[-1] > device[-1] + 1e-9:
            hint = "" if self.config.laser_nm else " (for Raman models pass --laser-nm)"
            raise ConfigError(
                f"the device axis {device[0]:.6g}…{device[-1]:.6g} {self._axis.unit} does not "
                f"cover the model's input axis {model[0]:.6g}…{model[-1]:.6g}{hint}"
            )
        if self.config.dark is not None and self.config.dark.shape != (self._axis.pixels,):
            raise ConfigError(
                f"dark spectrum has {self.config.dark.size} pixels, the device has "
                f"{self._axis.pixels}"
            )

    # -- reader thread -----------------------------------------------------------------------

    def _read(self) -> _Item:
        """One read from the device: a frame or the typed error it raised."""
        start = time.perf_counter()
        try:
            frame, error = self.device.read_spectrum(), None
        except StreamError as exc:
            frame, error = None, exc
        return _Item(frame, error, time.perf_counter() - start, time.monotonic_ns())

    def _reads(self) -> Iterator[_Item]:
        """Reads until stopped or ``max_frames``, reconnecting (with backoff) after a
        disconnect once its item has been handed on."""
        backoff = self.config.reconnect_initial_s
        limit = self.config.max_frames
        reads = 0
        while not self.stop_event.is_set() and (limit is None or reads < limit):
            item = self._read()
            if not (isinstance(item.error, TransportTimeout) and self.device.free_running):
                reads += 1  # a free-running device's silence is not a frame
            yield item
            if isinstance(item.error, TransportClosed):
                backoff = self._reconnect(backoff)
            else:
                backoff = self.config.reconnect_initial_s

    def _reader(self) -> None:
        try:
            for item in self._reads():
                self._put(item)
        finally:
            self._put(None)

    def _put(self, item: _Item | None) -> None:
        """Hand ``item`` to the main loop, never losing it.

        A full backlog holds a request/response reader here (the device is asked later); a
        free-running device cannot wait, so its frame is counted as an overrun instead.
        After the main loop has left, items go to a list it processes on the way out.
        """
        if item is not None and self.device.free_running:
            try:
                self._queue.put_nowait(item)
            except queue.Full:
                with self._lock:
                    self._overruns += 1
            return
        while not self._consumer_done.is_set():
            try:
                self._queue.put(item, timeout=0.1)  # type: ignore[arg-type]
                return
            except queue.Full:
                continue
        if item is not None:
            with self._lock:
                self._late.append(item)

    def _fold_overruns(self) -> None:
        """Count frames the reader had to drop (main thread only)."""
        with self._lock:
            n, self._overruns = self._overruns, 0
        if n:
            self.stats.received += n
            self.stats.rejected["overrun"] += n
            self.emit({"time": time.time(), "seq": None, "rejected": "overrun", "frames": n,
                       "detail": f"{n} frame(s) lost: the backlog was full"})

    def _reconnect(self, backoff: float) -> float:
        while not self.stop_event.is_set():
            self.log(f"device disconnected; reconnecting in {backoff:.1f} s")
            if self.stop_event.wait(backoff):
                break
            changes = len(self.device.device_changes)
            try:
                self.device.reconnect(timeout_s=backoff)
            except DeviceChanged as exc:
                self.log(f"stopping: {exc}")
                self.stats.stop_reason = str(exc)
                self.stop_event.set()
                break
            except StreamError as exc:
                self.log(f"reconnect failed: {exc}")
                backoff = min(backoff * 2, self.config.reconnect_max_s)
                continue
            self.stats.reconnects += 1
            for old, new in self.device.device_changes[changes:]:
                self.stats.device_changes += 1
                self.log(f"device changed on reconnect: {old!r} -> {new!r} (accepted: "
                         "--allow-device-change)")
            self.log("device reconnected")
            return self.config.reconnect_initial_s
        return backoff

    # -- main loop ---------------------------------------------------------------------------

    def run(self) -> StreamStats:
        """Read, classify and emit until stopped, ``max_frames`` or the device gives up.

        After a stop request the read in progress is finished and everything read is still
        classified or counted before this returns.
        """
        if self.config.schedule == "inline":
            try:
                for item in self._reads():
                    self._process([item])
            finally:
                self.stop_event.set()
                self._fold_overruns()
            return self.stats
        reader = threading.Thread(target=self._reader, name="pace-reader", daemon=True)
        reader.start()
        finished = False
        try:
            while not finished:
                try:
                    first = self._queue.get(timeout=0.2)
                except queue.Empty:
                    self._fold_overruns()
                    if self.stop_event.is_set() and not reader.is_alive():
                        break
                    continue
                batch, finished = self._drain(first)
                self._process(batch)
        finally:
            self.stop_event.set()
            self._consumer_done.set()
            # every read ends within its reply deadline, so the reader finishes
            while reader.is_alive():
                reader.join(timeout=0.5)
                self._flush_queue()
            self._flush_queue()
        return self.stats

    def stop(self) -> None:
        self.stop_event.set()

    def _drain(self, first: _Item | None) -> tuple[list[_Item], bool]:
        """``first`` plus whatever else is already queued, up to the batch size."""
        if first is None:
            return [], True
        batch = [first]
        while len(batch) < self.config.max_batch:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is None:
                return batch, True
            batch.append(item)
        return batch, False

    def _flush_queue(self) -> None:
        """Account for frames read but not yet processed when stopping."""
        leftovers = []
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                leftovers.append(item)
        with self._lock:
            leftovers += self._late
            self._late.clear()
        self._process(leftovers)

    def _reject(self, item: _Item, reason: str, detail: str = "", n_frames: int = 1) -> None:
        self.stats.rejected[reason] += n_frames
        sequence = item.frame.sequence if item.frame is not None else None
        record: dict[str, Any] = {"time": time.time(), "seq": sequence, "rejected": reason}
        if n_frames > 1:
            record["frames"] = n_frames
        if detail:
            record["detail"] = detail
        self.emit(record)

    def _prepare(self, item: _Item) -> tuple[np.ndarray, int, np.ndarray] | None:
        """Counts → (model input, frames, intensity on the device axis for the physical
        checks), or ``None`` (rejected, or waiting for more to average)."""
        frame = item.frame
        assert frame is not None
        if frame.saturated:
            self._reject(item, "saturated", "a pixel is at the ADC full scale")
            return None
        counts, n_frames = frame.counts, 1
        if self._averager is not None:
            try:
                mean = self._averager.add(counts)
            except (DataError, PaceEdgeError) as exc:
                # the open average cannot be finished: its frames and this one are rejected
                partial = self._averager.count
                self._averager.reset()
                self.stats.averaging -= partial
                self._reject(item, "average", str(exc), partial + 1)
                return None
            self.stats.averaging += 1
            if mean is None:
                return None
            counts, n_frames = mean, self.config.average
            self.stats.averaging -= n_frames
        try:
            intensity, axis = self._axis.apply(counts, self.config.dark)
            x = self.runner.preprocess(intensity, axis)[0]
        except (DataError, PaceEdgeError) as exc:
            self._reject(item, "preprocess", str(exc), n_frames)  # an average shares its fate
            return None
        if not np.isfinite(x).all():
            self._reject(item, "non_finite_input",
                         "preprocessing gave NaN or inf (e.g. a flat spectrum normalised)",
                         n_frames)
            return None
        return x, n_frames, intensity

    def _process(self, items: list[_Item]) -> None:
        self._fold_overruns()
        ready: list[tuple[_Item, np.ndarray, int, float, np.ndarray]] = []
        for item in items:
            if isinstance(item.error, TransportTimeout) and self.device.free_running:
                self.stats.silences += 1  # no frame came: nothing was received
                self.log(f"device silent: {item.error}")
                continue
            self.stats.received += 1
            if item.error is not None:
                self._reject(item, reason_of(item.error), str(item.error))
                continue
            t0 = time.perf_counter()
            prepared = self._prepare(item)
            if prepared is not None:
                ready.append((item, prepared[0], prepared[1], time.perf_counter() - t0,
                              prepared[2]))
        if not ready:
            return
        inputs = np.stack([r[1] for r in ready]).astype(np.float32, copy=False)
        t0 = time.perf_counter()
        raw = np.stack([r[4] for r in ready])
        # physical checks, the model and the "unknown" detector in one pass
        verdicts, logits = self.runner.judge_inputs(raw, inputs)
        infer_s = time.perf_counter() - t0
        self.stats.batches += 1
        finite = np.isfinite(logits).all(axis=1)
        for (item, _, n_frames, _, _), ok in zip(ready, finite, strict=True):
            if not ok:
                self._reject(item, "non_finite_output", "the model gave NaN or inf", n_frames)
        rows = np.flatnonzero(finite)
        ready = [ready[i] for i in rows]
        proba = verdicts.probabilities
        classes = self.runner.classes
        for i, (item, _, n_frames, prep_s, _) in zip(rows, ready, strict=True):
            p = proba[i]
            best = int(p.argmax())
            total_ms = (time.monotonic_ns() - item.done_ns) / 1e6
            latency = {"read": item.read_s * 1e3, "preprocess": prep_s * 1e3,
                       "infer": infer_s * 1e3, "total": total_ms}
            self.emit({
                "time": time.time(),
                "seq": item.frame.sequence if item.frame is not None else None,
                "class": classes[best],
                "probability": float(p[best]),
                "probabilities": {c: float(v) for c, v in zip(classes, p, strict=True)},
                **verdicts.record(i),
                "frames": n_frames,
                "batch": len(ready),
                "latency_ms": {k: round(v, 4) for k, v in latency.items()},
            })
            self.stats.classified += 1
            if not verdicts.accepted[i]:
                self.stats.refused[verdicts.reasons[i]] += 1
            self.stats.frames_classified += n_frames
            for key, value in latency.items():
                self.stats.latency[key].append(value)
            self.stats.latency["overhead"].append(total_ms - infer_s * 1e3)


class JsonLines:
    """Writes one strict JSON object per line (NaN/inf refused) to a text stream, flushed
    per line."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream

    def __call__(self, record: dict[str, Any]) -> None:
        self.stream.write(json.dumps(record, separators=(",", ":"), allow_nan=False) + "\n")
        self.stream.flush()
