"""The ONNX graph of a bundle: folded, native ``Gelu`` (opset >= 20), optional FP16 weights.

Exporter settings: ``torch.onnx.export(..., dynamo=True, opset_version=20, optimize=True,
external_data=False)`` on the :class:`~pace_edge.export.passes.DeployPACE` graph. The
``torch.export``-based exporter maps ``nn.GELU()`` to one ``Gelu`` node at opset >= 20 and its
onnxscript optimizer folds constants.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import tempfile
import warnings
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import __version__
from ..errors import PaceEdgeError
from . import (
    INPUT_NAME,
    MIN_OPSET,
    OUTPUT_NAME,
    Batch,
)

if TYPE_CHECKING:
    from ..bundle import Bundle

ONNX_FILE = "model.onnx"
MAX_OPSET = 23  # newest opset checked with torch.onnx, onnxruntime and OpenVINO here


def deploy_module(bundle: Bundle) -> Any:
    """The bundle's network after all graph passes, pool frozen to its input length."""
    from ..model import build_model
    from .passes import deploy_model

    return deploy_model(build_model(bundle.config, bundle.weights), bundle.input_length)


def _check_opset(opset: int) -> None:
    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise PaceEdgeError(
            f"--opset {opset} is not supported: use {MIN_OPSET}..{MAX_OPSET} "
            f"({MIN_OPSET} is the first opset with a native Gelu)"
        )


def _check_batch(batch: Batch) -> None:
    if batch != "dynamic" and (not isinstance(batch, int) or batch < 1):
        raise PaceEdgeError(f"batch must be a positive number or 'dynamic', got {batch!r}")


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """Silence the exporter's progress prints, deprecation warnings and torchvision notes."""
    registration = logging.getLogger("torch.onnx._internal.exporter._registration")
    level = registration.level
    registration.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            yield
    finally:
        registration.setLevel(level)


def torch_to_onnx(module: Any, length: int, batch: Batch, opset: int) -> Any:
    """An FP32 ``onnx.ModelProto`` of ``module`` (input ``spectrum (batch, length)``)."""
    import torch

    example = torch.zeros(2 if batch == "dynamic" else batch, length)
    kwargs: dict[str, Any] = {}
    if batch == "dynamic":
        kwargs["dynamic_shapes"] = {INPUT_NAME: {0: torch.export.Dim("batch", min=1)}}
    with _quiet_exporter():
        program = torch.onnx.export(
            module.eval(),
            (example,),
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            opset_version=opset,
            dynamo=True,
            optimize=True,
            external_data=False,
            **kwargs,
        )
    return program.model_proto


def to_fp16(model: Any) -> Any:
    """FP16 weights and activations, with the graph input and output kept float32."""
    from onnxruntime.transformers.float16 import convert_float_to_float16
    from onnxruntime.transformers.onnx_model import OnnxModel

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        model = convert_float_to_float16(model, keep_io_types=True)
    OnnxModel.graph_topological_sort(model.graph, is_deterministic=True)  # io Casts go last
    return model


def op_counts(model: Any) -> dict[str, int]:
    """Node count by operator type (domain-qualified when not the default domain)."""
    return dict(
        Counter(f"{n.domain}.{n.op_type}" if n.domain else n.op_type for n in model.graph.node)
    )


def check_graph(model: Any, dim: int, depth: int) -> None:
    """Structural checks on an exported PACE graph; raise :class:`PaceEdgeError` on failure.

    Native Gelu (one per embed and per block x2, no ``Erf``), no ``BatchNormalization``,
    ``depth`` depthwise ``Conv`` nodes with ``group == dim``, float32 ``spectrum``/``logits``.
    """
    import onnx

    counts = op_counts(model)
    problems = []
    if counts.get("BatchNormalization"):
        problems.append(f"{counts['BatchNormalization']} BatchNormalization nodes left")
    if counts.get("Erf") or counts.get("Gelu", 0) != 1 + 2 * depth:
        problems.append(f"GELU not exported as {1 + 2 * depth} native Gelu nodes: {counts}")
    convs = [n for n in model.graph.node if n.op_type == "Conv"]
    groups = [a.i for n in convs for a in n.attribute if a.name == "group"]
    if sum(g == dim for g in groups) != depth:
        problems.append(f"expected {depth} depthwise Conv with group={dim}, got groups {groups}")
    float32 = onnx.TensorProto.FLOAT
    for kind, values, name in (("input", model.graph.input, INPUT_NAME),
                               ("output", model.graph.output, OUTPUT_NAME)):
        if [v.name for v in values] != [name]:
            problems.append(f"graph {kind} is {[v.name for v in values]}, expected [{name!r}]")
        elif values[0].type.tensor_type.elem_type != float32:
            problems.append(f"graph {kind} {name!r} is not float32")
    if problems:
        raise PaceEdgeError("ONNX export check failed: " + "; ".join(problems))


def finalize(model: Any, bundle: Bundle, precision: str) -> Any:
    """The FP32 export ``model`` made final: FP16-converted if asked, tagged and checked."""
    import onnx

    if precision not in ("fp32", "fp16"):
        raise PaceEdgeError(f"ONNX export supports fp32 and fp16, not {precision!r}")
    final = onnx.ModelProto()
    final.CopyFrom(model)
    if precision == "fp16":
        final = to_fp16(final)
    final.producer_name = "pace-edge"
    final.producer_version = __version__
    final.doc_string = f"PACE spectral classifier ({precision}): {INPUT_NAME} -> {OUTPUT_NAME}"
    meta = {
        "pace_edge.classes": json.dumps(list(bundle.classes)),
        "pace_edge.input_length": str(bundle.input_length),
        "pace_edge.precision": precision,
    }
    del final.metadata_props[:]
    for key, value in meta.items():
        final.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(final, full_check=True)
    check_graph(final, bundle.config.dim, bundle.config.depth)
    return final


def build_onnx(bundle: Bundle, batch: Batch = "dynamic", opset: int = 20) -> Any:
    """The unchecked FP32 ``onnx.ModelProto`` of the bundle's deploy graph."""
    _check_opset(opset)
    _check_batch(batch)
    return torch_to_onnx(deploy_module(bundle), bundle.input_length, batch, opset)


def export_onnx(
    bundle: Bundle,
    path: str | Path,
    batch: Batch = "dynamic",
    opset: int = 20,
    precision: str = "fp32",
) -> Path:
    """Export ``bundle`` to an ONNX file at ``path`` and check it (checker + graph checks).

    Input ``spectrum`` ``(batch, input_length)`` float32, output ``logits`` float32;
    ``batch`` is a fixed size or ``"dynamic"``; ``precision`` ``"fp32"`` or ``"fp16"``.
    """
    import onnx

    if precision not in ("fp32", "fp16"):
        raise PaceEdgeError(f"ONNX export supports fp32 and fp16, not {precision!r}")
    model = finalize(build_onnx(bundle, batch, opset), bundle, precision)
    path = Path(path)
    onnx.save_model(model, str(path))
    return path


def ort_graph_counts(path: str | Path) -> dict[str, int]:
    """Operator counts of the graph ONNX Runtime (CPU, all optimisations) actually runs."""
    import onnx
    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as tmp:
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3  # the "hardware specific optimizations" note
        options.optimized_model_filepath = str(Path(tmp) / "optimized.onnx")
        ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        return op_counts(onnx.load(options.optimized_model_filepath))
