"""Named quantisable layers of an exported PACE graph (ONNX node and OpenVINO op names).

Keys: ``pool`` (input averaging MatMul), ``embed`` (patch-embedding Conv), ``blocks.i.dw`` /
``blocks.i.pw`` (depthwise/pointwise Conv), ``blocks.i.add`` (residual Add), ``head`` (Gemm).
Quantising a layer means quantising the activations it reads and its weights.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ...errors import PaceEdgeError


@dataclass(frozen=True)
class Layer:
    """One quantisable node: its key, ONNX node name and type, and the tensors it reads."""

    key: str
    node: str
    op_type: str
    inputs: tuple[str, ...]  # activation inputs (not initializers)


def _group(node: Any) -> int:
    return next((a.i for a in node.attribute if a.name == "group"), 1)


def pace_layers(model: Any) -> list[Layer]:
    """The quantisable layers of an FP32 PACE ONNX ``model``, in graph order."""
    consts = {i.name for i in model.graph.initializer}
    layers: list[Layer] = []
    block, seen_conv = -1, False
    for node in model.graph.node:
        acts = tuple(i for i in node.input if i and i not in consts)
        key = None
        if node.op_type == "MatMul" and not seen_conv:
            key = "pool"
        elif node.op_type == "Conv" and not seen_conv:
            key, seen_conv = "embed", True
        elif node.op_type == "Conv" and _group(node) > 1:
            block += 1
            key = f"blocks.{block}.dw"
        elif node.op_type == "Conv":
            key = f"blocks.{block}.pw"
        elif node.op_type == "Add" and len(acts) == 2:
            key = f"blocks.{block}.add"
        elif node.op_type in ("Gemm", "MatMul"):
            key = "head"
        if key is not None:
            layers.append(Layer(key, node.name, node.op_type, acts))
    return layers


def resolve(layers: Sequence[Layer], names: Iterable[str]) -> list[Layer]:
    """The layers named by key (``blocks.0.pw``), ONNX node name, or key prefix (``blocks.0``)."""
    out: list[Layer] = []
    for name in names:
        hits = [la for la in layers
                if name in (la.key, la.node) or la.key.startswith(name.rstrip(".") + ".")]
        if not hits:
            known = ", ".join(la.key for la in layers)
            raise PaceEdgeError(f"no quantisable layer {name!r}; layers: {known}")
        out += [h for h in hits if h not in out]
    return out


def openvino_names(layer: Layer, op_names: Iterable[str]) -> list[str]:
    """Names of the OpenVINO ops converted from ``layer``'s ONNX node (``X``, ``X/...``)."""
    return [n for n in op_names if n == layer.node or n.startswith(layer.node + "/")]
