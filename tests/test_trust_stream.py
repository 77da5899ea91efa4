"""End to end on real data: COV test spectra streamed from the emulator as detector counts
with a random gain (±30 % per frame) and offset are classified as `evaluate` classifies them,
and out-of-distribution streams are refused."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pace_edge.cli.main import main
from pace_edge.streaming.emulator import Emulator

LASER_NM = 785.0
OBP_FULL_SCALE = 2.0**14 - 1  # the emulated OBP device is 14-bit
UNKNOWN_REFUSED_AT_LEAST = 0.9  # README: synthetic spectra of other substances
ACCEPTED_AT_LEAST = 0.95  # the bar for in-distribution spectra served as counts


class JitteredCounts:
    """A data set's spectra in order, as counts: each frame gets its own gain (±30 % around
    a nominal scale) and offset, plus shot and read noise (an emulator spectrum source)."""

    def __init__(self, x: np.ndarray, axis: np.ndarray, full_scale: float, seed: int):
        self.x, self.data_axis = x, axis
        self.rng = np.random.default_rng(seed)
        lo, hi = np.percentile(x, [0.5, 99.9])
        self.lo, self.scale = float(lo), 0.4 * full_scale / float(hi - lo)
        self.dark = 0.04 * full_scale
        self.served = 0
        self.axis: np.ndarray | None = None

    def next(self) -> tuple[np.ndarray, int]:
        assert self.axis is not None, "bind the device axis first"
        i = self.served % len(self.x)
        self.served += 1
        gain = self.scale * self.rng.uniform(0.7, 1.3)
        offset = self.rng.uniform(0.0, 0.1) * self.scale
        signal = np.maximum((np.interp(self.axis, self.data_axis, self.x[i]) - self.lo) * gain
                            + offset, 0.0)
        counts = self.rng.poisson(signal) + self.dark + self.rng.normal(0, 4.0, signal.size)
        return counts, i


class DarkFrames:
    """The shutter closed: dark offset and read noise only."""

    dark = 200.0

    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)
        self.axis: np.ndarray | None = None

    def next(self) -> tuple[np.ndarray, int]:
        assert self.axis is not None
        return self.dark + self.rng.normal(0, 4.0, self.axis.size), 0


@pytest.fixture(scope="module")
def cov_bundle(cov_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small PACE trained with the default recipe (SNV, calibration spectra held out)."""
    from pace_edge.data import load_dataset
    from pace_edge.model import preset
    from pace_edge.preprocess import Pipeline
    from pace_edge.train import Recipe
    from pace_edge.train.bundle_training import train_bundle

    out = tmp_path_factory.mktemp("cov") / "small"
    train_bundle(load_dataset(cov_dir, split="train"), preset("small", 3),
                 Recipe(epochs=40, seed=0), Pipeline.from_spec("normalize:snv"), out=out)
    return out


def _stream(bundle: Path, source, n: int, tmp: Path) -> tuple[list[dict], dict]:
    out, summary = tmp / "out.jsonl", tmp / "summary.json"
    with Emulator("obp", source=source, seed=3) as emu:
        source.axis = emu.axis.axis
        code = main(["stream", "--port", emu.port, "--protocol", "obp", "--model", str(bundle),
                     "--laser-nm", str(LASER_NM), "--max-frames", str(n), "--output", str(out),
                     "--summary-json", str(summary), "--threads", "1", "--backend", "torch",
                     "--schedule", "inline"])
    assert code == 0
    return ([json.loads(line) for line in out.read_text().splitlines()],
            json.loads(summary.read_text()))


def test_gain_jittered_counts_stream_as_evaluate_scores_them(cov_dir: Path, cov_bundle: Path,
                                                             tmp_path: Path) -> None:
    from pace_edge.bundle import Bundle
    from pace_edge.data import load_dataset
    from pace_edge.evaluate.scoring import judge_bundle

    test = load_dataset(cov_dir, split="test")
    bundle = Bundle.load(cov_bundle)
    metrics, trust, _ = judge_bundle(bundle, test)
    source = JitteredCounts(test.x, test.axis, OBP_FULL_SCALE, seed=7)
    records, summary = _stream(cov_bundle, source, len(test), tmp_path)
    assert source.served == len(test) == len(records) == summary["classified"]
    stream_correct = sum(r["class"] == test.classes[int(test.y[r["seq"] - records[0]["seq"]])]
                         for r in records)
    accepted = sum(r["accepted"] for r in records)
    print(f"\nCOV test as jittered counts: stream {stream_correct}/{len(test)} correct, "
          f"evaluate {metrics.correct}/{len(test)}; accepted {accepted}/{len(test)} "
          f"(evaluate {trust['accepted']})")
    assert abs(stream_correct - metrics.correct) <= 2
    assert accepted <= trust["accepted"] + 2  # the stream's spectra are noisier, not cleaner
    assert accepted >= ACCEPTED_AT_LEAST * len(test)
    assert summary["accepted"] == accepted
    assert sum(summary["refused"].values()) == len(test) - accepted
    for r in records:
        assert set(r["probabilities"]) == set(test.classes)
        assert r["accepted"] or (r["reason"] and "score" in r)


def test_out_of_distribution_streams_are_refused(cov_bundle: Path, tmp_path: Path) -> None:
    # SYNTHETIC Raman spectra of other substances (the emulator's own generator)
    out, summary = tmp_path / "synthetic.jsonl", tmp_path / "synthetic.json"
    with Emulator("obp", seed=5) as emu:
        assert main(["stream", "--port", emu.port, "--protocol", "obp", "--model",
                     str(cov_bundle), "--laser-nm", str(LASER_NM), "--max-frames", "60",
                     "--output", str(out), "--summary-json", str(summary), "--threads", "1",
                     "--backend", "torch"]) == 0
    records = [json.loads(line) for line in out.read_text().splitlines()]
    refused = [r for r in records if not r["accepted"]]
    print(f"\nsynthetic spectra of other substances: refused {len(refused)}/{len(records)}")
    assert len(refused) >= UNKNOWN_REFUSED_AT_LEAST * len(records)
    assert {r["reason"] for r in refused} <= {"out_of_distribution", "low_signal"}
    assert all(r["class"] and r["probabilities"] for r in refused)  # kept for inspection
    # dark frames are refused before the model, as low signal
    dark = tmp_path / "dark"
    dark.mkdir()
    records, s = _stream(cov_bundle, DarkFrames(seed=1), 20, dark)
    assert [r["reason"] for r in records] == ["low_signal"] * 20
    assert s["refused"] == {"low_signal": 20} and s["accepted"] == 0
