"""Helpers shared by the TensorRT tests: tiny ONNX graphs and ONNX Runtime Q/DQ quantisation.

The Q/DQ settings are the ones TensorRT's explicit quantisation needs: symmetric signed INT8
(zero points 0), per-channel weights, biases left float (``QuantizeBias: False``; an INT32 bias
DequantizeLinear is not TensorRT INT8).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

GPU_REASON = ("needs the tensorrt package, cuda-python and an NVIDIA GPU; TensorRT cannot run "
              "on this machine")


def tensorrt_gpu_available() -> bool:
    """Whether ``tensorrt`` imports, cuda-python (the runner's GPU memory) imports and a GPU is
    visible: the GPU tests' skip condition."""
    import importlib.util

    from pace_edge.export.trt_build import tensorrt_gpu_available as available

    return importlib.util.find_spec("cuda") is not None and available()


def conv_model(path: Path, length: int = 32, channels: int = 6, classes: int = 3,
               batch: int | str = "N", unsqueeze: bool = True) -> Path:
    """A small FP32 ONNX like PACE: spectrum (N, L) -> [Unsqueeze] -> Conv -> Relu -> Conv ->
    ReduceMean -> Gemm -> logits (opset 20)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w1 = rng.normal(0, 0.5, (channels, 1, 5)).astype(np.float32)
    b1 = rng.normal(0, 0.1, channels).astype(np.float32)
    w2 = rng.normal(0, 0.3, (channels, channels, 1)).astype(np.float32)
    b2 = rng.normal(0, 0.1, channels).astype(np.float32)
    wh = rng.normal(0, 0.3, (classes, channels)).astype(np.float32)
    bh = rng.normal(0, 0.1, classes).astype(np.float32)
    inits = [numpy_helper.from_array(a, n) for a, n in (
        (w1, "embed.weight"), (b1, "embed.bias"), (w2, "pw.weight"), (b2, "pw.bias"),
        (wh, "head.weight"), (bh, "head.bias"), (np.array([1], np.int64), "axes1"),
        (np.array([2], np.int64), "axes2"))]
    first = "spectrum"
    nodes = []
    if unsqueeze:
        nodes.append(helper.make_node("Unsqueeze", ["spectrum", "axes1"], ["x3d"], name="unsq"))
        first = "x3d"
    nodes += [
        helper.make_node("Conv", [first, "embed.weight", "embed.bias"], ["conv1"], name="conv1",
                         pads=[2, 2]),
        helper.make_node("Relu", ["conv1"], ["relu1"], name="relu1"),
        helper.make_node("Conv", ["relu1", "pw.weight", "pw.bias"], ["conv2"], name="conv2"),
        helper.make_node("ReduceMean", ["conv2", "axes2"], ["pooled"], name="pool", keepdims=0),
        helper.make_node("Gemm", ["pooled", "head.weight", "head.bias"], ["logits"],
                         name="head", transB=1),
    ]
    shape_in = [batch, length] if unsqueeze else [batch, 1, length]
    graph = helper.make_graph(
        nodes, "tiny",
        [helper.make_tensor_value_info("spectrum", TensorProto.FLOAT, shape_in)],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [batch, classes])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])
    model.ir_version = 10
    onnx.checker.check_model(model, full_check=True)
    onnx.save_model(model, str(path))
    return path


def ort_qdq(fp32: Path, out: Path, x: np.ndarray, quantize_bias: bool = False,
            per_channel: bool = True, batch: int = 8) -> Path:
    """ONNX Runtime static quantisation to symmetric INT8 Q/DQ (per-channel weights), fed
    ``x`` in chunks of ``batch`` (the model's fixed batch, if it has one)."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter([{"spectrum": x[i : i + batch]}
                                 for i in range(0, len(x) - batch + 1, batch)])

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.batches, None)

    import logging

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # the quantiser's "consider pre-processing" notes
    try:
        quantize_static(
            str(fp32), str(out), Reader(), quant_format=QuantFormat.QDQ,
            per_channel=per_channel, activation_type=QuantType.QInt8,
            weight_type=QuantType.QInt8,
            extra_options={"ActivationSymmetric": True, "WeightSymmetric": True,
                           "QuantizeBias": quantize_bias},
        )
    finally:
        root.setLevel(level)
    return out
