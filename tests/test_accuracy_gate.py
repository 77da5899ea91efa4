"""The accuracy gate: FP32 vs each artefact on eval data; refuse an artefact the set shows
disagrees with FP32 more than the limit allows (exact binomial bound)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pace_edge.export.quantize.accuracy import accuracy_report, describe_failures


def _logits(pred: list[int], classes: int = 3) -> np.ndarray:
    return np.eye(classes)[pred] * 2.0


def test_report_numbers_and_statistical_gate() -> None:
    labels = np.array([0, 1, 2, 0, 1, 2, 0, 1, 2, 0])
    ref = _logits([0, 1, 2, 0, 1, 2, 0, 1, 2, 1])  # 90 %
    same = ref.copy()
    one_flip = _logits([0, 1, 2, 0, 1, 2, 0, 1, 1, 1])  # 80 %, one flip
    many = _logits([1, 2, 0, 0, 1, 2, 0, 0, 1, 1])  # 40 %, five flips
    report = accuracy_report(ref, {"a.onnx": ("ort", same), "b.xml": ("ov", one_flip),
                                   "c.xml": ("ov", many)}, labels, "data (test)", max_drop=5.0)
    assert report["reference"]["accuracy"] == pytest.approx(0.9)
    a, b, c = report["artefacts"]
    assert a["drop_pp"] == pytest.approx(0.0) and a["agreement"] == 1.0 and a["passed"]
    # one lost spectrum in 10 is 10 pp, but the set cannot show a loss above 5 pp
    assert b["drop_pp"] == pytest.approx(10.0) and b["agreement"] == pytest.approx(0.9)
    assert b["flips"] == 1 and b["fp32_only_right"] == 1 and b["artefact_only_right"] == 0
    assert b["lost_lower_pp"] < 5.0 and b["passed"]
    assert c["flips"] == 5 and c["lost_lower_pp"] > 5.0 and not c["passed"]
    assert c["mcnemar_p_worse"] == pytest.approx(1 / 32)  # 5 of 5 discordant pairs: FP32
    assert not report["passed"]
    failures = describe_failures(report)
    assert failures.startswith("c.xml on ov: 5 of 10 spectra right on FP32 are wrong (lost ≥ ")
    assert "> 5 pp; accuracy 40.00% vs FP32 90.00%)" in failures
    assert "a.onnx" not in failures and "b.xml" not in failures
    assert report["resolution"]["text"].startswith("10 spectra: one flip = 10.00 pp")
    # a negative limit fails even an identical model
    assert not accuracy_report(ref, {"a": ("ort", same)}, labels, "d", max_drop=-0.1)["passed"]


def test_gate_on_93_spectra_passes_one_flip_and_fails_several() -> None:
    labels = np.zeros(93, dtype=int)
    ref = _logits([0] * 93)  # right on every spectrum: each flip loses one
    for flips, passed in ((0, True), (1, True), (3, True), (4, False), (9, False)):
        cand = _logits([1] * flips + [0] * (93 - flips))
        report = accuracy_report(ref, {"m": ("ort", cand)}, labels, "d", max_drop=1.0)
        assert report["passed"] is passed, flips
    assert report["resolution"]["max_passing_flips"] == 3
    assert report["resolution"]["flip_pp"] == pytest.approx(100 / 93)


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
    assert "accuracy gate failed" in err and "right on FP32 are wrong" in err and "> -1 pp" in err
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
