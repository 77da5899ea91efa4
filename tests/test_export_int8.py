"""INT8 export end to end: ONNX QDQ and OpenVINO (NNCF) from a small trained model, the CLI."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from pace_edge.bundle import Bundle  # noqa: E402
from pace_edge.cli.main import main  # noqa: E402
from pace_edge.data import load_dataset, make_synthetic, write_npy_folder  # noqa: E402
from pace_edge.export import ExportOptions, get_target  # noqa: E402
from pace_edge.export.exporter import export_bundle  # noqa: E402
from pace_edge.export.manifest import load_manifest  # noqa: E402
from pace_edge.export.quantize import check_qdq  # noqa: E402
from pace_edge.model import preset  # noqa: E402
from pace_edge.preprocess import Pipeline  # noqa: E402
from pace_edge.train import Recipe  # noqa: E402
from pace_edge.train.bundle_training import train_bundle  # noqa: E402


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(data folder, bundle): a tiny PACE trained briefly on SYNTHETIC spectra (~98 % test)."""
    from factories import train_synthetic

    return train_synthetic(tmp_path_factory.mktemp("int8"), seed=5, per_class=60,
                           test_per_class=20, epochs=30)


def test_int8_is_enabled_for_cpu_targets_only() -> None:
    for name in ("onnx", "openvino", "x86"):
        assert get_target(name, "int8").name == name


def test_x86_int8_api(trained, tmp_path: Path) -> None:
    pytest.importorskip("openvino")
    pytest.importorskip("nncf")
    folder, bundle_dir = trained
    bundle = Bundle.load(bundle_dir)
    test = load_dataset(folder, split="test")
    # no calib: the bundle's recorded training source (the folder's train split) is used
    result = export_bundle(bundle, "x86", tmp_path,
                           ExportOptions(precision="int8", evaluation=test, calib_size=96)
                           ).manifest
    kinds = sorted(a.kind for a in result.artefacts)
    assert kinds == ["figure", "figure", "onnx", "openvino-bin", "openvino-xml"]
    for a in result.artefacts:
        assert (tmp_path / a.path).is_file()
    assert result.status["passed"] and result.calibration["met"]
    assert check_qdq(tmp_path / "model.onnx") == []
    # ONNX Runtime's file: the head (float logits) and other layers with float outputs have
    # their weights stored dequantized, so ONNX Runtime does not dequantize them per call.
    assert result.calibration["artefacts"]["onnx"]["float_output_layers"]
    # parity on held-out training spectra: INT8 agrees with FP32
    assert len(result.parity) == 2
    for row in result.parity:
        assert row["precision"] == "int8" and row["agreement"] >= 0.99 and row["passed"]
    cal = result.calibration
    assert cal["size"] == 96 and cal["methods_tried"][0]["method"] == "percentile"
    assert cal["split"] == "train"
    assert sum(cal["class_counts"].values()) == 96
    assert {r["layer"] for r in cal["sensitivity"]} >= {"pool", "embed", "head"}
    # the search starts all INT8 and keeps the cheapest float set that met the criterion
    assert cal["search"][0]["float"] == []
    assert cal["float_layers"] in [s["float"] for s in cal["search"] if s["ok"]]
    assert cal["verdict"]["met"] and cal["predicted_speedup"] > 1
    ov = cal["artefacts"]["openvino"]
    assert ov["int8_layers"] and set(ov["float_layers"]) >= set(cal["float_layers"])
    # accuracy on the test split: one borderline spectrum (FP32 margin 0.09) may flip
    acc = result.accuracy
    assert acc["spectra"] == 60 and acc["reference"]["accuracy"] > 0.9
    for row in acc["artefacts"]:
        assert row["agreement"] >= 59 / 60 and row["drop_pp"] <= 100 / 60 + 1e-9
    import openvino as ov_rt

    model = ov_rt.Core().read_model(str(tmp_path / "model.xml"))
    assert sum(op.get_type_name() == "FakeQuantize" for op in model.get_ops()) > 0
    assert result.runtime["openvino"]["config"] == {"INFERENCE_PRECISION_HINT": "f32"}


def test_cli_int8_onnx_manifest_report_and_figures(trained, tmp_path: Path, capsys) -> None:
    folder, bundle_dir = trained
    out = tmp_path / "export"
    code = main(["export", "--model", str(bundle_dir), "--target", "onnx", "--precision",
                 "int8", "--calib", str(folder), "--calib-size", "all", "--calib-method",
                 "minmax", "--eval", str(folder), "--out", str(out), "--force"])
    printed = capsys.readouterr().out
    # --force: with minmax ranges the tiny model's search may stop just outside its tolerance
    # (recorded as an accepted gate); this test is about what the export writes
    assert code == 0
    assert "INT8 calibration: minmax" in printed and "accuracy on" in printed
    manifest = load_manifest(out)  # every artefact, figures included, hash-verified
    assert manifest.precision == "int8"
    cal = manifest.calibration
    assert cal["method"] == "minmax" and cal["requested_size"] == "all"
    assert set(cal["class_counts"]) == set(manifest.classes)
    assert "float_layers" in cal and "sensitivity" in cal
    assert manifest.accuracy["passed"] and manifest.status["failed_gates"] == []
    assert set(manifest.status["accepted_gates"]) <= {"sensitivity"}
    report = (out / "report.md").read_text()
    assert "What this set can resolve: 60 spectra: one flip = 1.67 pp" in report
    for png in ("int8_activations.png", "int8_sensitivity.png"):
        assert f"]({png})" in report
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "## INT8 calibration" in report and "## Accuracy on eval data" in report
    data = json.loads((out / "manifest.json").read_text())
    assert data["calibration"]["size"] == cal["size"]


def test_calibration_flags_need_int8(trained, tmp_path: Path, capsys) -> None:
    folder, bundle_dir = trained
    code = main(["export", "--model", str(bundle_dir), "--target", "onnx", "--calib",
                 str(folder), "--out", str(tmp_path / "x")])
    assert code == 2 and "--calib only apply to --precision int8" in capsys.readouterr().err


@pytest.mark.parametrize("given, expected", [("none", []),
                                             ("embed, blocks.0.dw", ["embed", "blocks.0.dw"])])
def test_float_layers_override_the_measured_choice(trained, tmp_path: Path, capsys,
                                                   given: str, expected: list[str]) -> None:
    folder, bundle_dir = trained
    out = tmp_path / "export"
    code = main(["export", "--model", str(bundle_dir), "--target", "onnx", "--precision",
                 "int8", "--calib", str(folder), "--float-layers", given, "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    cal = load_manifest(out).calibration
    assert sorted(cal["float_layers"]) == sorted(expected)
    assert [step["float"] for step in cal["search"]][-1] == cal["float_layers"]
    quantized = {n.name for n in onnx.load(str(out / "model.onnx")).graph.node
                 if n.op_type == "QuantizeLinear"}
    assert quantized  # the rest is INT8


def test_unknown_float_layer_is_a_user_error(trained, tmp_path: Path, capsys) -> None:
    folder, bundle_dir = trained
    out = tmp_path / "export"
    code = main(["export", "--model", str(bundle_dir), "--target", "onnx", "--precision",
                 "int8", "--calib", str(folder), "--float-layers", "blocks.9", "--out",
                 str(out)])
    err = capsys.readouterr().err
    assert code == 2 and "no quantisable layer 'blocks.9'" in err and "Traceback" not in err
    assert not (out / "manifest.json").exists()
    code = main(["export", "--model", str(bundle_dir), "--target", "onnx", "--float-layers",
                 "none", "--out", str(tmp_path / "fp32")])
    assert code == 2 and "--float-layers only apply to --precision int8" in (
        capsys.readouterr().err)


def test_int8_without_calibration_source_is_refused(synthetic_bundle: Path, tmp_path: Path,
                                                    capsys) -> None:
    code = main(["export", "--model", str(synthetic_bundle), "--target", "onnx", "--precision",
                 "int8", "--out", str(tmp_path / "x")])
    err = capsys.readouterr().err
    assert code == 2 and "needs calibration spectra: pass --calib DATA" in err


def test_unmappable_calibration_axis_is_refused(trained, tmp_path: Path, capsys) -> None:
    _, bundle_dir = trained
    narrow = make_synthetic(n_per_class=5, axis=np.linspace(1000.0, 1800.0, 300), seed=1)
    folder = write_npy_folder(tmp_path / "narrow", narrow)
    code = main(["export", "--model", str(bundle_dir), "--target", "onnx", "--precision",
                 "int8", "--calib", str(folder), "--out", str(tmp_path / "x")])
    err = capsys.readouterr().err
    assert code == 2 and "cannot be mapped onto the model's axis" in err


def test_cov_small_int8_accuracy(cov_dir: Path, tmp_path: Path) -> None:
    """Real data: a small PACE trained briefly on COV keeps its test accuracy in INT8."""
    train = load_dataset(cov_dir)
    test = load_dataset(cov_dir, split="test")
    bundle, _ = train_bundle(train, preset("small", len(train.classes)),
                             Recipe(epochs=15, lr=1e-3, seed=0, calibration_fraction=0.0),
                             Pipeline([]))
    bundle.save(tmp_path / "bundle")
    result = export_bundle(bundle, "onnx", tmp_path / "export", ExportOptions(
        precision="int8", calib=train, evaluation=test)).manifest
    row = result.accuracy["artefacts"][0]
    # the float layers are chosen on 74 held-out TRAINING spectra (expected disagreement
    # <= 0.5 % there); on the 93 test spectra this briefly trained, unnormalised model has
    # borderline spectra: up to 2 flips (the statistical gate's verdict) are accepted
    assert row["agreement"] >= 0.97 and result.accuracy["passed"], result.accuracy
    assert abs(row["drop_pp"]) <= 1.1, result.accuracy


# --- test data only measure; a search outside its tolerance fails the export ----------------

MODEL_KINDS = ("onnx", "openvino-xml", "openvino-bin")


def _model_bytes(out: Path) -> dict[str, bytes]:
    manifest = load_manifest(out)
    return {a.path: (out / a.path).read_bytes() for a in manifest.artefacts
            if a.kind in MODEL_KINDS}


@pytest.mark.parametrize("target", ["x86", "openvino"])
def test_int8_export_is_byte_identical_with_or_without_eval(trained, tmp_path: Path,
                                                            target: str) -> None:
    """The evaluation data only measure: the same bundle, target and options give the same
    model files whether or not --eval is given (calibration, the sensitivity search and NNCF's
    accuracy control see training spectra only)."""
    pytest.importorskip("openvino")
    pytest.importorskip("nncf")
    folder, bundle_dir = trained
    test = load_dataset(folder, split="test")
    options = ExportOptions(precision="int8", calib=folder, calib_size=64)
    plain = export_bundle(bundle_dir, target, tmp_path / "plain", options)
    with_eval = export_bundle(bundle_dir, target, tmp_path / "eval",
                              replace(options, evaluation=test))
    assert plain.manifest.accuracy is None and with_eval.manifest.accuracy is not None
    files = _model_bytes(tmp_path / "plain")
    assert set(files) >= {"model.xml", "model.bin"}
    assert files == _model_bytes(tmp_path / "eval")
    cal = plain.manifest.calibration  # the criterion is judged on held-out training spectra
    assert cal["check_spectra"] == cal["holdout"] == cal["verdict"]["spectra"]
    assert plain.manifest.calibration["split"] == "train"


def test_sensitivity_search_outside_its_tolerance_fails_the_export(
    trained, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    import pace_edge.export.quantize.pipeline as pipeline

    folder, bundle_dir = trained
    from pace_edge.export.quantize.criterion import Criterion

    # no build can meet it, not even every layer float
    monkeypatch.setattr(pipeline, "Criterion", lambda: Criterion(max_expected_disagreement=-1))
    out = tmp_path / "export"
    args = ["export", "--model", str(bundle_dir), "--target", "onnx", "--precision", "int8",
            "--calib", str(folder), "--calib-size", "64", "--out", str(out)]
    assert main(args) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert ("sensitivity gate failed: no INT8 build with at most half the layers float meets "
            "the criterion") in err
    assert "--force accepts it" in err
    manifest = load_manifest(out)
    assert manifest.status["failed_gates"] == ["sensitivity"] and not manifest.status["passed"]
    assert manifest.calibration["met"] is False
    assert "not met" in (out / "report.md").read_text()

    assert main(["info", str(out)]) == 0
    assert "status     FAILED its sensitivity gate" in capsys.readouterr().out

    # runners refuse it, naming the gate and the flag, unless --allow-failed
    spectrum = tmp_path / "s.npy"
    np.save(spectrum, load_dataset(folder, split="test").x[0])
    assert main(["predict", "--model", str(out), str(spectrum)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("pace-edge predict: error: ")
    assert "failed its sensitivity gate" in err and "--allow-failed" in err
    assert main(["predict", "--model", str(out), "--allow-failed", str(spectrum)]) == 0
    assert "s.npy" in capsys.readouterr().out
    from pace_edge.errors import BundleError
    from pace_edge.runtimes import load_runner

    with pytest.raises(BundleError, match="sensitivity gate"):
        load_runner(out)
    load_runner(out, allow_failed=True).close()

    # --force accepts it: recorded as accepted, runners take it
    assert main([*args, "--force"]) == 0
    assert "accepted because of --force" in capsys.readouterr().out
    manifest = load_manifest(out)
    assert manifest.status["failed_gates"] == []
    assert manifest.status["accepted_gates"] == ["sensitivity"]
    load_runner(out).close()
