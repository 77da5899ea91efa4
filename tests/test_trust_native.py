"""The native ``pace-stream`` gives the Python stream's verdicts: the same spectra accepted,
the same refused with the same reason and score, the same calibrated probabilities."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_native import (  # noqa: F401  (fixtures)
    _run_native,
    _run_python,
    native_build,
    native_export,
    pace_stream,
    reference_runner,
)

from pace_edge.streaming.emulator import Emulator
from pace_edge.streaming.emulator.sources import SyntheticSource


class MixedSource:
    """The emulator's synthetic spectra, with every third frame dark (read noise only) and
    every third one a spectrum of other bands on a sloping background."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.axis: np.ndarray | None = None
        self.inner: SyntheticSource | None = None
        self.dark = SyntheticSource.dark
        self.k = 0

    def bind(self, axis: np.ndarray, full_scale: float) -> None:
        self.axis = axis
        self.inner = SyntheticSource(axis, self.rng, peak_counts=0.05 * full_scale)

    def next(self) -> tuple[np.ndarray, int]:
        assert self.inner is not None and self.axis is not None
        self.k += 1
        if self.k % 3 == 1:
            return self.dark + self.rng.normal(0, 4.0, self.axis.size), 0
        if self.k % 3 == 2:
            t = np.linspace(0, 1, self.axis.size)
            x = self.dark + 3000 * t + self.rng.normal(0, 4.0, self.axis.size)
            for _ in range(5):
                x += self.rng.uniform(500, 2000) * np.exp(-0.5 * ((t - self.rng.uniform()) / 0.01)
                                                          ** 2)
            return x, 0
        return self.inner.next()


def _emulator(seed: int) -> Emulator:
    source = MixedSource(seed)
    emu = Emulator("obp", source=source, seed=seed)
    source.bind(emu.axis.axis, 2.0**14 - 1)
    return emu


def test_native_stream_refuses_what_python_refuses(pace_stream: str,  # noqa: F811
                                                   native_export: Path,  # noqa: F811
                                                   reference_runner,  # noqa: F811
                                                   tmp_path: Path) -> None:
    n = 45
    with _emulator(21) as emu:
        native, summary, log = _run_native(pace_stream, native_export, emu, n, tmp_path)
    with _emulator(21) as emu:
        python, stats = _run_python(reference_runner, emu, n)
    assert len(native) == len(python) == n
    reasons = [r.get("reason") for r in python]
    assert reasons.count("low_signal") == n // 3
    assert {None, "low_signal"} < set(reasons)  # some accepted, some refused
    for got, want in zip(native, python, strict=True):
        assert (got["seq"], got["class"], got["accepted"], got.get("reason")) == (
            want["seq"], want["class"], want["accepted"], want.get("reason"))
        if want.get("score") is not None:
            assert got["score"] == pytest.approx(want["score"], rel=1e-3, abs=1e-5)
        for c, p in want["probabilities"].items():
            assert got["probabilities"][c] == pytest.approx(p, abs=1e-4)
    assert summary["refused"] == dict(stats.refused)
    assert summary["accepted"] == stats.classified - sum(stats.refused.values())
    assert "accepted" in log and "refused" in log
