"""``runner.infer`` latency on preprocessed spectra: every backend × precision × batch × preset,
with eager PyTorch FP32 as the baseline measured in the same session.

    pytest benchmarks --benchmark-only -k small --benchmark-min-rounds=3 --benchmark-max-time=0.2

Each benchmark's ``extra_info``: spectra/s, p50/p99/mean/min ms per call, model size, speed-up
over eager FP32 (p50 over p50, and min over min, same preset and batch), threads, status.
"""

from __future__ import annotations

import numpy as np
import pytest
from _builds import BACKENDS, BATCHES, PIPELINE, PRECISIONS, PRESETS, BuildUnavailable, Record

BUILDS = [(b, p) for b in BACKENDS for p in PRECISIONS if not (b == "torch" and p != "fp32")]


@pytest.mark.parametrize("backend,precision", BUILDS, ids=[f"{b}-{p}" for b, p in BUILDS])
@pytest.mark.parametrize("batch", BATCHES, ids=[f"b{b}" for b in BATCHES])
@pytest.mark.parametrize("preset", PRESETS)
def test_infer(benchmark, bench, preset: str, batch: int, backend: str, precision: str) -> None:
    try:
        runner = bench.runner(preset, backend, precision)
    except BuildUnavailable as exc:
        if exc.skip:
            pytest.skip(str(exc))
        pytest.fail(str(exc), pytrace=False)
    x = bench.inputs(preset, batch)
    if backend != "torch":
        bench.baseline(preset, batch)  # measured before this build, as the other rows' are
    bench.settle(lambda: runner.infer(x))  # warm-up; lets the previous runtime's threads idle
    benchmark.group = f"{preset} batch {batch}"
    benchmark.name = f"{backend} {precision}"
    logits = benchmark(runner.infer, x)
    assert logits.shape == (batch, len(runner.classes)) and np.isfinite(logits).all()
    if benchmark.stats is None:  # --benchmark-disable: ran once, nothing measured
        return
    samples_s = np.asarray(benchmark.stats.stats.data, dtype=np.float64)
    samples_ms = samples_s * 1e3
    p50 = float(np.percentile(samples_ms, 50))
    base = bench.baseline_for(preset, batch, backend, precision, samples_ms)
    described = runner.describe()
    info = {
        "preset": preset,
        "batch": batch,
        "backend": backend,
        "precision": precision,
        "threads": runner.threads,
        "runtime_threads": described.get("threads"),
        "inference_precision": described.get("inference_precision"),
        "preprocessing": PIPELINE,
        "p50_ms": p50,
        "p99_ms": float(np.percentile(samples_ms, 99)),
        "mean_ms": float(samples_ms.mean()),
        "min_ms": float(samples_ms.min()),
        "spectra_per_s": batch / float(samples_s.mean()),
        "model_size_mb": bench.size_mb(runner),
        "eager_fp32_p50_ms": base.p50_ms,
        "eager_fp32_min_ms": base.min_ms,
        "eager_fp32_iterations": base.iterations,
        "eager_fp32_p50_over_min": base.p50_ms / base.min_ms,  # ≫ 1: the baseline stalled
        "speedup_vs_eager_fp32": base.p50_ms / p50,
        # best case over best case: what is left of the speed-up when a shared machine's
        # stalls (PyTorch's 2-thread OpenMP pool suffers most) are set aside
        "speedup_vs_eager_fp32_min": base.min_ms / float(samples_ms.min()),
        "status": bench.status(preset, backend, precision),
    }
    benchmark.extra_info.update(info)
    bench.records.append(Record(benchmark.group, benchmark.name, info, samples_ms))
