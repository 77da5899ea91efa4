"""ONNX export: native Gelu, folded graph, exact FP32 parity, FP16 agreement."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from factories import make_bundle  # noqa: E402

from pace_edge.bundle import Bundle  # noqa: E402
from pace_edge.errors import PaceEdgeError  # noqa: E402
from pace_edge.export import ExportOptions  # noqa: E402
from pace_edge.export.onnx_graph import check_graph, export_onnx, op_counts  # noqa: E402
from pace_edge.export.parity import (  # noqa: E402
    compare,
    onnx_logits,
    parity_inputs,
    run_batched,
    torch_logits,
)


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Bundle, Path]]:
    """fp32 dynamic batch at length 900 (MatMul pool), fp32 batch 4 and fp16 at 1024."""
    root = tmp_path_factory.mktemp("onnx")
    b900 = make_bundle(root / "b900", 900)
    b1024 = make_bundle(root / "b1024", 1024)
    return {
        "fp32-900": (b900, export_onnx(b900, root / "a.onnx", "dynamic")),
        "fp32-1024": (b1024, export_onnx(b1024, root / "b.onnx", 4)),
        "fp16-1024": (b1024, export_onnx(b1024, root / "c.onnx", "dynamic", precision="fp16")),
    }


@pytest.mark.parametrize("key", ["fp32-900", "fp32-1024", "fp16-1024"])
def test_graph_structure(exported, key: str) -> None:
    bundle, path = exported[key]
    model = onnx.load(path)
    onnx.checker.check_model(model, full_check=True)
    counts = op_counts(model)
    depth, dim = bundle.config.depth, bundle.config.dim
    assert counts["Gelu"] == 1 + 2 * depth  # native, one node per GELU
    assert not {"Erf", "Div", "BatchNormalization", "Dropout", "Constant"} & set(counts)
    assert counts["Conv"] == 1 + 2 * depth
    groups = [a.i for n in model.graph.node for a in n.attribute if a.name == "group"]
    assert groups.count(dim) == depth
    assert {o.domain or "ai.onnx": o.version for o in model.opset_import}["ai.onnx"] == 20
    pool = "MatMul" if bundle.input_length == 900 else "AveragePool"
    assert counts[pool] == 1


@pytest.mark.parametrize("key", ["fp32-900", "fp32-1024", "fp16-1024"])
def test_io_spec(exported, key: str) -> None:
    bundle, path = exported[key]
    graph = onnx.load(path).graph
    (inp,), (out,) = graph.input, graph.output
    assert (inp.name, out.name) == ("spectrum", "logits")
    for value in (inp, out):
        assert value.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    dims = [d.dim_value or d.dim_param for d in inp.type.tensor_type.shape.dim]
    assert dims == [4 if key == "fp32-1024" else "batch", bundle.input_length]


@pytest.mark.parametrize("key", ["fp32-900", "fp32-1024"])
def test_fp32_parity_is_exact(exported, key: str) -> None:
    bundle, path = exported[key]
    x = parity_inputs(bundle.input_length, 64, seed=1)
    x[:8] = np.random.default_rng(2).normal(size=(8, bundle.input_length))  # plain noise too
    batch = 4 if key == "fp32-1024" else "dynamic"
    result = compare(
        torch_logits(bundle, x), onnx_logits(path, x, batch),
        artefact=path.name, runtime="onnxruntime-cpu", precision="fp32",
    )
    assert result.max_abs_diff <= 1e-4
    assert result.agreement == 1.0 and result.passed


def test_dynamic_batch_sizes(exported) -> None:
    import onnxruntime as ort

    bundle, path = exported["fp32-900"]
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for n in (1, 3, 7):
        x = parity_inputs(900, n, seed=n)
        out = session.run(None, {"spectrum": x})[0]
        assert out.shape == (n, 3)
        np.testing.assert_allclose(out, torch_logits(bundle, x), atol=1e-4)


def test_fp16_agreement(exported) -> None:
    bundle, path = exported["fp16-1024"]
    x = parity_inputs(1024, 2000, seed=3)
    result = compare(
        torch_logits(bundle, x), onnx_logits(path, x),
        artefact=path.name, runtime="onnxruntime-cpu", precision="fp16",
    )
    assert result.agreement >= 0.999 and result.passed
    init = onnx.load(path).graph.initializer
    assert {t.data_type for t in init if t.dims and len(t.dims) > 1} == {onnx.TensorProto.FLOAT16}


def test_bad_options(exported, tmp_path: Path) -> None:
    bundle, _ = exported["fp32-900"]
    with pytest.raises(PaceEdgeError, match="opset"):
        export_onnx(bundle, tmp_path / "m.onnx", opset=17)
    with pytest.raises(PaceEdgeError, match="int8"):
        export_onnx(bundle, tmp_path / "m.onnx", precision="int8")
    with pytest.raises(PaceEdgeError, match="batch"):
        export_onnx(bundle, tmp_path / "m.onnx", batch=0)


def test_check_graph_catches_batchnorm_and_decomposed_gelu() -> None:
    from onnx import TensorProto, helper

    nodes = [
        helper.make_node("BatchNormalization", ["spectrum", "s", "b", "m", "v"], ["y"]),
        helper.make_node("Erf", ["y"], ["logits"]),
    ]
    io = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 4]) for n in ("spectrum",
                                                                                "logits")]
    model = helper.make_model(helper.make_graph(nodes, "g", io[:1], io[1:]))
    with pytest.raises(PaceEdgeError, match="BatchNormalization.*Gelu"):
        check_graph(model, dim=4, depth=1)


def test_compare_and_run_batched() -> None:
    ref = np.array([[1.0, 0.0], [0.0, 1.0]])
    bad = compare(ref, ref[:, ::-1], artefact="m", runtime="r", precision="fp32")
    assert not bad.passed and bad.agreement == 0.0 and "m on r" in bad.describe()
    nan = compare(ref, ref * np.nan, artefact="m", runtime="r", precision="fp16")
    assert not nan.passed
    x = np.arange(10, dtype=np.float32)[:, None]
    seen = []
    out = run_batched(lambda c: seen.append(len(c)) or c * 2, x, 4)
    assert seen == [4, 4, 4] and np.array_equal(out, x * 2)


def test_onnx_target_export(exported, tmp_path: Path) -> None:
    from pace_edge.export import run_target

    bundle, _ = exported["fp32-900"]
    result = run_target(bundle, tmp_path, "onnx", ExportOptions(parity_samples=32))
    assert [a["path"] for a in result.artefacts] == ["model.onnx"]
    assert result.parity[0]["passed"] and result.parity[0]["max_abs_diff"] <= 1e-4
    assert result.executed_graph["onnxruntime-cpu"]["op_counts"]["Gelu"] == 5
