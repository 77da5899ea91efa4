"""Tiny bundle and exports shared by the runtime tests: built once per test session.

pytest shares fixtures between modules only through conftest; these helpers instead cache
what they build under the session's base temporary directory, so ``test_device_imports``,
``test_runtime_select`` and ``test_runtimes`` export the model once between them.
Building needs torch and onnx (the caller skips without them); reading does not.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest

RAW_AXIS = np.linspace(400.0, 1800.0, 700)  # the "instrument" axis the bundle was made on
PREPROCESSING = "crop:450:1750,savgol:11:3,normalize:snv"
CLASSES = ["alpha", "beta", "gamma"]


def _root(factory: pytest.TempPathFactory) -> Path:
    root = factory.getbasetemp() / "runtime-exports"
    root.mkdir(exist_ok=True)
    return root


def raw_spectra(n: int, axis: np.ndarray = RAW_AXIS, seed: int = 0) -> np.ndarray:
    """``n`` positive, Raman-like spectra on ``axis``: baseline, 3-8 bands, noise."""
    rng = np.random.default_rng(seed)
    t = (axis - axis[0]) / (axis[-1] - axis[0])
    x = np.empty((n, axis.size))
    for i in range(n):
        y = 200 + np.polyval(rng.normal(0, 50, 3), t)
        for _ in range(rng.integers(3, 9)):
            centre, width = rng.uniform(0.05, 0.95), rng.uniform(0.004, 0.03)
            y += rng.uniform(50, 800) * np.exp(-0.5 * ((t - centre) / width) ** 2)
        x[i] = y + rng.normal(0, 3, axis.size)
    return x


def runtime_bundle(factory: pytest.TempPathFactory) -> Path:
    """A tiny 3-class PACE bundle with randomised BatchNorm statistics and a real, anchored
    preprocessing pipeline (crop, Savitzky-Golay, SNV; resampled onto its grid)."""
    path = _root(factory) / "bundle"
    if (path / "model.json").is_file():
        return path
    from factories import random_pace, save_bundle

    from pace_edge.preprocess import Pipeline

    pipeline = Pipeline.from_spec(PREPROCESSING).anchored(RAW_AXIS)
    save_bundle(path, random_pace("tiny", len(CLASSES), seed=7),
                pipeline.output_axis(RAW_AXIS), pipeline, CLASSES)
    return path


def runtime_export(
    factory: pytest.TempPathFactory, target: str = "x86", batch: str = "dynamic"
) -> Path:
    """``pace-edge export --target TARGET --batch BATCH`` of :func:`runtime_bundle` (cached)."""
    out = _root(factory) / f"{target}-{batch}"
    if (out / "manifest.json").is_file():
        return out
    from pace_edge.cli import export

    bundle = runtime_bundle(factory)
    parser = argparse.ArgumentParser(prog="pace-edge")
    export.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["export", "--model", str(bundle), "--target", target,
                              "--batch", batch, "--parity-samples", "16", "--out", str(out)])
    assert args.run(args) == 0
    return out
