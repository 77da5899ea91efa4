"""Smoke tests of the measurement scripts behind README.md's figures (``scripts/``,
``benchmarks/*.py``): each runs on tiny SYNTHETIC inputs in seconds, so none can rot, and the
numbers they print are checked against what the library itself computes."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]

torch = pytest.importorskip("torch")


def load(relative: str) -> ModuleType:
    """Import a script by its path (scripts/ and benchmarks/ are not packages)."""
    path = ROOT / relative
    name = "script_" + path.stem
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    if str(path.parent) not in sys.path:
        sys.path.insert(0, str(path.parent))  # benchmarks/ scripts import _stream_tools
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def synthetic_folder(tmp_path_factory) -> Path:
    from pace_edge.data import make_synthetic, write_npy_folder

    return write_npy_folder(tmp_path_factory.mktemp("scripts") / "data",
                            make_synthetic(n_per_class=16, seed=1),
                            make_synthetic(n_per_class=5, seed=2))


def test_precise_bn_curve_replays_the_training_run(synthetic_folder, tmp_path, capsys):
    """The replayed selection is the one ``fit`` runs (same validation scores per epoch) and
    the refit's precise-BN model is the one ``train`` would save."""
    script = load("scripts/precise_bn_curve.py")
    from pace_edge.data import load_dataset
    from pace_edge.model import preset
    from pace_edge.preprocess import Pipeline
    from pace_edge.train import Recipe
    from pace_edge.train.bundle_training import train_bundle

    spec = "baseline:asls,normalize:snv"
    out = tmp_path / "curve.json"
    script.main(["--data", str(synthetic_folder), "--eval", str(synthetic_folder),
                 "--preset", "tiny", "--epochs", "3", "--from-epoch", "1", "--mean-from", "2",
                 "--preprocess", spec, "--json", str(out)])
    printed = capsys.readouterr().out
    assert "precise BN scored better at" in printed and "precise BN (default): test" in printed
    result = json.loads(out.read_text())["results"][0]
    data = load_dataset(synthetic_folder)
    _, fitted = train_bundle(data, preset("tiny", 3),
                             Recipe(epochs=3, seed=0, calibration_fraction=0.0),
                             Pipeline.from_spec(spec))
    assert [r["epoch"] for r in result["epochs"]] == [1, 2, 3]
    assert np.allclose([r["val_accuracy"] for r in result["epochs"]],
                       [r["val_accuracy"] for r in fitted.history])
    assert np.allclose([r["val_loss"] for r in result["epochs"]],
                       [r["val_loss"] for r in fitted.history], atol=1e-5)
    assert result["selected_epoch"] == fitted.best_epoch
    assert set(result["test"]) >= {"precise BN (default)",
                                   "running statistics (--no-precise-bn)"}
    for score in result["test"].values():
        assert score["total"] == 15 and 0 <= score["correct"] <= 15
    s = result["summary"]
    assert s["epochs_compared"] == 3 and 0 <= s["share_better"] + s["share_worse"] <= 1

    # the default-recipe variant is the saved model: same logits on the test spectra
    train = script.prepared(data, Pipeline.from_spec(spec).anchored(data.axis))
    variants = script.refit_variants(train, preset("tiny", 3), Recipe(epochs=3, seed=0),
                                     fitted.best_epoch, torch.device("cpu"), 0.9)
    x = torch.as_tensor(train.x[:8], dtype=torch.float32)
    with torch.inference_mode():
        assert torch.allclose(variants["precise BN (default)"](x), fitted.model(x), atol=1e-5)


def test_verify_export_cost_times_both_checks(tmp_path, capsys):
    script = load("benchmarks/verify_export_cost.py")
    from pace_edge.integrity.signing import SignatureError, generate_key_pair

    script.main(["--workdir", str(tmp_path), "--preset", "tiny", "--number", "2",
                 "--repeat", "1", "--json"])
    result = json.loads(capsys.readouterr().out.splitlines()[-1])  # after export's report
    assert result["unsigned_check_ms"] > 0 and result["signature_check_ms"] > 0
    assert result["export_bytes"] > 900 * 256 * 4  # the input pool's matrix alone
    # an export signed by another key is refused, not timed
    _, other = generate_key_pair(tmp_path / "other", "other")
    keys = tmp_path / "other-trusted"
    keys.mkdir()
    (keys / other.name).write_bytes(other.read_bytes())
    with pytest.raises(SignatureError):
        script.measure(tmp_path / "onnx-tiny", keys, 1, 1)


def _peak_rss_kib(script: ModuleType, tmp_path: Path, code: str) -> int:
    import subprocess

    out = tmp_path / "rss"
    subprocess.run([sys.executable, "-c", script.RUSAGE_WRAPPER, str(out), sys.executable,
                    "-c", code], check=True, timeout=60)
    return int(out.read_text())


def test_native_vs_python_peak_rss_is_the_streams_own(tmp_path):
    """The wrapper reports the child's memory, not this (torch-sized) test process's."""
    script = load("benchmarks/native_vs_python.py")
    small = _peak_rss_kib(script, tmp_path, "pass")
    big = _peak_rss_kib(script, tmp_path, "b = b'x' * (300 * 2**20)")
    assert small < 100 * 1024 and big > small + 250 * 1024


def test_native_vs_python_streams_and_tabulates(tmp_path, capsys):
    script = load("benchmarks/native_vs_python.py")
    out = tmp_path / "runs.json"
    assert script.main(["--workdir", str(tmp_path), "--frames", "12", "--rate", "200",
                        "--json", str(out)]) == 0
    runs = json.loads(out.read_text())["runs"]
    assert [r["implementation"] for r in runs] == ["pace-edge stream"]  # no --native given
    run = runs[0]
    assert run["classified"] == run["received"] == 12
    assert 0 < run["preprocess_p50_ms"] <= run["total_p50_ms"] <= run["total_p99_ms"]
    assert 30 < run["peak_rss_mib"] < 2048
    assert "| `pace-edge stream` (Python) |" in capsys.readouterr().out
    row = dict(run, implementation="pace-stream", total_p50_ms=1.0, total_p99_ms=3.0,
               preprocess_p50_ms=0.02, peak_rss_mib=60.0)
    text = script.table([row, dict(row, total_p50_ms=2.0), dict(row, total_p50_ms=9.0)])
    assert "| `build/pace-stream` (C++) | 2.00 / 3.00 ms | 0.020 ms | 60 MiB |" in text


def test_ort_int8_fold_keeps_logits_and_times_both(tmp_path, capsys):
    script = load("benchmarks/ort_int8_fold.py")
    script.main(["--workdir", str(tmp_path), "--preset", "tiny", "--batch", "1", "4",
                 "--iterations", "4", "--blocks", "2", "--threads", "1", "--json"])
    result = json.loads(capsys.readouterr().out.splitlines()[-1])  # after export's report
    assert result["folded_layers"]  # the float input pool's MatMul at least
    assert result["size_mb"]["folded"] > result["size_mb"]["all_qdq"]
    assert [r["batch"] for r in result["runs"]] == [1, 4]
    for r in result["runs"]:
        assert r["calls"] == 4 and r["max_abs_logit_diff"] < 1e-4
        assert r["p50_ms"]["folded"] > 0 and r["p50_ms"]["all_qdq"] > 0
