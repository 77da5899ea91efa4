"""OpenVINO IR export (targets ``openvino`` and ``x86``), converted from the checked ONNX graph.

``fp32`` IR keeps FP32 weights and must be compiled with ``INFERENCE_PRECISION_HINT=f32``:
on CPUs with BF16 support (AVX512-BF16, AMX) OpenVINO otherwise computes in bf16 by default.
``fp16`` IR stores FP16 weights (``compress_to_fp16``) and leaves the compute precision to the
device (bf16/f16 where supported, else f32). ``int8`` IR (NNCF, :mod:`.quantize`) is compiled
with f32 for its float layers. The manifest's ``runtime`` entry records this.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import PaceEdgeError
from . import ExportOptions, TargetResult
from .onnx_graph import ONNX_FILE, build_onnx, export_onnx, finalize, ort_graph_counts
from .onnx_target import onnx_parity
from .ov_graph import BIN_FILE, DEVICE, XML_FILE, executed_graph, save_ir
from .parity import compare, inputs_for, openvino_logits, torch_logits
from .quantize.pipeline import export_int8

if TYPE_CHECKING:
    from ..bundle import Bundle


def compile_config(precision: str) -> dict[str, str]:
    """The ``compile_model`` config runners must use for an IR of ``precision``."""
    return {"INFERENCE_PRECISION_HINT": "f32"} if precision == "fp32" else {}


def onnx_to_openvino(onnx_path: str | Path, xml_path: str | Path, precision: str) -> Path:
    """Convert an FP32 ONNX file to IR ``xml_path`` (+ ``.bin``), FP16 weights for ``fp16``."""
    import openvino as ov

    if precision not in ("fp32", "fp16"):
        raise PaceEdgeError(f"OpenVINO export supports fp32 and fp16, not {precision!r}")
    return save_ir(ov.convert_model(str(onnx_path)), xml_path, precision == "fp16")


def export_openvino(
    bundle: Bundle,
    xml_path: str | Path,
    batch: Any = "dynamic",
    opset: int = 20,
    precision: str = "fp32",
) -> Path:
    """Export ``bundle`` to OpenVINO IR at ``xml_path`` (through a temporary FP32 ONNX)."""
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = export_onnx(bundle, Path(tmp) / ONNX_FILE, batch, opset)
        return onnx_to_openvino(fp32, xml_path, precision)


def openvino_parity(
    bundle: Bundle, xml_path: Path, options: ExportOptions, config: dict[str, str]
) -> dict[str, Any]:
    """Parity row of an IR compiled on CPU with ``config`` against the PyTorch model."""
    x = inputs_for(bundle, options)
    result = compare(
        torch_logits(bundle, x),
        openvino_logits(xml_path, x, options.batch, config),
        artefact=xml_path.name,
        runtime=f"openvino-{DEVICE.lower()}",
        precision=options.precision,
    )
    return result.to_dict()


def _ir_result(bundle: Bundle, out_dir: Path, options: ExportOptions) -> TargetResult:
    xml = out_dir / XML_FILE
    config = compile_config(options.precision)
    graph = executed_graph(xml, DEVICE, config)
    parity = openvino_parity(bundle, xml, options, config)
    parity["inference_precision"] = graph["inference_precision"]
    return TargetResult(
        artefacts=[
            {"path": XML_FILE, "kind": "openvino-xml", "precision": options.precision},
            {"path": BIN_FILE, "kind": "openvino-bin", "precision": options.precision},
        ],
        parity=[parity],
        executed_graph={f"openvino-{DEVICE.lower()}": graph},
        runtime={"openvino": {"device": DEVICE, "config": config}},
        opset=options.opset,
    )


def export(bundle: Bundle, out_dir: Path, options: ExportOptions) -> TargetResult:
    """Target ``openvino``: ``model.xml``/``model.bin`` with parity and executed-graph summary."""
    if options.precision == "int8":
        return export_int8(bundle, out_dir, options, ("openvino",))
    export_openvino(bundle, out_dir / XML_FILE, options.batch, options.opset, options.precision)
    return _ir_result(bundle, out_dir, options)


def export_x86(bundle: Bundle, out_dir: Path, options: ExportOptions) -> TargetResult:
    """Target ``x86``: OpenVINO IR and ONNX of the same graph, each with its parity."""
    import onnx

    if options.precision == "int8":
        return export_int8(bundle, out_dir, options, ("openvino", "onnx"))

    onnx_path = out_dir / ONNX_FILE
    fp32 = finalize(build_onnx(bundle, options.batch, options.opset), bundle, "fp32")
    with tempfile.TemporaryDirectory() as tmp:
        fp32_path = Path(tmp) / ONNX_FILE
        onnx.save_model(fp32, str(fp32_path))
        onnx_to_openvino(fp32_path, out_dir / XML_FILE, options.precision)
    final = fp32 if options.precision == "fp32" else finalize(fp32, bundle, options.precision)
    onnx.save_model(final, str(onnx_path))
    result = _ir_result(bundle, out_dir, options)
    result.artefacts.append({"path": ONNX_FILE, "kind": "onnx", "precision": options.precision})
    result.parity.append(onnx_parity(bundle, onnx_path, options, ONNX_FILE))
    result.executed_graph["onnxruntime-cpu"] = {"op_counts": ort_graph_counts(onnx_path)}
    result.runtime["onnxruntime"] = {"providers": ["CPUExecutionProvider"]}
    return result
