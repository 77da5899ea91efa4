"""TensorRT explicit-quantisation rules: a conforming graph passes, each violation is named."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from pace_edge.errors import PaceEdgeError  # noqa: E402
from pace_edge.export.qdq_rules import (  # noqa: E402
    RULES,
    check_qdq,
    is_qdq,
    require_conforming,
)

OUT, L = 6, 16


def qdq_graph(
    *,
    act_zp_type: int = TensorProto.INT8,
    act_zp: int = 0,
    act_zp_present: bool = True,
    act_scale: np.ndarray | None = None,
    weight: np.ndarray | None = None,
    w_scale: np.ndarray | None = None,
    w_axis: int | None = 0,
    w_zp: np.ndarray | None = None,
    bias_int32: bool = False,
) -> onnx.ModelProto:
    """x -> Q -> DQ -> Conv(DQ(int8 W), b) -> y; each keyword breaks one thing."""
    rng = np.random.default_rng(0)
    weight = rng.integers(-127, 128, (OUT, 1, 3)).astype(np.int8) if weight is None else weight
    w_scale = np.full(OUT, 0.01, np.float32) if w_scale is None else w_scale
    w_zp = np.zeros(w_scale.shape, np.int8) if w_zp is None else w_zp
    act_scale = np.array(0.05, np.float32) if act_scale is None else act_scale
    zp_dtype = helper.tensor_dtype_to_np_dtype(act_zp_type)
    inits = [
        numpy_helper.from_array(act_scale, "x_scale"),
        numpy_helper.from_array(np.full(act_scale.shape, act_zp, zp_dtype), "x_zp"),
        numpy_helper.from_array(weight, "w_q"),
        numpy_helper.from_array(w_scale, "w_scale"),
        numpy_helper.from_array(w_zp, "w_zp"),
    ]
    q_inputs = ["x", "x_scale", "x_zp"] if act_zp_present else ["x", "x_scale"]
    dq_inputs = ["x_q", "x_scale", "x_zp"] if act_zp_present else ["x_q", "x_scale"]
    w_attrs = {} if w_axis is None else {"axis": w_axis}
    nodes = [
        helper.make_node("QuantizeLinear", q_inputs, ["x_q"], name="q_x"),
        helper.make_node("DequantizeLinear", dq_inputs, ["x_dq"], name="dq_x"),
        helper.make_node("DequantizeLinear", ["w_q", "w_scale", "w_zp"], ["w"], name="dq_w",
                         **w_attrs),
    ]
    if bias_int32:
        inits += [
            numpy_helper.from_array(np.arange(OUT, dtype=np.int32), "b_q"),
            numpy_helper.from_array(np.full(OUT, 5e-4, np.float32), "b_scale"),
            numpy_helper.from_array(np.zeros(OUT, np.int32), "b_zp"),
        ]
        nodes.append(helper.make_node("DequantizeLinear", ["b_q", "b_scale", "b_zp"], ["b"],
                                      name="dq_b", axis=0))
    else:
        inits.append(numpy_helper.from_array(np.zeros(OUT, np.float32), "b"))
    nodes.append(helper.make_node("Conv", ["x_dq", "w", "b"], ["y"], name="conv", pads=[1, 1]))
    graph = helper.make_graph(
        nodes, "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, L])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", OUT, L])],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])


def rules(model) -> set[tuple[str, str]]:
    return {(v.node, v.rule) for v in check_qdq(model)}


def test_conforming_graph_passes_and_runs() -> None:
    ort = pytest.importorskip("onnxruntime")
    model = qdq_graph()
    onnx.checker.check_model(model, full_check=True)
    assert check_qdq(model) == [] and is_qdq(model)
    require_conforming(model, "m.onnx")
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    assert session.run(None, {"x": np.ones((2, 1, L), np.float32)})[0].shape == (2, OUT, L)


@pytest.mark.parametrize(("kwargs", "expected"), [
    ({"act_zp_type": TensorProto.UINT8}, {("q_x", "int8"), ("dq_x", "int8")}),
    ({"act_zp_present": False}, {("q_x", "int8"), ("dq_x", "int8")}),  # ONNX default: uint8
    ({"act_zp": 3}, {("q_x", "zero-point"), ("dq_x", "zero-point")}),
    ({"w_zp": np.full(OUT, 1, np.int8)}, {("dq_w", "zero-point")}),
    ({"act_scale": np.array(-0.05, np.float32)}, {("q_x", "scale"), ("dq_x", "scale")}),
    ({"act_scale": np.array(np.nan, np.float32)}, {("q_x", "scale"), ("dq_x", "scale")}),
    ({"w_scale": np.array([0.01, 0, 0.01, 0.01, 0.01, 0.01], np.float32)}, {("dq_w", "scale")}),
    ({"act_scale": np.full(1, 0.05, np.float32)}, set()),  # a 1-element scale is per tensor
    ({"w_axis": None}, {("dq_w", "weight-per-channel")}),  # DequantizeLinear's default axis=1
    ({"w_axis": 1, "weight": np.ones((OUT, OUT, 1), np.int8)}, {("dq_w", "weight-per-channel")}),
    ({"w_scale": np.array(0.01, np.float32)}, {("dq_w", "weight-per-channel")}),
    ({"w_scale": np.full(OUT - 1, 0.01, np.float32)}, {("dq_w", "weight-per-channel")}),
    ({"weight": np.full((OUT, 1, 3), -128, np.int8)}, {("dq_w", "weight-range")}),
    ({"bias_int32": True}, {("dq_b", "int8")}),
])
def test_each_violation_is_flagged(kwargs, expected) -> None:
    assert rules(qdq_graph(**kwargs)) == expected
    for v in check_qdq(qdq_graph(**kwargs)):
        assert v.rule in RULES and v.node in str(v)


def test_activation_must_be_per_tensor() -> None:
    model = qdq_graph()
    # a per-channel activation Q/DQ on the input's channel axis
    for init in model.graph.initializer:
        if init.name in ("x_scale", "x_zp"):
            value = numpy_helper.to_array(init)
            init.CopyFrom(numpy_helper.from_array(np.repeat(value.reshape(1), 2), init.name))
    assert ("q_x", "activation-per-tensor") in rules(model)


def test_unnamed_nodes_are_named_by_position() -> None:
    model = qdq_graph(act_zp=1)
    for node in model.graph.node:
        node.name = ""
    assert {v.node for v in check_qdq(model)} == {"QuantizeLinear#0", "DequantizeLinear#1"}


def test_require_conforming_lists_violations() -> None:
    with pytest.raises(PaceEdgeError, match=r"m\.onnx breaks.*q_x.*zero point"):
        require_conforming(qdq_graph(act_zp=2), "m.onnx")


def test_onnxruntime_qdq(tmp_path: Path) -> None:
    """ORT's symmetric per-channel Q/DQ conforms with biases left float, not with INT32 ones."""
    pytest.importorskip("onnxruntime")
    from _trt_helpers import conv_model, ort_qdq

    fp32 = conv_model(tmp_path / "m.onnx")
    x = np.random.default_rng(1).normal(size=(16, 32)).astype(np.float32)
    good = ort_qdq(fp32, tmp_path / "good.onnx", x)
    assert check_qdq(good) == [] and not is_qdq(fp32)
    bad = ort_qdq(fp32, tmp_path / "bad.onnx", x, quantize_bias=True)
    flagged = rules(bad)
    assert {rule for _, rule in flagged} == {"int8"}
    assert {node for node, _ in flagged} == {
        "embed.bias_DequantizeLinear", "pw.bias_DequantizeLinear", "head.bias_DequantizeLinear"
    }
