"""Benchmark several builds of one bundle against its eager PyTorch FP32 baseline."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import PaceEdgeError
from ..evaluate.scoring import model_labels
from .builds import (
    BASELINE,
    STATUS_INVALID,
    STATUS_UNRUNNABLE,
    BuildSpec,
    export_build,
    model_size_mb,
    open_runner,
)
from .latency import (
    DEFAULT_ITERATIONS,
    DEFAULT_WARMUP,
    deployed_call,
    measure_interleaved,
    model_inputs,
)
from .report import BuildResult, Report

if TYPE_CHECKING:
    from ..data import SpectralDataset
    from ..runtimes import Runner

DEFAULT_BATCHES = (1, 8, 64)
BASELINE_SPEC = BuildSpec(BASELINE, "fp32")


def default_threads() -> int:
    """The CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def accuracy(runner: Runner, data: SpectralDataset, chunk: int = 256) -> float:
    """Top-1 accuracy of ``runner`` on raw labelled spectra (its own preprocessing)."""
    labels = model_labels(data, runner.classes)
    predicted = np.concatenate([
        runner.infer(runner.preprocess(data.x[i : i + chunk], data.axis)).argmax(axis=1)
        for i in range(0, len(data), chunk)
    ])
    return float(np.mean(predicted == labels))


def benchmark_builds(
    bundle_dir: str | Path,
    specs: Sequence[BuildSpec],
    workdir: str | Path,
    *,
    batches: Sequence[int] = DEFAULT_BATCHES,
    iterations: int = DEFAULT_ITERATIONS,
    warmup: int = DEFAULT_WARMUP,
    threads: int | None = None,
    data: SpectralDataset | None = None,
    calib: str | Path | None = None,
    reuse: bool = True,
    min_accuracy: float | None = None,
    profile: bool = False,
    allow_failed: bool = False,
    log: Callable[[str], None] = lambda message: None,
) -> Report:
    """Export (or reuse) every build, then measure accuracy on ``data`` and ``runner.infer``
    latency at each batch size, the eager PyTorch FP32 baseline always included (first).

    Inputs are ``data``'s first spectra, preprocessed (else standard-normal model inputs).
    Builds that cannot be exported or loaded are reported with the reason, never dropped.
    With ``profile``, each build whose runtime has a per-layer profiler is also profiled at
    every batch size (after the timing, so the timing is unaffected). A build whose export
    failed a gate is reported, and measured only with ``allow_failed``.
    """
    batches = sorted({int(b) for b in batches})
    if not batches or batches[0] < 1:
        raise PaceEdgeError(f"batch sizes must be positive, got {batches}")
    threads = default_threads() if threads is None else threads
    if data is not None:
        from ..bundle import Bundle

        model_labels(data, Bundle.load(bundle_dir).classes)  # refuse foreign classes up front
    ordered = [BASELINE_SPEC, *(s for s in specs if s != BASELINE_SPEC)]
    results: list[BuildResult] = []
    runners: dict[str, Runner] = {}
    try:
        for spec in ordered:
            log(f"{spec.label}: {'loading' if spec.is_baseline else 'exporting'} …")
            build = export_build(bundle_dir, spec, workdir, calib=calib, reuse=reuse)
            result = BuildResult(build)
            results.append(result)
            note = " (reused)" if build.reused else (
                f" ({build.export_s:.1f} s)" if build.export_s else "")
            log(f"{spec.label}: {build.status_text()}{note}")
            if not build.runnable:
                continue
            if build.status == STATUS_INVALID and not allow_failed:
                build.reason += "; not measured (--allow-failed measures it)"
                continue
            try:
                runner = open_runner(build, threads=threads)
            except PaceEdgeError as exc:
                build.status, build.reason = STATUS_UNRUNNABLE, str(exc)
                continue
            runners[spec.label] = runner
            result.size_mb = model_size_mb(runner)
            result.runtime = runner.describe()
        rows = None
        if data is not None:
            base = runners.get(BASELINE_SPEC.label)
            for result in results:
                runner = runners.get(result.label)
                if runner is None:
                    continue
                log(f"{result.label}: accuracy on {data.source} …")
                try:
                    result.accuracy = accuracy(runner, data)
                except (PaceEdgeError, RuntimeError) as exc:
                    result.error = f"inference failed: {exc}"
                    runners.pop(result.label).close()
            if base is not None and len(data):
                rows = base.preprocess(data.x[: max(batches)], data.axis)
        for batch in batches:
            fns = {}
            for label, runner in list(runners.items()):
                fn = deployed_call(runner, model_inputs(runner.input_length, batch, rows=rows))
                try:
                    fn()  # a build that cannot run this batch is reported, not timed
                except (PaceEdgeError, RuntimeError) as exc:
                    next(r for r in results if r.label == label).error = (
                        f"inference failed at batch {batch}: {exc}")
                    runners.pop(label).close()
                    continue
                fns[label] = fn
            log(f"batch {batch}: timing {len(fns)} builds, {iterations} calls each …")
            for label, stats in measure_interleaved(fns, batch=batch, iterations=iterations,
                                                    warmup=warmup).items():
                next(r for r in results if r.label == label).latency[batch] = stats
        if profile:
            for label, runner in runners.items():
                result = next(r for r in results if r.label == label)
                for batch in batches:
                    x = model_inputs(runner.input_length, batch, rows=rows)
                    try:
                        result.profile[batch] = runner.profile(x, iterations=min(iterations, 50))
                    except (PaceEdgeError, RuntimeError) as exc:
                        result.profile_note = str(exc)
                        break
    finally:
        for runner in runners.values():
            runner.close()
    return Report(
        model=str(bundle_dir),
        results=results,
        batches=batches,
        iterations=iterations,
        warmup=warmup,
        threads=threads,
        baseline=BASELINE_SPEC.label,
        data=data.source if data is not None else None,
        min_accuracy=min_accuracy,
    )


__all__ = ["DEFAULT_BATCHES", "accuracy", "benchmark_builds", "default_threads"]
