"""TensorRT targets: ONNX made for TensorRT's parser, plus what the device checks its engine with.

No engine is built at export time: a TensorRT plan only deserializes with the TensorRT version
and on the GPU model it was built with, so it is built on the device, by ``pace-edge
build-engine`` (TensorRT's Python API) or ``pace-stream --build-engine`` (its C++ API, no Python
needed); both write the same plan (:mod:`.trt_plan`) and check it before listing it.

* ``tensorrt`` (fp32, fp16) and ``jetson`` (fp32, fp16, int8): ``model.onnx`` (FP32; FP16 is
  the builder's FP16 flag). ``jetson`` int8 adds ``model_int8_qdq.onnx``: explicit quantisation
  (symmetric INT8 Q/DQ, checked by :mod:`.qdq_rules`), built with INT8 and FP16 enabled. Q/DQ
  is the one INT8 path (implicit INT8 calibration is deprecated in TensorRT 10, removed in 11).
* the engine check (:mod:`.trt_verify`): ``engine_check_spectra.f32``, the parity spectra, and
  per ONNX file the logits ONNX Runtime gives for them (``engine_check_<stem>.f32``), raw
  little-endian float32, shapes in the manifest. The device compares its engine with these
  (what ``polygraphy run --trt --onnxrt`` compares, with ONNX Runtime's outputs saved here).

The manifest's ``runtime["tensorrt"]`` records the TensorRT version the export is written for
(its ONNX opset capped at what that version parses), the input spec, the optimisation profile
(fixed ``--batch N`` -> N/N/N, dynamic -> 1/8/64 unless ``extra["batch_profile"]``), builder
flags, workspace, the engine check and the commands that build the plan.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import PaceEdgeError
from . import INPUT_NAME, TENSORRT_MAX_OPSET, TENSORRT_VERSION, ExportOptions, TargetResult
from .onnx_graph import ONNX_FILE, export_onnx, ort_graph_counts
from .onnx_target import onnx_parity
from .qdq_rules import require_conforming
from .quantize.pipeline import export_int8
from .trt_build import (
    CLEARED_FLAGS,
    DEFAULT_DYNAMIC_PROFILE,
    DEFAULT_WORKSPACE_MB,
    PRECISION_FLAGS,
    QDQ_FILE,
    BatchProfile,
    builder_flags,
)
from .trt_plan import PLAN_FILE
from .trt_verify import SPECTRA_FILE, reference_file, tolerance_record, write_f32

if TYPE_CHECKING:
    from ..bundle import Bundle

NO_ENGINE = (
    "no engine is built at export time: a TensorRT plan is specific to the TensorRT version "
    "and GPU that build it; build it on the target with `pace-edge build-engine --export DIR` "
    "or `pace-stream --build-engine --model DIR`"
)
ENGINE_CHECK_SPECTRA = 256  # at most this many parity spectra are kept for the engine check


def batch_profile(options: ExportOptions) -> BatchProfile:
    """The optimisation profile for ``options.batch`` (``extra["batch_profile"]`` if dynamic)."""
    if options.batch == "dynamic":
        return BatchProfile(*options.extra.get("batch_profile", DEFAULT_DYNAMIC_PROFILE))
    return BatchProfile.from_batch(options.batch)


def input_spec(length: int, options: ExportOptions, profile: BatchProfile) -> dict[str, Any]:
    """The engine input: name, dtype, layout and the profile's min/opt/max shapes."""
    shapes = profile.shapes(length)
    return {
        "name": INPUT_NAME,
        "dtype": "float32",
        "layout": "(batch, points)",
        "length": length,
        "dynamic_batch": options.batch == "dynamic",
        **{f"{k}_shape": list(v) for k, v in shapes.items()},
    }


def build_commands() -> dict[str, str]:
    """The two commands that build, check and record the plan on the device (run in the export)."""
    return {
        "python": "pace-edge build-engine --export .",
        "native": "pace-stream --build-engine --model .",
    }


def engine_check(bundle: Bundle, out_dir: Path, options: ExportOptions,
                 sources: list[str]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Write the parity spectra and ONNX Runtime's logits of each ONNX file in ``sources``.

    The spectra are the export's synthetic parity spectra scaled to the training inputs (never
    the ``--eval`` data: a gate uses no test spectra). Returns the artefact entries and the
    manifest's ``engine_check`` record.
    """
    from .parity import inputs_for, onnx_logits

    x = inputs_for(bundle, replace(options, parity_data=None))[:ENGINE_CHECK_SPECTRA]
    write_f32(out_dir / SPECTRA_FILE, x)
    artefacts = [{"path": SPECTRA_FILE, "kind": "engine-check-spectra", "precision": "fp32"}]
    references = {}
    import onnxruntime

    for source in sources:
        logits = onnx_logits(out_dir / source, x, options.batch)
        name = reference_file(source)
        write_f32(out_dir / name, logits)
        artefacts.append({"path": name, "kind": "engine-check-logits", "precision": "fp32"})
        references[source] = {"file": name, "runtime": f"onnxruntime {onnxruntime.__version__} "
                                                       "CPUExecutionProvider"}
    record = {
        "spectra": SPECTRA_FILE,
        "count": int(x.shape[0]),
        "length": int(x.shape[1]),
        "classes": len(bundle.classes),
        "dtype": "float32 little-endian, row-major",
        "references": references,
        "tolerances": tolerance_record(),
    }
    return artefacts, record


def _runtime(source: str, length: int, options: ExportOptions, profile: BatchProfile,
             precision: str, workspace_mb: int, check: dict[str, Any], **extra: Any
             ) -> dict[str, Any]:
    fp16, int8 = PRECISION_FLAGS[precision]
    return {
        "tensorrt": {
            "engine_built": False,
            "note": NO_ENGINE,
            "tensorrt_version": TENSORRT_VERSION,
            "max_opset": TENSORRT_MAX_OPSET[TENSORRT_VERSION],
            "onnx": source,
            "precision": precision,
            "quantization": "explicit (Q/DQ)" if int8 else None,
            "builder_flags": builder_flags(fp16, int8),
            "cleared_flags": list(CLEARED_FLAGS),
            "input": input_spec(length, options, profile),
            "profile": profile.to_dict(),
            "workspace_mb": workspace_mb,
            "plan_file": PLAN_FILE,
            "build": build_commands(),
            "engine_check": check,
            **extra,
        }
    }


def _fp32_onnx(bundle: Bundle, out_dir: Path, options: ExportOptions) -> tuple[Path, dict]:
    """``model.onnx`` (FP32) and its ONNX Runtime parity row (FP32 limits)."""
    path = export_onnx(bundle, out_dir / ONNX_FILE, options.batch, options.opset, "fp32")
    return path, onnx_parity(bundle, path, replace(options, precision="fp32"), ONNX_FILE)


def export(bundle: Bundle, out_dir: Path, options: ExportOptions) -> TargetResult:
    """Target ``tensorrt``: FP32 ``model.onnx`` built as an FP32 or FP16 plan on the device."""
    if options.precision not in ("fp32", "fp16"):
        raise PaceEdgeError(f"target tensorrt supports fp32 and fp16, not {options.precision}")
    return _float_export(bundle, out_dir, options)


def _float_export(bundle: Bundle, out_dir: Path, options: ExportOptions) -> TargetResult:
    profile = batch_profile(options)
    workspace = int(options.extra.get("workspace_mb", DEFAULT_WORKSPACE_MB))
    path, parity = _fp32_onnx(bundle, out_dir, options)
    check_files, check = engine_check(bundle, out_dir, options, [ONNX_FILE])
    return TargetResult(
        artefacts=[{"path": ONNX_FILE, "kind": "onnx", "precision": "fp32"}, *check_files],
        parity=[parity],
        executed_graph={"onnxruntime-cpu": {"op_counts": ort_graph_counts(path)}},
        runtime=_runtime(ONNX_FILE, bundle.input_length, options, profile, options.precision,
                         workspace, check),
        opset=options.opset,
    )


def export_jetson(bundle: Bundle, out_dir: Path, options: ExportOptions) -> TargetResult:
    """Target ``jetson``: fp32/fp16 as ``tensorrt``; int8 adds the Q/DQ ONNX.

    INT8 comes from :func:`pace_edge.export.quantize.pipeline.export_int8` (calibration,
    per-layer sensitivity, layers kept float, parity and the accuracy gate on ONNX Runtime);
    its QDQ ``model.onnx`` becomes ``model_int8_qdq.onnx`` beside the FP32 ``model.onnx``.
    """
    if options.precision in ("fp32", "fp16"):
        return _float_export(bundle, out_dir, options)
    if options.precision != "int8":
        raise PaceEdgeError(f"target jetson supports fp32, fp16 and int8, not {options.precision}")
    profile = batch_profile(options)
    workspace = int(options.extra.get("workspace_mb", DEFAULT_WORKSPACE_MB))
    result = int8_qdq(bundle, out_dir, options)
    require_conforming(out_dir / QDQ_FILE, QDQ_FILE)
    fp32_path, fp32_parity = _fp32_onnx(bundle, out_dir, options)
    check_files, check = engine_check(bundle, out_dir, options, [QDQ_FILE, ONNX_FILE])
    result.artefacts = [
        {"path": ONNX_FILE, "kind": "onnx", "precision": "fp32"},
        *result.artefacts,
        *check_files,
    ]
    result.parity = [fp32_parity, *result.parity]
    result.executed_graph = {"onnxruntime-cpu": {"op_counts": ort_graph_counts(fp32_path)},
                             **result.executed_graph}
    result.runtime = {**result.runtime, **_runtime(
        QDQ_FILE, bundle.input_length, options, profile, "int8", workspace, check,
        fallback="fp16")}
    result.opset = options.opset
    return result


def int8_qdq(bundle: Bundle, out_dir: Path, options: ExportOptions) -> TargetResult:
    """The quantize pipeline's ONNX INT8 export, its QDQ model renamed ``model_int8_qdq.onnx``.

    Artefact, parity, accuracy and executed-graph entries are renamed to match.
    """
    with tempfile.TemporaryDirectory(prefix=".int8-", dir=out_dir) as tmp:
        result = export_int8(bundle, Path(tmp), options, ("onnx-qdq",))
        for artefact in result.artefacts:
            name = QDQ_FILE if artefact["path"] == ONNX_FILE else artefact["path"]
            shutil.move(str(Path(tmp) / artefact["path"]), str(out_dir / name))
            artefact["path"] = name
    if not (out_dir / QDQ_FILE).is_file():
        raise PaceEdgeError(f"the INT8 pipeline wrote no QDQ {ONNX_FILE}")
    for row in [*result.parity, *((result.accuracy or {}).get("artefacts", []))]:
        if row.get("artefact") == ONNX_FILE:
            row["artefact"] = QDQ_FILE
    result.executed_graph = {
        (f"{k} ({QDQ_FILE})" if k == "onnxruntime-cpu" else k): v
        for k, v in result.executed_graph.items()
    }
    return result


__all__ = [
    "ENGINE_CHECK_SPECTRA",
    "NO_ENGINE",
    "QDQ_FILE",
    "batch_profile",
    "build_commands",
    "engine_check",
    "export",
    "export_jetson",
    "input_spec",
    "int8_qdq",
]
