"""Latency of one callable or one runner: warm-up, then a fixed number of timed calls.

Every call is timed on its own with :func:`time.perf_counter_ns`, so the percentiles are of
single calls (not of averages over a round). Throughput is ``batch / mean latency``: spectra
per second for back-to-back calls from one Python thread, as a streaming loop would make them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import PaceEdgeError

if TYPE_CHECKING:
    from ..runtimes import Runner

DEFAULT_ITERATIONS = 200
DEFAULT_WARMUP = 20
SETTLE_S = 0.05  # untimed calls before each interleaved block (see measure_interleaved)


@dataclass(frozen=True)
class LatencyStats:
    """Per-call latencies (ms) of ``iterations`` calls on ``batch`` spectra each."""

    batch: int
    warmup: int
    samples_ms: np.ndarray

    @property
    def iterations(self) -> int:
        return int(self.samples_ms.size)

    @property
    def p50_ms(self) -> float:
        return float(np.percentile(self.samples_ms, 50))

    @property
    def p99_ms(self) -> float:
        return float(np.percentile(self.samples_ms, 99))

    @property
    def mean_ms(self) -> float:
        return float(self.samples_ms.mean())

    @property
    def min_ms(self) -> float:
        return float(self.samples_ms.min())

    @property
    def std_ms(self) -> float:
        return float(self.samples_ms.std())

    @property
    def spectra_per_s(self) -> float:
        """Spectra per second: ``batch`` over the mean call latency."""
        return 1e3 * self.batch / self.mean_ms

    def summary(self) -> dict[str, Any]:
        """The figures without the samples (for tables and ``extra_info``)."""
        return {
            "batch": self.batch,
            "iterations": self.iterations,
            "warmup": self.warmup,
            "p50_ms": self.p50_ms,
            "p99_ms": self.p99_ms,
            "mean_ms": self.mean_ms,
            "min_ms": self.min_ms,
            "std_ms": self.std_ms,
            "spectra_per_s": self.spectra_per_s,
        }

    def to_dict(self) -> dict[str, Any]:
        """:meth:`summary` plus every sample (ms), for JSON reports."""
        return {**self.summary(), "samples_ms": [round(float(v), 6) for v in self.samples_ms]}


def measure(
    fn: Callable[[], Any],
    *,
    batch: int,
    iterations: int = DEFAULT_ITERATIONS,
    warmup: int = DEFAULT_WARMUP,
) -> LatencyStats:
    """Call ``fn`` ``warmup`` times untimed, then ``iterations`` times, each timed alone."""
    if iterations < 1 or warmup < 0 or batch < 1:
        raise PaceEdgeError(
            f"need iterations ≥ 1, warmup ≥ 0 and batch ≥ 1 (got {iterations}, {warmup}, {batch})"
        )
    for _ in range(warmup):
        fn()
    samples = np.empty(iterations, dtype=np.int64)
    clock = time.perf_counter_ns
    for i in range(iterations):
        start = clock()
        fn()
        samples[i] = clock() - start
    return LatencyStats(batch=batch, warmup=warmup, samples_ms=samples / 1e6)


def model_inputs(length: int, batch: int, seed: int = 0,
                 rows: np.ndarray | None = None) -> np.ndarray:
    """``(batch, length)`` float32 model inputs: ``rows`` (preprocessed spectra) repeated to
    ``batch`` rows, or standard-normal values (what SNV-normalised spectra look like)."""
    if rows is not None:
        rows = np.atleast_2d(np.asarray(rows, dtype=np.float32))
        if rows.shape[1] != length or len(rows) == 0:
            raise PaceEdgeError(f"inputs must be (n, {length}), got {rows.shape}")
        reps = -(-batch // len(rows))
        return np.ascontiguousarray(np.tile(rows, (reps, 1))[:batch])
    rng = np.random.default_rng(seed)
    return rng.standard_normal((batch, length)).astype(np.float32)


def deployed_call(runner: Runner, x: np.ndarray) -> Callable[[], Any]:
    """A call of ``runner`` on ``x`` that returns what ``pace-edge stream`` asks of it: the
    logits, and the "unknown" detector's whitened features when the model carries one (an
    export computes that output on every call; PyTorch projects its pooled features)."""
    if runner.spec.trust.has_detector:
        return lambda: runner.infer_with_features(x)
    return lambda: runner.infer(x)


def measure_runner(
    runner: Runner,
    batch: int,
    *,
    iterations: int = DEFAULT_ITERATIONS,
    warmup: int = DEFAULT_WARMUP,
    inputs: np.ndarray | None = None,
) -> LatencyStats:
    """Latency of :func:`deployed_call` on ``batch`` preprocessed spectra (``inputs`` rows,
    repeated, or synthetic standard-normal inputs)."""
    x = model_inputs(runner.input_length, batch, rows=inputs)
    return measure(deployed_call(runner, x), batch=batch, iterations=iterations, warmup=warmup)


def measure_interleaved(
    fns: dict[str, Callable[[], Any]],
    *,
    batch: int,
    iterations: int = DEFAULT_ITERATIONS,
    warmup: int = DEFAULT_WARMUP,
    blocks: int = 5,
    settle_s: float = SETTLE_S,
) -> dict[str, LatencyStats]:
    """:func:`measure` for several callables, interleaved: each is warmed up, then the timed
    calls run in ``blocks`` rounds that visit every callable in turn, so a change in background
    load over time affects all of them alike (a shared machine's drift is not a speed-up).

    Before each block a callable runs untimed for at least one call and ``settle_s`` seconds:
    the previous runtime's worker threads keep spinning for a while after its last call (an
    OpenMP pool, PyTorch's, slows the next runtime's first calls several-fold on 2 cores).
    """
    blocks = max(1, min(blocks, iterations))
    sizes = [iterations // blocks + (i < iterations % blocks) for i in range(blocks)]
    parts: dict[str, list[np.ndarray]] = {name: [] for name in fns}
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    for size in sizes:
        for name, fn in fns.items():
            if len(fns) > 1:
                settle(fn, settle_s)
            parts[name].append(measure(fn, batch=batch, iterations=size, warmup=0).samples_ms)
    return {name: LatencyStats(batch, warmup, np.concatenate(p)) for name, p in parts.items()}


def settle(fn: Callable[[], Any], seconds: float = SETTLE_S) -> None:
    """Call ``fn`` untimed at least once and for at least ``seconds`` (lets another runtime's
    spinning worker threads go idle before ``fn`` is timed)."""
    end = time.perf_counter() + seconds
    fn()
    while time.perf_counter() < end:
        fn()


__all__ = ["DEFAULT_ITERATIONS", "DEFAULT_WARMUP", "SETTLE_S", "LatencyStats", "deployed_call",
           "measure", "measure_interleaved", "measure_runner", "model_inputs", "settle"]
