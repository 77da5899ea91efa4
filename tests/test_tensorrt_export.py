"""Targets ``tensorrt`` and ``jetson``: files, manifest entries, engine-check data, Q/DQ.

No engine is built at export time, so everything here runs without TensorRT; the INT8 Q/DQ
model is checked against TensorRT's explicit-quantisation rules and run by ONNX Runtime.
INT8 comes from the quantize pipeline (calibration from ``--calib``, sensitivity search, QDQ).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from test_export_onnx import make_bundle  # noqa: E402

from pace_edge.cli.main import main  # noqa: E402
from pace_edge.data import SpectralDataset, write_npy_folder  # noqa: E402
from pace_edge.export import TENSORRT_MAX_OPSET, get_target  # noqa: E402
from pace_edge.export.manifest import load_manifest  # noqa: E402
from pace_edge.export.parity import onnx_logits, parity_inputs  # noqa: E402
from pace_edge.export.qdq_rules import check_qdq  # noqa: E402
from pace_edge.export.trt_verify import load_check_data  # noqa: E402

L = 256


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("trt") / "bundle"
    make_bundle(path, L)
    return path


def export(bundle: Path, out: Path, *args: str) -> int:
    return main(["export", "--model", str(bundle), "--parity-samples", "32", "--out", str(out),
                 *args])


def check_data_matches_onnxruntime(out: Path, source: str) -> None:
    """The saved engine-check logits are ONNX Runtime's on the saved spectra, for ``source``."""
    manifest = load_manifest(out)
    data = load_check_data(manifest, source)
    assert data.spectra.shape == (32, L) and data.reference.shape == (32, 3)
    np.testing.assert_allclose(data.reference, onnx_logits(out / source, data.spectra,
                                                           manifest.input.batch),
                               rtol=0, atol=1e-6)
    assert "onnxruntime" in data.reference_runtime


def test_tensorrt_fp16_dynamic(bundle_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert export(bundle_dir, out, "--target", "tensorrt", "--precision", "fp16") == 0
    manifest = load_manifest(out)
    assert [(a.path, a.kind, a.precision) for a in manifest.artefacts] == [
        ("model.onnx", "onnx", "fp32"),
        ("engine_check_spectra.f32", "engine-check-spectra", "fp32"),
        ("engine_check_model.f32", "engine-check-logits", "fp32"),
    ]
    trt = manifest.runtime["tensorrt"]
    assert trt["engine_built"] is False and "specific to the TensorRT version" in trt["note"]
    assert trt["profile"] == {"min": 1, "opt": 8, "max": 64}
    assert trt["input"]["name"] == "spectrum" and trt["input"]["dtype"] == "float32"
    assert (trt["input"]["min_shape"], trt["input"]["max_shape"]) == ([1, L], [64, L])
    assert trt["builder_flags"] == ["FP16"] and trt["precision"] == "fp16"
    assert trt["cleared_flags"] == ["TF32"]
    assert trt["tensorrt_version"] == "10.3" and trt["max_opset"] == 20
    assert trt["build"] == {"python": "pace-edge build-engine --export .",
                            "native": "pace-stream --build-engine --model ."}
    assert trt["engine_check"]["tolerances"]["fp16"] == {"max_abs": 5e-2, "min_agreement": 0.99}
    assert not list(out.glob("*.sh")) and not (out / "model.plan").exists()
    assert manifest.parity[0]["artefact"] == "model.onnx" and manifest.parity[0]["passed"]
    assert manifest.parity[0]["precision"] == "fp32"  # the ONNX is FP32; FP16 is TensorRT's
    check_data_matches_onnxruntime(out, "model.onnx")


def test_tensorrt_fixed_batch(bundle_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert export(bundle_dir, out, "--target", "tensorrt", "--batch", "4") == 0
    trt = load_manifest(out).runtime["tensorrt"]
    assert trt["profile"] == {"min": 4, "opt": 4, "max": 4}
    assert trt["input"]["dynamic_batch"] is False and trt["builder_flags"] == []
    dims = onnx.load(out / "model.onnx").graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_value for d in dims] == [4, L]
    check_data_matches_onnxruntime(out, "model.onnx")  # 32 spectra through a batch-4 model


def test_plain_jetson_export_is_fp16_and_says_so(bundle_dir: Path, tmp_path: Path,
                                                 capsys) -> None:
    """Only --model and --out: FP16, the opset capped for TensorRT 10.3, the choice explained."""
    out = tmp_path / "out"
    assert main(["export", "--model", str(bundle_dir), "--target", "jetson", "--out", str(out),
                 "--parity-samples", "32"]) == 0
    printed = capsys.readouterr().out
    assert "jetson: FP16 (no --calib given); --calib DATA" in printed
    manifest = load_manifest(out)
    assert manifest.precision == "fp16" and manifest.target == "jetson"
    assert manifest.opset == TENSORRT_MAX_OPSET["10.3"] == 20
    assert onnx.load(out / "model.onnx").opset_import[0].version == 20
    trt = manifest.runtime["tensorrt"]
    assert trt["precision"] == "fp16" and trt["max_opset"] == 20
    assert main(["export", "--model", str(bundle_dir), "--target", "jetson", "--precision",
                 "fp32", "--out", str(tmp_path / "fp32"), "--parity-samples", "32"]) == 0
    assert load_manifest(tmp_path / "fp32").runtime["tensorrt"]["builder_flags"] == []


def test_opset_cap(bundle_dir: Path, tmp_path: Path, capsys) -> None:
    assert main(["export", "--model", str(bundle_dir), "--target", "jetson", "--opset", "21",
                 "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.strip() == ("pace-edge export: error: target jetson is built by TensorRT 10.3, "
                           "whose ONNX parser reads opsets up to 20, not 21")
    assert get_target("onnx", "fp32").opset(None) == 20  # the default elsewhere, uncapped
    assert get_target("onnx", "fp32").opset(21) == 21
    assert get_target("tensorrt", "fp32").opset(None) == 20


def test_target_specs() -> None:
    assert get_target("tensorrt", "fp16").precisions == ("fp32", "fp16")
    assert get_target("jetson", "int8").precisions == ("fp32", "fp16", "int8")
    assert get_target("jetson", "fp16").max_opset == 20


# --- jetson INT8 -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def calib_dir(tmp_path_factory: pytest.TempPathFactory, bundle_dir: Path) -> Path:
    """Training spectra on the bundle's axis, written as an npy folder (``--calib``)."""
    from pace_edge.bundle import Bundle

    bundle = Bundle.load(bundle_dir)
    x = parity_inputs(L, 90, seed=11).astype(np.float64)
    data = SpectralDataset(x, np.arange(90) % len(bundle.classes), bundle.axis,
                           list(bundle.classes), source="synthetic")
    return write_npy_folder(tmp_path_factory.mktemp("calib") / "data", data)


def int8_export(bundle: Path, out: Path, calib: Path, *args: str) -> int:
    """``--calib`` alone makes a jetson export INT8 (Q/DQ). The bundle is untrained, so no
    float-layer choice meets the sensitivity tolerance: ``--force`` accepts that (these tests
    check the artefacts, not the model's quality)."""
    return export(bundle, out, "--target", "jetson", "--calib", str(calib), "--calib-size", "48",
                  "--force", *args)


def test_jetson_int8(bundle_dir: Path, calib_dir: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    assert int8_export(bundle_dir, out, calib_dir) == 0
    assert "jetson: INT8 (Q/DQ, FP16 fallback) calibrated on" in capsys.readouterr().out
    manifest = load_manifest(out)
    files = [(a.path, a.kind, a.precision) for a in manifest.artefacts]
    assert files[0] == ("model.onnx", "onnx", "fp32")
    assert {("model_int8_qdq.onnx", "onnx", "int8"),
            ("engine_check_model_int8_qdq.f32", "engine-check-logits", "fp32"),
            ("engine_check_model.f32", "engine-check-logits", "fp32")} <= set(files)
    assert not [f for f in files if "cache" in f[0] or f[0].endswith(".sh")]  # QDQ is the path
    assert all((out / a.path).is_file() for a in manifest.artefacts)
    qdq = onnx.load(out / "model_int8_qdq.onnx")
    assert check_qdq(qdq) == []
    assert [i.name for i in qdq.graph.input] == ["spectrum"]
    assert [o.name for o in qdq.graph.output] == ["logits"]
    # TensorRT's file keeps every quantised weight behind its DequantizeLinear (the ONNX
    # Runtime file folds some; see fold_unfused_weights).
    producers = {o: n for n in qdq.graph.node for o in n.output}
    assert manifest.calibration["artefacts"]["onnx"].get("float_output_layers") is None
    assert all(producers[n.input[1]].op_type == "DequantizeLinear"
               for n in qdq.graph.node if n.op_type == "Conv" and n.input[1] in producers)

    trt = manifest.runtime["tensorrt"]
    assert trt["onnx"] == "model_int8_qdq.onnx" and trt["quantization"] == "explicit (Q/DQ)"
    assert trt["builder_flags"] == ["INT8", "FP16"] and trt["fallback"] == "fp16"
    assert trt["engine_built"] is False and trt["profile"] == {"min": 1, "opt": 8, "max": 64}
    assert trt["cleared_flags"] == ["TF32"] and "calibration_cache" not in trt
    check_data_matches_onnxruntime(out, "model_int8_qdq.onnx")
    check_data_matches_onnxruntime(out, "model.onnx")
    rows = {r["artefact"]: r for r in manifest.parity}
    assert rows["model.onnx"]["precision"] == "fp32" and rows["model.onnx"]["passed"]
    assert rows["model_int8_qdq.onnx"]["precision"] == "int8"
    assert "onnxruntime-cpu (model_int8_qdq.onnx)" in manifest.executed_graph
    assert "tensorrt_cache" not in manifest.calibration
    assert "method" in manifest.calibration  # the quantize pipeline's record is kept
    assert "INT8 calibration" in (out / "report.md").read_text()


def test_jetson_refuses_non_conforming_qdq(bundle_dir: Path, calib_dir: Path, tmp_path: Path,
                                           capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    """A QDQ model TensorRT would not take (here: UINT8 activations) is refused, not shipped."""
    from onnx import TensorProto, numpy_helper

    import pace_edge.export.tensorrt_target as target

    original = target.export_int8

    def uint8_activations(bundle, out_dir, options, kinds):
        result = original(bundle, out_dir, options, kinds)
        path = Path(out_dir) / "model.onnx"
        model = onnx.load(path)
        for t in model.graph.initializer:
            if t.data_type == TensorProto.INT8 and t.name.endswith("_zero_point") and not t.dims:
                t.CopyFrom(numpy_helper.from_array(np.array(128, np.uint8), t.name))
        onnx.save_model(model, str(path))
        return result

    monkeypatch.setattr(target, "export_int8", uint8_activations)
    out = tmp_path / "out"
    assert int8_export(bundle_dir, out, calib_dir) == 2
    err = capsys.readouterr().err
    assert "model_int8_qdq.onnx breaks TensorRT's explicit-quantisation rules" in err
    assert "UINT8, not INT8" in err and len(err.strip().splitlines()) == 1
    assert not (out / "manifest.json").exists()
