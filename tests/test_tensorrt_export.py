"""Targets ``tensorrt`` and ``jetson``: files, manifest entries, build script, Q/DQ and cache.

No engine is built at export time, so everything here runs without TensorRT; the INT8 Q/DQ
model is checked against TensorRT's explicit-quantisation rules and run by ONNX Runtime.
INT8 comes from the quantize pipeline (calibration from ``--calib``, sensitivity search, QDQ).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from test_export_onnx import make_bundle  # noqa: E402

from pace_edge.cli.main import main  # noqa: E402
from pace_edge.data import SpectralDataset, write_npy_folder  # noqa: E402
from pace_edge.export import get_target  # noqa: E402
from pace_edge.export.manifest import load_manifest  # noqa: E402
from pace_edge.export.parity import parity_inputs  # noqa: E402
from pace_edge.export.qdq_rules import check_qdq  # noqa: E402
from pace_edge.export.trt_calibration_cache import read_cache  # noqa: E402

L = 256


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("trt") / "bundle"
    make_bundle(path, L)
    return path


def export(bundle: Path, out: Path, *args: str) -> int:
    return main(["export", "--model", str(bundle), "--parity-samples", "32", "--out", str(out),
                 *args])


def script_ok(path: Path) -> str:
    text = path.read_text()
    assert text.startswith("#!/bin/sh\n") and os.access(path, os.X_OK)
    if shutil.which("sh"):
        subprocess.run(["sh", "-n", str(path)], check=True)  # syntax only
    return text


def test_tensorrt_fp16_dynamic(bundle_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert export(bundle_dir, out, "--target", "tensorrt", "--precision", "fp16") == 0
    manifest = load_manifest(out)
    assert [(a.path, a.kind, a.precision) for a in manifest.artefacts] == [
        ("model.onnx", "onnx", "fp32"),
        ("build_engine.sh", "tensorrt-build-script", "fp16"),
    ]
    trt = manifest.runtime["tensorrt"]
    assert trt["engine_built"] is False and "specific to the TensorRT version" in trt["note"]
    assert trt["profile"] == {"min": 1, "opt": 8, "max": 64}
    assert trt["input"]["name"] == "spectrum" and trt["input"]["dtype"] == "float32"
    assert (trt["input"]["min_shape"], trt["input"]["max_shape"]) == ([1, L], [64, L])
    assert trt["builder_flags"] == ["FP16"] and trt["precision"] == "fp16"
    assert trt["trtexec"] == (
        f"trtexec --onnx=model.onnx --saveEngine=model.engine --fp16 "
        f"--minShapes=spectrum:1x{L} --optShapes=spectrum:8x{L} --maxShapes=spectrum:64x{L} "
        "--memPoolSize=workspace:1024M --skipInference"
    )
    script = script_ok(out / "build_engine.sh")
    assert f'"$TRTEXEC" {trt["trtexec"].removeprefix("trtexec ")}\n' in script
    assert "# TensorRT >= 11" in script and not (out / "model.plan").exists()
    assert manifest.parity[0]["artefact"] == "model.onnx" and manifest.parity[0]["passed"]
    assert manifest.parity[0]["precision"] == "fp32"  # the ONNX is FP32; FP16 is TensorRT's
    assert "tensorrt" in (out / "report.md").read_text()


def test_tensorrt_fixed_batch(bundle_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert export(bundle_dir, out, "--target", "tensorrt", "--batch", "4") == 0
    trt = load_manifest(out).runtime["tensorrt"]
    assert trt["profile"] == {"min": 4, "opt": 4, "max": 4}
    assert trt["input"]["dynamic_batch"] is False and trt["builder_flags"] == []
    assert "Shapes" not in trt["trtexec"] and "--fp16" not in trt["trtexec"]
    dims = onnx.load(out / "model.onnx").graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_value for d in dims] == [4, L]


def test_target_specs() -> None:
    assert get_target("tensorrt", "fp16").precisions == ("fp32", "fp16")
    assert get_target("jetson", "int8").precisions == ("fp16", "int8")


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
    return export(bundle, out, "--target", "jetson", "--precision", "int8", "--calib",
                  str(calib), "--calib-size", "48", *args)


def test_jetson_int8(bundle_dir: Path, calib_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert int8_export(bundle_dir, out, calib_dir) == 0
    manifest = load_manifest(out)
    files = [(a.path, a.kind, a.precision) for a in manifest.artefacts]
    assert files[0] == ("model.onnx", "onnx", "fp32")
    assert {("model_int8_qdq.onnx", "onnx", "int8"),
            ("calibration.cache", "tensorrt-calibration-cache", "int8"),
            ("build_engine.sh", "tensorrt-build-script", "int8")} <= set(files)
    assert all((out / a.path).is_file() for a in manifest.artefacts)
    qdq = onnx.load(out / "model_int8_qdq.onnx")
    assert check_qdq(qdq) == []
    assert [i.name for i in qdq.graph.input] == ["spectrum"]
    assert [o.name for o in qdq.graph.output] == ["logits"]

    cache = read_cache(out / "calibration.cache")
    assert cache.header == "TRT-100300-EntropyCalibration2"
    fp32 = onnx.load(out / "model.onnx")
    names = {"spectrum"} | {o for n in fp32.graph.node for o in n.output}
    assert next(iter(cache.scales)) == "spectrum" and set(cache.scales) <= names
    assert len(cache.scales) >= 3 and all(s > 0 for s in cache.scales.values())
    quantised = {n.input[0] for n in qdq.graph.node if n.op_type == "QuantizeLinear"}
    assert set(cache.scales) - {"spectrum"} <= quantised  # float-kept layers stay out
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
    assert trt["calibration_cache"]["header"] == cache.header
    assert trt["trtexec"].startswith("trtexec --onnx=model_int8_qdq.onnx --saveEngine="
                                     "model.engine --int8 --fp16 --minShapes=spectrum:1x")
    script = script_ok(out / "build_engine.sh")
    calib_lines = [line for line in script.splitlines() if "--calib=calibration.cache" in line]
    assert len(calib_lines) == 1 and calib_lines[0].startswith("# ")  # the alternative
    rows = {r["artefact"]: r for r in manifest.parity}
    assert rows["model.onnx"]["precision"] == "fp32" and rows["model.onnx"]["passed"]
    assert rows["model_int8_qdq.onnx"]["precision"] == "int8"
    assert "onnxruntime-cpu (model_int8_qdq.onnx)" in manifest.executed_graph
    assert manifest.calibration["tensorrt_cache"]["tensors"] == len(cache.scales)
    assert "method" in manifest.calibration  # the quantize pipeline's record is kept
    assert "INT8 calibration" in (out / "report.md").read_text()


def test_jetson_refuses_non_conforming_qdq(bundle_dir: Path, calib_dir: Path, tmp_path: Path,
                                           capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    """A QDQ model TensorRT would not take (here: UINT8 activations) is refused, not shipped."""
    from onnx import TensorProto, numpy_helper

    import pace_edge.export.quantize.pipeline as pipeline

    original = pipeline.export_int8

    def uint8_activations(bundle, out_dir, options, kinds):
        result = original(bundle, out_dir, options, kinds)
        path = Path(out_dir) / "model.onnx"
        model = onnx.load(path)
        for t in model.graph.initializer:
            if t.data_type == TensorProto.INT8 and t.name.endswith("_zero_point") and not t.dims:
                t.CopyFrom(numpy_helper.from_array(np.array(128, np.uint8), t.name))
        onnx.save_model(model, str(path))
        return result

    monkeypatch.setattr(pipeline, "export_int8", uint8_activations)
    out = tmp_path / "out"
    assert int8_export(bundle_dir, out, calib_dir) == 2
    err = capsys.readouterr().err
    assert "model_int8_qdq.onnx breaks TensorRT's explicit-quantisation rules" in err
    assert "UINT8, not INT8" in err and len(err.strip().splitlines()) == 1
    assert not (out / "manifest.json").exists()
