"""What OpenVINO actually executes: primitive counts and fusions of a compiled model.

``compiled.get_runtime_model()`` is the graph the plugin runs; each node's rt_info gives its
``layerType``, ``runtimePrecision``, ``primitiveType`` (kernel) and ``originalLayersNames``
(the nodes of the input model it absorbed). Mapping those names back to the input model's op
types shows whether each GELU was fused into its convolution or ran on its own.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

XML_FILE = "model.xml"
BIN_FILE = "model.bin"
DEVICE = "CPU"  # the OpenVINO device exports are compiled and checked on
# OpenVINO names the ops it creates (constant folding, NNCF's weight compression) "<Type>_<n>"
# from a process-wide counter; the ONNX frontend's names are the ONNX node names ("node_...").
_AUTO_NAME = re.compile(r"^([A-Z][A-Za-z]*)_\d+$")
# Bookkeeping nodes of the runtime model that run no computation.
NOT_EXECUTED = frozenset({"Input", "Output", "Const", "Parameter", "Result"})
_COMPUTE = frozenset({"Convolution", "GroupConvolution", "MatMul", "FullyConnected"})


def _rt(node: Any, key: str) -> str:
    info = node.get_rt_info()
    return info[key].astype(str) if key in info else ""


def runtime_nodes(compiled: Any, source: Any) -> list[dict[str, Any]]:
    """Executed nodes of ``compiled`` (in execution order) with the op types they absorbed.

    ``source`` is the ``ov.Model`` that was compiled, used to type ``originalLayersNames``.
    """
    types = {op.get_friendly_name(): op.get_type_name() for op in source.get_ops()}
    nodes = []
    for node in compiled.get_runtime_model().get_ordered_ops():
        layer = _rt(node, "layerType")
        if layer in NOT_EXECUTED:
            continue
        names = [n for n in _rt(node, "originalLayersNames").split(",") if n]
        nodes.append(
            {
                "name": node.get_friendly_name(),
                "layer": layer,
                "primitive": _rt(node, "primitiveType"),
                "precision": _rt(node, "runtimePrecision"),
                "fused": [types[n] for n in names if n in types],
            }
        )
    return nodes


def summarize(nodes: list[dict[str, Any]]) -> dict[str, Any]:
    """Counts by layer type and precision, standalone GELUs, and per-block fusion of PACE."""
    convs = [n for n in nodes if n["layer"] == "Convolution"]
    embed, blocks, current = None, [], None
    for conv in convs:
        if "GroupConvolution" in conv["fused"]:
            current = {"dw": conv, "pw": None}
            blocks.append(current)
        elif current is not None and current["pw"] is None:
            current["pw"] = conv
        elif not blocks and embed is None:
            embed = conv

    def fused_gelu(node: dict[str, Any] | None, adds: int = 0) -> bool:
        return node is not None and "Gelu" in node["fused"] and node["fused"].count("Add") >= adds

    return {
        "layer_counts": dict(Counter(n["layer"] for n in nodes)),
        "precision_counts": dict(Counter(n["precision"] for n in nodes)),
        "standalone_gelu": sum(
            "Gelu" in n["fused"] and not _COMPUTE & set(n["fused"]) for n in nodes
        ),
        "embed_gelu_fused": fused_gelu(embed),
        "blocks": [
            {
                "block": i,
                "dw_primitive": b["dw"]["primitive"],
                "dw_gelu_fused": fused_gelu(b["dw"]),
                "pw_primitive": b["pw"]["primitive"] if b["pw"] else None,
                # bias Add + residual Add + GELU inside the pointwise convolution
                "pw_residual_gelu_fused": fused_gelu(b["pw"], adds=2),
            }
            for i, b in enumerate(blocks)
        ],
        "convolutions": [
            {k: c[k] for k in ("name", "primitive", "precision", "fused")} for c in convs
        ],
    }


def executed_graph(
    path: str | Path, device: str = "CPU", config: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Compile the IR/ONNX model at ``path`` on ``device`` and summarise what it executes."""
    import openvino as ov

    core = ov.Core()
    source = core.read_model(str(path))
    compiled = core.compile_model(source, device, config or {})
    summary = summarize(runtime_nodes(compiled, source))
    precision = compiled.get_property("INFERENCE_PRECISION_HINT")
    return {
        "device": device,
        "device_name": core.get_property(device, "FULL_DEVICE_NAME"),
        "config": dict(config or {}),
        "inference_precision": str(getattr(precision, "to_string", lambda: precision)()),
        **summary,
    }


def save_ir(model: Any, xml_path: str | Path, compress_to_fp16: bool = False) -> Path:
    """Save ``model`` as IR with its auto-named ops renamed by position (``Constant_7``), so
    the same graph gives the same bytes whatever ops the process created before."""
    import openvino as ov

    stable = model.clone()
    for i, op in enumerate(stable.get_ordered_ops()):
        match = _AUTO_NAME.match(op.get_friendly_name())
        if match:
            op.set_friendly_name(f"{match.group(1)}_{i}")
    ov.save_model(stable, str(xml_path), compress_to_fp16=compress_to_fp16)
    return Path(xml_path)
