"""Check a Q/DQ ONNX graph against TensorRT's explicit-quantisation rules.

TensorRT quantises symmetrically to signed INT8: its ONNX parser requires ``QuantizeLinear``
``y_zero_point`` and ``DequantizeLinear`` ``x_zero_point`` to be 0 and supports INT8 (not UINT8
or INT32) quantised data; activations are quantised per tensor and weights per output channel
(axis 0 of a ``Conv`` weight ``(out_channels, in_channels/group, k)``). Weights are kept in
``[-127, 127]`` so the range is symmetric. :func:`check_qdq` returns every violation with the
node it concerns; the ``jetson`` target refuses an artefact that has any.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import PaceEdgeError

RULES = {
    "int8": "quantised data must be INT8 (UINT8, INT32, ... are not TensorRT explicit INT8)",
    "zero-point": "zero points must be constant 0 (symmetric quantisation)",
    "scale": "scales must be constant, positive and finite",
    "activation-per-tensor": "activations must be quantised per tensor (one scale)",
    "weight-per-channel": "Conv weights must be quantised per output channel (axis 0)",
    "weight-range": "INT8 weights must lie in [-127, 127]",
}
_QDQ = ("QuantizeLinear", "DequantizeLinear")
_CONV = ("Conv", "ConvTranspose")


@dataclass(frozen=True)
class Violation:
    """One broken rule: the node's name, the rule's key in :data:`RULES` and the detail."""

    node: str
    rule: str
    detail: str

    def __str__(self) -> str:
        return f"{self.node}: {self.detail} [{self.rule}]"


def _node_name(node: Any, index: int) -> str:
    return node.name or f"{node.op_type}#{index}"


def _attr(node: Any, name: str, default: Any) -> Any:
    from onnx import helper

    for attr in node.attribute:
        if attr.name == name:
            return helper.get_attribute_value(attr)
    return default


def _constants(model: Any) -> tuple[dict[str, np.ndarray], dict[str, int]]:
    """Constant values (initializers and ``Constant`` nodes) and their ONNX element types."""
    from onnx import numpy_helper

    values: dict[str, np.ndarray] = {}
    types: dict[str, int] = {}
    for t in model.graph.initializer:
        values[t.name], types[t.name] = numpy_helper.to_array(t), t.data_type
    for node in model.graph.node:
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value":
                    values[node.output[0]] = numpy_helper.to_array(attr.t)
                    types[node.output[0]] = attr.t.data_type
    return values, types


def _value_types(model: Any) -> dict[str, int]:
    out = {}
    for v in (*model.graph.input, *model.graph.output, *model.graph.value_info):
        if v.type.HasField("tensor_type"):
            out[v.name] = v.type.tensor_type.elem_type
    return out


def _type_name(elem_type: int) -> str:
    from onnx import TensorProto

    return TensorProto.DataType.Name(elem_type) if elem_type else "unknown"


def is_qdq(model: Any) -> bool:
    """Whether the graph has any QuantizeLinear or DequantizeLinear node."""
    return any(n.op_type in _QDQ for n in _load(model).graph.node)


def _load(model: Any) -> Any:
    import onnx

    return onnx.load(str(model)) if isinstance(model, (str, Path)) else model


def check_qdq(model: Any) -> list[Violation]:
    """Every violation of TensorRT's explicit-quantisation rules in ``model`` (path or proto)."""
    from onnx import TensorProto

    model = _load(model)
    values, const_types = _constants(model)
    value_types = _value_types(model)
    int8 = TensorProto.INT8
    nodes = list(model.graph.node)
    consumers: dict[str, list[tuple[Any, int]]] = {}
    for node in nodes:
        for slot, name in enumerate(node.input):
            consumers.setdefault(name, []).append((node, slot))
    q_types: dict[str, int] = {}  # QuantizeLinear output -> its element type
    out: list[Violation] = []

    def add(name: str, rule: str, detail: str) -> None:
        out.append(Violation(name, rule, detail))

    for node in nodes:
        if node.op_type != "QuantizeLinear":
            continue
        zp = node.input[2] if len(node.input) > 2 and node.input[2] else None
        if zp is not None:
            q_types[node.output[0]] = const_types.get(zp, value_types.get(zp, 0))
        else:  # ONNX: without a zero point the output is uint8 unless output_dtype says otherwise
            q_types[node.output[0]] = _attr(node, "output_dtype", 0) or TensorProto.UINT8

    for index, node in enumerate(nodes):
        if node.op_type not in _QDQ:
            continue
        name = _node_name(node, index)
        x, scale_name = node.input[0], node.input[1]
        zp = node.input[2] if len(node.input) > 2 and node.input[2] else None
        quantize = node.op_type == "QuantizeLinear"
        if quantize:
            dtype = q_types[node.output[0]]
        else:
            dtype = const_types.get(x) or q_types.get(x) or value_types.get(x, 0)
            if not dtype and zp is not None:
                dtype = const_types.get(zp, 0)
        if dtype != int8:
            what = "output" if quantize else "input"
            add(name, "int8", f"{node.op_type} {what} is {_type_name(dtype)}, not INT8")
        if zp is not None:
            if zp not in values:
                add(name, "zero-point", f"zero point {zp!r} is not a constant")
            elif np.any(values[zp] != 0):
                add(name, "zero-point", f"zero point {zp!r} is not 0: {values[zp].ravel()[:4]}")
        scale = values.get(scale_name)
        if scale is None:
            add(name, "scale", f"scale {scale_name!r} is not a constant")
            continue
        flat = scale.astype(np.float64).ravel()
        bad = [v for v in flat if not (math.isfinite(v) and v > 0)]
        if bad or not flat.size:
            add(name, "scale", f"scale {scale_name!r} has non-positive or non-finite values "
                f"{bad[:4]}")
        weight = values.get(x) if not quantize else None
        if weight is None and not quantize and x in q_types:  # float weight -> Q -> DQ
            producer = next((n for n in nodes if x in n.output), None)
            weight = values.get(producer.input[0]) if producer is not None else None
        if weight is None and quantize:
            weight = values.get(x)
        if weight is None:  # an activation
            if flat.size > 1:
                add(name, "activation-per-tensor",
                    f"activation {x!r} has {flat.size} scales; TensorRT needs one per tensor")
            continue
        if not quantize:
            out.extend(_weight_rules(node, name, weight, values.get(x), flat, consumers))
    return out


def _weight_rules(
    node: Any,
    name: str,
    weight: np.ndarray,
    stored: np.ndarray | None,
    scale: np.ndarray,
    consumers: dict[str, list[tuple[Any, int]]],
) -> list[Violation]:
    """Per-channel and range rules for a weight DequantizeLinear ``node``."""
    out = []
    if stored is not None and stored.dtype == np.int8 and stored.size and stored.min() < -127:
        out.append(Violation(name, "weight-range",
                             f"weight {node.input[0]!r} holds {int(stored.min())} (< -127)"))
    rank = weight.ndim
    axis = int(_attr(node, "axis", 1))
    axis = axis + rank if axis < 0 else axis
    users = consumers.get(node.output[0], [])
    conv = any(user.op_type in _CONV and slot == 1 for user, slot in users)
    if conv:
        channels = weight.shape[0] if rank else 1
        if scale.size != channels or (channels > 1 and axis != 0):
            out.append(Violation(
                name, "weight-per-channel",
                f"Conv weight {node.input[0]!r} {tuple(weight.shape)} has {scale.size} scale(s) "
                f"on axis {axis}; needs {channels} on axis 0",
            ))
    elif scale.size > 1 and (axis >= rank or weight.shape[axis] != scale.size):
        out.append(Violation(
            name, "weight-per-channel",
            f"weight {node.input[0]!r} {tuple(weight.shape)}: {scale.size} scales do not match "
            f"axis {axis}",
        ))
    return out


def require_conforming(model: Any, what: str, limit: int = 5) -> None:
    """Raise :class:`PaceEdgeError` naming the first ``limit`` violations, if any."""
    violations = check_qdq(model)
    if violations:
        shown = "; ".join(str(v) for v in violations[:limit])
        more = f" (+{len(violations) - limit} more)" if len(violations) > limit else ""
        raise PaceEdgeError(
            f"{what} breaks TensorRT's explicit-quantisation rules: {shown}{more}"
        )


__all__ = ["RULES", "Violation", "check_qdq", "is_qdq", "require_conforming"]
