"""The accuracy gate: FP32 vs each artefact on eval data; refuse a drop over the limit."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pace_edge.export.quantize.accuracy import accuracy_report, describe_failures


def _logits(pred: list[int], classes: int = 3) -> np.ndarray:
    return np.eye(classes)[pred] * 2.0


def test_report_numbers_and_threshold() -> None:
    labels = np.array([0, 1, 2, 0, 1, 2, 0, 1, 2, 0])
    ref = _logits([0, 1, 2, 0, 1, 2, 0, 1, 2, 1])  # 90 %
    same = ref.copy()
    worse = _logits([0, 1, 2, 0, 1, 2, 0, 1, 1, 1])  # 80 %, one flip
    report = accuracy_report(ref, {"a.onnx": ("ort", same), "b.xml": ("ov", worse)}, labels,
                             "data (test)", max_drop=5.0)
    assert report["reference"]["accuracy"] == pytest.approx(0.9)
    a, b = report["artefacts"]
    assert a["drop_pp"] == pytest.approx(0.0) and a["agreement"] == 1.0 and a["passed"]
    assert b["drop_pp"] == pytest.approx(10.0) and b["agreement"] == pytest.approx(0.9)
    assert not b["passed"] and not report["passed"]
    assert "b.xml on ov: 80.00% vs FP32 90.00% (drop 10.00 pp > 5 pp" in describe_failures(report)
    assert "a.onnx" not in describe_failures(report)
    # the limit is inclusive; a negative limit fails even an identical model
    assert accuracy_report(ref, {"b": ("ov", worse)}, labels, "d", max_drop=10.0)["passed"]
    assert not accuracy_report(ref, {"a": ("ort", same)}, labels, "d", max_drop=-0.1)["passed"]


def test_an_artefact_better_than_fp32_passes() -> None:
    labels = np.array([0, 1, 2])
    report = accuracy_report(_logits([0, 1, 1]), {"a": ("ort", _logits([0, 1, 2]))}, labels, "d")
    assert report["artefacts"][0]["drop_pp"] < 0 and report["passed"]


# --- the CLI -----------------------------------------------------------------------------

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from pace_edge.cli.main import main  # noqa: E402
from pace_edge.export.manifest import load_manifest  # noqa: E402


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(data folder with train/test splits, bundle trained briefly on its train split)."""
    from factories import train_synthetic

    return train_synthetic(tmp_path_factory.mktemp("gate"), seed=7, per_class=40,
                           test_per_class=15, epochs=20)


def _export(trained, out: Path, *extra: str) -> list[str]:
    folder, bundle = trained
    return ["export", "--model", str(bundle), "--target", "onnx", "--eval", str(folder),
            "--out", str(out), *extra]


def test_int8_gate_refuses_then_force_accepts(trained, tmp_path: Path, capsys) -> None:
    out = tmp_path / "int8"
    args = _export(trained, out, "--precision", "int8", "--calib", str(trained[0]),
                   "--max-accuracy-drop", "-1")
    assert main(args) == 1  # a quality gate, not a user error
    err = capsys.readouterr().err
    assert "accuracy gate failed" in err and "drop" in err and "> -1 pp" in err
    assert "--force" in err
    # the numbers are written either way, the export marked failed
    manifest = load_manifest(out)
    assert manifest.accuracy["passed"] is False and manifest.accuracy["max_drop_pp"] == -1
    assert "**FAILED**" in (out / "report.md").read_text()
    assert main([*args, "--force"]) == 0
    captured = capsys.readouterr()
    assert "accepted because of --force" in captured.out
    assert "FAILED" in captured.out  # the summary table shows the failing gate
    data = json.loads((out / "manifest.json").read_text())
    assert data["accuracy"]["passed"] is False


def test_fp32_gate_passes_and_records_accuracy(trained, tmp_path: Path, capsys) -> None:
    out = tmp_path / "fp32"
    assert main(_export(trained, out)) == 0
    assert "accuracy on" in capsys.readouterr().out
    acc = load_manifest(out).accuracy
    row = acc["artefacts"][0]
    assert acc["passed"] and acc["spectra"] == 45 and acc["max_drop_pp"] == 1.0
    assert row["artefact"] == "model.onnx" and row["agreement"] == 1.0 and row["drop_pp"] == 0
    # a negative limit fails even an exact FP32 export
    assert main(_export(trained, tmp_path / "strict", "--max-accuracy-drop", "-0.5")) == 1
    assert "accuracy gate failed" in capsys.readouterr().err


def test_force_help_mentions_both_meanings(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["export", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "does not hold a previous export" in text and "--max-accuracy-drop gate" in text
