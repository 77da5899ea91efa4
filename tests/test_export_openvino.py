"""OpenVINO IR export: FP32 parity on CPU and the executed graph (fused conv + GELU)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")
ov = pytest.importorskip("openvino")

from factories import make_bundle  # noqa: E402

from pace_edge.export import ExportOptions, run_target  # noqa: E402
from pace_edge.export.openvino_target import compile_config, onnx_to_openvino  # noqa: E402
from pace_edge.export.ov_graph import executed_graph, summarize  # noqa: E402
from pace_edge.export.parity import (  # noqa: E402
    compare,
    openvino_logits,
    parity_inputs,
    torch_logits,
)


@pytest.fixture(scope="module")
def x86(tmp_path_factory: pytest.TempPathFactory):
    """A tiny bundle (length 900) exported with target x86: IR + ONNX."""
    root = tmp_path_factory.mktemp("x86")
    bundle = make_bundle(root / "bundle", 900)
    out = root / "out"
    out.mkdir()
    result = run_target(bundle, out, "x86", ExportOptions(parity_samples=64))
    return bundle, out, result


def test_x86_artefacts_and_parity(x86) -> None:
    _, out, result = x86
    assert sorted(a["path"] for a in result.artefacts) == ["model.bin", "model.onnx", "model.xml"]
    assert all((out / a["path"]).is_file() for a in result.artefacts)
    rows = {row["runtime"]: row for row in result.parity}
    assert set(rows) == {"openvino-cpu", "onnxruntime-cpu"}
    for row in rows.values():
        assert row["passed"] and row["max_abs_diff"] <= 1e-4 and row["agreement"] == 1.0
    assert rows["openvino-cpu"]["inference_precision"] == "f32"
    assert result.runtime["openvino"]["config"] == {"INFERENCE_PRECISION_HINT": "f32"}


def test_ir_io(x86) -> None:
    _, out, _ = x86
    model = ov.Core().read_model(str(out / "model.xml"))
    assert model.input().get_any_name() == "spectrum"
    assert model.output().get_any_name() == "logits"
    assert model.input().get_partial_shape()[1].get_length() == 900
    assert model.input().get_partial_shape()[0].is_dynamic


def test_fp32_parity_other_inputs(x86) -> None:
    bundle, out, _ = x86
    x = np.random.default_rng(5).normal(size=(40, 900)).astype(np.float32)
    got = openvino_logits(out / "model.xml", x, config=compile_config("fp32"))
    result = compare(torch_logits(bundle, x), got, artefact="model.xml",
                     runtime="openvino-cpu", precision="fp32")
    assert result.max_abs_diff <= 1e-4 and result.agreement == 1.0


def test_executed_graph_fuses_gelu(x86) -> None:
    bundle, _, result = x86
    graph = result.executed_graph["openvino-cpu"]
    depth = bundle.config.depth
    assert graph["inference_precision"] == "f32"
    assert graph["layer_counts"]["Convolution"] == 1 + 2 * depth
    assert graph["standalone_gelu"] == 0
    assert graph["embed_gelu_fused"]
    assert len(graph["blocks"]) == depth
    for block in graph["blocks"]:
        assert block["dw_gelu_fused"] and block["pw_residual_gelu_fused"]
    assert not {"Eltwise", "BatchNormalization"} & set(graph["layer_counts"])


def test_fp16_ir(x86, tmp_path: Path) -> None:
    bundle, out, _ = x86
    xml = onnx_to_openvino(out / "model.onnx", tmp_path / "model.xml", "fp16")
    assert xml.with_suffix(".bin").stat().st_size < 0.6 * (out / "model.bin").stat().st_size
    x = parity_inputs(900, 500, seed=7)
    got = openvino_logits(xml, x, config=compile_config("fp16"))
    result = compare(torch_logits(bundle, x), got,
                     artefact="model.xml", runtime="openvino-cpu", precision="fp16")
    assert result.passed, result.describe()  # device-default compute: bf16 where available
    assert executed_graph(xml)["standalone_gelu"] == 0


def test_summarize_detects_standalone_gelu() -> None:
    nodes = [
        {"name": "e", "layer": "Convolution", "primitive": "p", "precision": "f32",
         "fused": ["Convolution", "Add"]},
        {"name": "g", "layer": "Eltwise", "primitive": "p", "precision": "f32", "fused": ["Gelu"]},
        {"name": "dw", "layer": "Convolution", "primitive": "dw", "precision": "f32",
         "fused": ["GroupConvolution", "Add", "Gelu"]},
        {"name": "pw", "layer": "Convolution", "primitive": "pw", "precision": "f32",
         "fused": ["Convolution", "Add"]},
    ]
    s = summarize(nodes)
    assert s["standalone_gelu"] == 1 and not s["embed_gelu_fused"]
    assert s["layer_counts"] == {"Convolution": 3, "Eltwise": 1}
    assert s["blocks"] == [{"block": 0, "dw_primitive": "dw", "dw_gelu_fused": True,
                            "pw_primitive": "pw", "pw_residual_gelu_fused": False}]
