"""Export manifest: round trip, tamper detection; the export CLI's errors and end-to-end run."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from pace_edge.errors import BundleError, PaceEdgeError
from pace_edge.export.manifest import (
    MANIFEST_FILE,
    Artefact,
    InputSpec,
    Manifest,
    OutputSpec,
    is_export_dir,
    load_manifest,
    write_manifest,
)
from pace_edge.integrity.digest import write_digest


def sample_manifest() -> Manifest:
    return Manifest(
        target="x86",
        precision="fp32",
        artefacts=[
            Artefact("model.onnx", "onnx", "fp32"),
            Artefact("ir/model.xml", "openvino-xml", "fp32"),
        ],
        input=InputSpec("spectrum", 4, "dynamic", [1.0, 2.0, 3.0, 4.0],
                        [{"name": "normalize", "method": "snv"}]),
        output=OutputSpec("logits", 2),
        classes=["a", "b"],
        source={"bundle": "/b", "weights_sha256": "0" * 64, "model": {"dim": 8}},
        opset=20,
        runtime={"openvino": {"config": {"INFERENCE_PRECISION_HINT": "f32"}}},
        parity=[{"artefact": "model.onnx", "max_abs_diff": 1e-7, "agreement": 1.0,
                 "passed": True}],
        executed_graph={"openvino-cpu": {"layer_counts": {"Convolution": 5}}},
        calibration={"method": "minmax", "samples": 300},
        accuracy={"fp32": 0.97, "int8": 0.965},
        versions={"numpy": "2"},
    )


@pytest.fixture
def export_dir(tmp_path: Path) -> Path:
    (tmp_path / "model.onnx").write_bytes(bytes(range(256)) * 4)
    (tmp_path / "ir").mkdir()
    (tmp_path / "ir" / "model.xml").write_text("<net/>")
    write_manifest(tmp_path, sample_manifest())
    return tmp_path


def test_round_trip(export_dir: Path) -> None:
    m = load_manifest(export_dir)
    assert m.path == export_dir
    assert m.to_dict() == json.loads((export_dir / MANIFEST_FILE).read_text())
    assert m.input.batch == "dynamic" and m.input.preprocessing[0]["method"] == "snv"
    assert m.output.name == "logits" and m.classes == ["a", "b"]
    assert m.artefacts[0].bytes == 1024 and len(m.artefacts[0].sha256) == 64
    assert m.artefact("openvino-xml") == export_dir / "ir" / "model.xml"
    assert m.calibration == {"method": "minmax", "samples": 300}
    assert m.parity_passed and is_export_dir(export_dir)
    with pytest.raises(BundleError, match="no tensorrt"):
        m.artefact("tensorrt")


def test_one_changed_byte_is_detected(export_dir: Path) -> None:
    path = export_dir / "model.onnx"
    data = bytearray(path.read_bytes())
    data[100] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(BundleError, match=r"model\.onnx: sha256 .* altered"):
        load_manifest(export_dir)


def test_missing_artefact(export_dir: Path) -> None:
    (export_dir / "ir" / "model.xml").unlink()
    with pytest.raises(BundleError, match=r"ir/model\.xml .*missing"):
        load_manifest(export_dir)


def test_not_an_export(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="manifest.json is missing"):
        load_manifest(tmp_path)
    (tmp_path / MANIFEST_FILE).write_text("{not json")
    write_digest(tmp_path / MANIFEST_FILE, b"{not json")
    with pytest.raises(BundleError, match="not valid JSON"):
        load_manifest(tmp_path)
    rewrite(tmp_path / MANIFEST_FILE, {"format": "other"})
    with pytest.raises(BundleError, match="not a pace-edge export"):
        load_manifest(tmp_path)
    assert not is_export_dir(tmp_path)


def rewrite(path: Path, data: dict) -> None:
    """Replace a manifest and its digest (checks past the digest must still refuse it)."""
    text = json.dumps(data).encode()
    path.write_bytes(text)
    write_digest(path, text)


def test_newer_format_and_escaping_paths(export_dir: Path) -> None:
    path = export_dir / MANIFEST_FILE
    data = json.loads(path.read_text())
    rewrite(path, {**data, "format_version": 99})
    with pytest.raises(BundleError, match="upgrade pace-edge"):
        load_manifest(export_dir)
    data["artefacts"][0]["path"] = "../secret"
    rewrite(path, data)
    with pytest.raises(BundleError, match="leaves the export"):
        load_manifest(export_dir)


def test_manifest_module_is_torch_free() -> None:
    import subprocess

    code = ("import sys, pace_edge.export.manifest, pace_edge.export; "
            "print(sorted({'torch', 'onnx', 'openvino', 'onnxruntime'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# --- the export CLI -------------------------------------------------------------------------


def cli(argv: list[str]) -> int:
    """Run ``pace-edge export``: via the real main once registered, else an equivalent parser."""
    from pace_edge.cli import export
    from pace_edge.cli import main as main_module

    if export in main_module.COMMANDS:
        return main_module.main(["export", *argv])
    parser = argparse.ArgumentParser(prog="pace-edge")
    export.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["export", *argv])
    try:
        return args.run(args)
    except PaceEdgeError as exc:
        print(f"pace-edge export: error: {exc}", file=sys.stderr)
        return 2


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch = pytest.importorskip("torch")
    from pace_edge.bundle import Bundle
    from pace_edge.model import PACE, preset
    from pace_edge.preprocess import Pipeline

    torch.manual_seed(0)
    model = PACE(preset("tiny", 2))
    directory = tmp_path_factory.mktemp("bundle")
    weights = {k: v.numpy() for k, v in model.state_dict().items()}
    Bundle(model.config, weights, ["x", "y"], np.linspace(0, 1, 900), Pipeline([]), {}).save(
        directory
    )
    return directory


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--target", "tensorrt", "--precision", "int8"],
         "target tensorrt does not support precision int8 (it offers fp32, fp16); for INT8 "
         "TensorRT builds use --target jetson"),
        (["--target", "jetson", "--opset", "22"],
         "target jetson is built by TensorRT 10.3, whose ONNX parser reads opsets up to 20, "
         "not 22"),
    ],
)
def test_cli_refuses_unsupported_precision(
    tmp_path: Path, capsys, argv: list[str], message: str
) -> None:
    assert cli(["--model", str(tmp_path), "--out", str(tmp_path / "o"), *argv]) == 2
    assert message in capsys.readouterr().err


def test_cli_unknown_target(tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        cli(["--model", str(tmp_path), "--out", str(tmp_path), "--target", "tpu"])
    assert exc.value.code == 2
    assert "invalid choice: 'tpu'" in capsys.readouterr().err


def test_cli_bad_bundle(tmp_path: Path, bundle_dir: Path, capsys) -> None:
    assert cli(["--model", str(tmp_path / "nope"), "--target", "onnx",
                "--out", str(tmp_path / "o")]) == 2
    assert "does not exist" in capsys.readouterr().err
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "model.json").write_text((bundle_dir / "model.json").read_text())
    (broken / "model.json.sha256").write_text((bundle_dir / "model.json.sha256").read_text())
    assert cli(["--model", str(broken), "--target", "onnx", "--out", str(tmp_path / "o")]) == 2
    assert "weights file weights.safetensors is missing" in capsys.readouterr().err


def test_cli_refuses_non_empty_out(tmp_path: Path, bundle_dir: Path, capsys) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    assert cli(["--model", str(bundle_dir), "--target", "onnx", "--out", str(tmp_path)]) == 2
    assert "--force" in capsys.readouterr().err
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_cli_export_end_to_end(tmp_path: Path, bundle_dir: Path, capsys) -> None:
    pytest.importorskip("onnxruntime")
    out = tmp_path / "export"
    argv = ["--model", str(bundle_dir), "--target", "onnx", "--out", str(out),
            "--parity-samples", "32", "--batch", "2"]
    assert cli(argv) == 0
    printed = capsys.readouterr().out
    assert "model.onnx" in printed and "100.00%" in printed
    m = load_manifest(out)
    assert (m.target, m.precision, m.opset, m.input.batch) == ("onnx", "fp32", 20, 2)
    assert m.input.length == 900 and m.classes == ["x", "y"] and m.parity_passed
    assert m.executed_graph["onnxruntime-cpu"]["op_counts"]["Gelu"] == 5
    assert len(m.source["weights_sha256"]) == 64 and "torch" in m.versions
    assert "Parity with the PyTorch model" in (out / "report.md").read_text()
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "manifest.json.sha256",
                                                     "model.onnx", "report.md"]

    # a previous export is kept without --force, and replaced with it
    before = (out / "manifest.json").read_bytes()
    assert cli(argv) == 2
    assert "already holds an export" in capsys.readouterr().err
    assert (out / "manifest.json").read_bytes() == before
    argv.append("--force")
    assert cli(argv) == 0
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "manifest.json.sha256",
                                                     "model.onnx", "report.md"]

    # a parity failure is reported, exits 2 and marks the manifest failed
    from pace_edge.export import parity

    strict = {**parity.THRESHOLDS, "fp32": (-1.0, 1.0)}  # no result can pass
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(parity, "THRESHOLDS", strict)
        assert cli(argv) == 1  # a failed check, not a user error
    assert "parity check failed (model.onnx on onnxruntime-cpu" in capsys.readouterr().err
    assert not load_manifest(out).parity_passed

    data = bytearray((out / "model.onnx").read_bytes())
    data[-1] ^= 0xFF
    (out / "model.onnx").write_bytes(bytes(data))
    with pytest.raises(BundleError, match="model.onnx"):
        load_manifest(out)
