"""Latency benchmarks of exported builds against the eager PyTorch FP32 baseline.

* :mod:`.latency`: per-call latency of a runner (warm-up, ``perf_counter_ns`` per call, p50/p99,
  mean, spectra per second), interleaved across builds;
* :mod:`.builds`: ``target:precision`` build specs, exported with ``pace-edge export`` or
  reused from a work directory, with a status and reason;
* :mod:`.run`: :func:`benchmark_builds`, everything for ``pace-edge benchmark``;
* :mod:`.report`: the table, JSON and a PNG of latency distributions.

Importing this package is light: runtimes, torch and matplotlib load on use.
"""

from __future__ import annotations

from .builds import Build, BuildSpec, export_build, open_runner, parse_builds
from .latency import LatencyStats, measure, measure_interleaved, measure_runner
from .report import BuildResult, Report
from .run import benchmark_builds

__all__ = [
    "Build",
    "BuildResult",
    "BuildSpec",
    "LatencyStats",
    "Report",
    "benchmark_builds",
    "export_build",
    "measure",
    "measure_interleaved",
    "measure_runner",
    "open_runner",
    "parse_builds",
]
