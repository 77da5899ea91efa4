"""What each quantisable layer costs, and the predicted speed of a build with some layers float.

Cost is counted per spectrum from the FP32 ONNX graph's shapes: multiply-adds for Conv, MatMul
and Gemm (``out_elements * in_channels_per_group * kernel``, or the inner dimension), elements
for Add. The speed model is deliberately simple: an INT8 multiply-add costs
:data:`INT8_MAC_FACTOR` of a float one (a 512-bit VNNI instruction does 64 INT8 multiply-adds
where an FMA does 16 float ones), an INT8 elementwise op :data:`INT8_ELEMENTWISE_FACTOR` of a
float one, and everything that is never quantised (GELU, the mean) costs one unit per element
either way. The export reports the prediction next to a measurement of the build.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from .layers import Layer

INT8_MAC_FACTOR = 0.25
INT8_ELEMENTWISE_FACTOR = 0.5
MAC_OPS = ("Conv", "MatMul", "Gemm")


@dataclass(frozen=True)
class LayerCost:
    """A layer's work per spectrum and its cost units in float and in INT8."""

    layer: str
    op_type: str
    macs: int  # multiply-adds (0 for elementwise ops)
    elements: int  # output elements
    float_cost: float
    int8_cost: float

    @property
    def extra(self) -> float:
        """What keeping this layer float adds to the build's cost."""
        return self.float_cost - self.int8_cost

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "extra": self.extra}


def _shapes(model: Any) -> dict[str, tuple[int, ...]]:
    """Static shape of every tensor, batch dimension set to 1."""
    import onnx

    model = onnx.ModelProto.FromString(model.SerializeToString())
    dim = model.graph.input[0].type.tensor_type.shape.dim[0]
    dim.Clear()
    dim.dim_value = 1
    inferred = onnx.shape_inference.infer_shapes(model)
    out: dict[str, tuple[int, ...]] = {}
    for info in [*inferred.graph.input, *inferred.graph.value_info, *inferred.graph.output]:
        dims = info.type.tensor_type.shape.dim
        if all(d.HasField("dim_value") for d in dims):
            out[info.name] = tuple(int(d.dim_value) for d in dims)
    for init in inferred.graph.initializer:
        out[init.name] = tuple(int(d) for d in init.dims)
    return out


def _macs(node: Any, shapes: dict[str, tuple[int, ...]]) -> int:
    out = int(np.prod(shapes[node.output[0]]))
    if node.op_type == "Conv":
        w = shapes[node.input[1]]  # (out_channels, in_channels / group, kernel...)
        return out * int(np.prod(w[1:]))
    if node.op_type == "Gemm":
        trans_b = next((a.i for a in node.attribute if a.name == "transB"), 0)
        w = shapes[node.input[1]]
        return out * int(w[1] if trans_b else w[0])
    a = shapes[node.input[0]]  # MatMul: the inner dimension
    return out * int(a[-1])


def layer_costs(model: Any, layers: Sequence[Layer]) -> dict[str, LayerCost]:
    """Cost of each of ``layers`` (keyed by layer key) in the FP32 ONNX ``model``."""
    shapes = _shapes(model)
    nodes = {n.name: n for n in model.graph.node}
    out = {}
    for la in layers:
        node = nodes[la.node]
        elements = int(np.prod(shapes[node.output[0]]))
        if node.op_type in MAC_OPS:
            macs = _macs(node, shapes)
            out[la.key] = LayerCost(la.key, node.op_type, macs, elements, float(macs),
                                    macs * INT8_MAC_FACTOR)
        else:
            out[la.key] = LayerCost(la.key, node.op_type, 0, elements, float(elements),
                                    elements * INT8_ELEMENTWISE_FACTOR)
    return out


def fixed_cost(model: Any, layers: Sequence[Layer]) -> float:
    """Cost units of the ops that are never quantised (one per output element)."""
    shapes = _shapes(model)
    named = {la.node for la in layers}
    skip = ("QuantizeLinear", "DequantizeLinear", "Reshape", "Unsqueeze", "Squeeze", "Flatten",
            "Constant", "Shape", "Identity")
    return float(sum(int(np.prod(shapes.get(n.output[0], (0,))))
                     for n in model.graph.node if n.name not in named and n.op_type not in skip))


def build_cost(costs: dict[str, LayerCost], float_layers: Iterable[str], fixed: float = 0.0
               ) -> float:
    """Cost units of a build with ``float_layers`` float and every other layer INT8."""
    floats = set(float_layers)
    return fixed + sum(c.float_cost if k in floats else c.int8_cost for k, c in costs.items())


def predicted_speedup(costs: dict[str, LayerCost], float_layers: Iterable[str],
                      fixed: float = 0.0) -> float:
    """FP32 cost over the cost of the build with ``float_layers`` float (the model above)."""
    fp32 = build_cost(costs, costs, fixed)
    return fp32 / build_cost(costs, float_layers, fixed)
