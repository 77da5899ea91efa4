"""Target ``onnx``: ``model.onnx`` (FP32, FP16, or INT8 QDQ through :mod:`.quantize.pipeline`)
with its ONNX Runtime parity and executed-graph counts. The graph itself is :mod:`.onnx_graph`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import ExportOptions, TargetResult
from .onnx_graph import ONNX_FILE, export_onnx, ort_graph_counts
from .parity import compare, inputs_for, onnx_logits, torch_logits
from .quantize.pipeline import export_int8

if TYPE_CHECKING:
    from ..bundle import Bundle


def onnx_parity(bundle: Bundle, path: Path, options: ExportOptions, name: str) -> dict[str, Any]:
    """Parity row of an ONNX file run by ONNX Runtime against the PyTorch model."""
    x = inputs_for(bundle, options)
    result = compare(
        torch_logits(bundle, x),
        onnx_logits(path, x, options.batch),
        artefact=name,
        runtime="onnxruntime-cpu",
        precision=options.precision,
    )
    return result.to_dict()


def export(bundle: Bundle, out_dir: Path, options: ExportOptions) -> TargetResult:
    """Target ``onnx``: ``model.onnx`` with its ONNX Runtime parity and executed-graph counts."""
    if options.precision == "int8":
        return export_int8(bundle, out_dir, options, ("onnx",))
    path = export_onnx(bundle, out_dir / ONNX_FILE, options.batch, options.opset, options.precision)
    return TargetResult(
        artefacts=[{"path": ONNX_FILE, "kind": "onnx", "precision": options.precision}],
        parity=[onnx_parity(bundle, path, options, ONNX_FILE)],
        executed_graph={"onnxruntime-cpu": {"op_counts": ort_graph_counts(path)}},
        runtime={"onnxruntime": {"providers": ["CPUExecutionProvider"]}},
        opset=options.opset,
    )
