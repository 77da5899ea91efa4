"""TensorRT targets: ONNX made for TensorRT's parser, a build script, and (INT8) Q/DQ + cache.

No engine is built at export time: a TensorRT plan only deserializes with the TensorRT version
and on the GPU model it was built with, so it is built on the device, by ``build_engine.sh``
(``trtexec``) or ``pace-edge build-engine`` (Python API, plan with a checked header).

* ``tensorrt`` (fp32, fp16): ``model.onnx`` (FP32; FP16 is the builder's ``--fp16``) and
  ``build_engine.sh``.
* ``jetson`` (fp16; int8 = INT8 with FP16 fallback): for int8 also ``model_int8_qdq.onnx``
  (explicit quantisation: symmetric INT8 Q/DQ, checked by :mod:`.qdq_rules`) and
  ``calibration.cache`` (TensorRT's calibration-table text, for implicit INT8 on TensorRT
  8.6-10.x only). Commands use TensorRT 10 syntax: JetPack 6 ships TensorRT 10.3.

The manifest's ``runtime["tensorrt"]`` records the input spec, the optimisation profile (fixed
``--batch N`` -> N/N/N, dynamic -> 1/8/64 unless ``extra["batch_profile"]``), builder flags,
workspace and the trtexec command. INT8 comes from :mod:`.quantize`, imported on use.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import __version__
from ..errors import PaceEdgeError
from . import INPUT_NAME, ExportOptions, TargetResult
from .onnx_target import ONNX_FILE, export_onnx, onnx_parity, ort_graph_counts
from .trt_build import (
    DEFAULT_DYNAMIC_PROFILE,
    DEFAULT_WORKSPACE_MB,
    QDQ_FILE,
    BatchProfile,
    builder_flags,
    shell_command,
    trtexec_command,
)
from .trt_calibration_cache import DEFAULT_TENSORRT_VERSION, CalibrationCache, amax_from_qdq
from .trt_plan import PLAN_FILE

if TYPE_CHECKING:
    from ..bundle import Bundle

CACHE_FILE = "calibration.cache"
SCRIPT_FILE = "build_engine.sh"
ENGINE_FILE = "model.engine"  # trtexec's raw engine (no pace-edge header)
TENSORRT_MAJOR = 10  # the syntax build_engine.sh is written for
NO_ENGINE = (
    "no engine is built at export time: a TensorRT plan is specific to the TensorRT version "
    "and GPU that build it; build it on the target with build_engine.sh or "
    "`pace-edge build-engine --export DIR`"
)


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


def _commands(
    onnx: str, length: int, options: ExportOptions, profile: BatchProfile, fp16: bool,
    int8: bool, workspace_mb: int,
) -> list[str]:
    return trtexec_command(
        onnx, ENGINE_FILE, input_name=INPUT_NAME, length=length,
        profile=profile if options.batch == "dynamic" else None,
        fp16=fp16, int8=int8, workspace_mb=workspace_mb, tensorrt_major=TENSORRT_MAJOR,
    )


def build_script(
    target: str, precision: str, main: list[str], notes: list[tuple[str, list[str]]]
) -> str:
    """``build_engine.sh``: the trtexec command, alternatives commented out with their notes."""
    def line(args: list[str]) -> str:
        return f'"$TRTEXEC" {shell_command(args[1:])}'

    out = [
        "#!/bin/sh",
        f"# Build the TensorRT engine for this pace-edge {__version__} export (target {target}, "
        f"{precision})",
        "# ON the device that will run it: a TensorRT plan only loads with the TensorRT version",
        "# and on the GPU model it was built with. TensorRT 10 syntax (JetPack 6 ships 10.3).",
        "# `pace-edge build-engine --export .` builds the same engine through the TensorRT Python",
        f"# API and writes {PLAN_FILE}, with the header pace-edge runners check.",
        "set -eu",
        'cd "$(dirname "$0")"',
        'TRTEXEC="${TRTEXEC:-trtexec}"  # on JetPack: /usr/src/tensorrt/bin/trtexec',
        line(main),
    ]
    for note, args in notes:
        out += ["", *(f"# {n}" for n in note.splitlines()), f"# {line(args)}"]
    return "\n".join(out) + "\n"


def _write_script(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(0o755)


def _runtime(
    onnx: str, length: int, options: ExportOptions, profile: BatchProfile, fp16: bool,
    int8: bool, workspace_mb: int, command: list[str], **extra: Any,
) -> dict[str, Any]:
    return {
        "tensorrt": {
            "engine_built": False,
            "note": NO_ENGINE,
            "onnx": onnx,
            "precision": "int8" if int8 else "fp16" if fp16 else "fp32",
            "quantization": "explicit (Q/DQ)" if int8 else None,
            "builder_flags": builder_flags(fp16, int8, TENSORRT_MAJOR),
            "input": input_spec(length, options, profile),
            "profile": profile.to_dict(),
            "workspace_mb": workspace_mb,
            "tensorrt_syntax": f"{TENSORRT_MAJOR}.x",
            "trtexec": shell_command(command),
            "build_script": SCRIPT_FILE,
            "plan_file": PLAN_FILE,
            **extra,
        }
    }


def _fp32_onnx(bundle: Bundle, out_dir: Path, options: ExportOptions) -> tuple[Path, dict]:
    """``model.onnx`` (FP32) and its ONNX Runtime parity row (FP32 limits)."""
    path = export_onnx(bundle, out_dir / ONNX_FILE, options.batch, options.opset, "fp32")
    return path, onnx_parity(bundle, path, replace(options, precision="fp32"), ONNX_FILE)


def export(bundle: Bundle, out_dir: Path, options: ExportOptions) -> TargetResult:
    """Target ``tensorrt``: FP32 ``model.onnx`` + ``build_engine.sh`` (``--fp16`` for fp16)."""
    if options.precision not in ("fp32", "fp16"):
        raise PaceEdgeError(f"target tensorrt supports fp32 and fp16, not {options.precision}")
    return _float_export(bundle, out_dir, options, "tensorrt")


def _float_export(bundle: Bundle, out_dir: Path, options: ExportOptions, target: str
                  ) -> TargetResult:
    profile = batch_profile(options)
    workspace = int(options.extra.get("workspace_mb", DEFAULT_WORKSPACE_MB))
    fp16 = options.precision == "fp16"
    path, parity = _fp32_onnx(bundle, out_dir, options)
    L = bundle.input_length
    main = _commands(ONNX_FILE, L, options, profile, fp16, False, workspace)
    notes = []
    if fp16:
        notes.append((
            "TensorRT >= 11 has no --fp16 (strongly typed networks): convert model.onnx with\n"
            "ModelOpt AutoCast to FP16 first, then build it without precision flags:",
            trtexec_command("model_fp16.onnx", ENGINE_FILE, input_name=INPUT_NAME, length=L,
                            profile=profile if options.batch == "dynamic" else None,
                            workspace_mb=workspace, tensorrt_major=11),
        ))
    _write_script(out_dir / SCRIPT_FILE, build_script(target, options.precision, main, notes))
    return TargetResult(
        artefacts=[
            {"path": ONNX_FILE, "kind": "onnx", "precision": "fp32"},
            {"path": SCRIPT_FILE, "kind": "tensorrt-build-script", "precision": options.precision},
        ],
        parity=[parity],
        executed_graph={"onnxruntime-cpu": {"op_counts": ort_graph_counts(path)}},
        runtime=_runtime(ONNX_FILE, L, options, profile, fp16, False, workspace, main),
        opset=options.opset,
    )


def export_jetson(bundle: Bundle, out_dir: Path, options: ExportOptions) -> TargetResult:
    """Target ``jetson``: fp16 as ``tensorrt``; int8 adds the Q/DQ ONNX and calibration cache.

    INT8 comes from :func:`pace_edge.export.quantize.pipeline.export_int8` (calibration,
    per-layer sensitivity, layers kept float, parity and the accuracy gate on ONNX Runtime);
    its QDQ ``model.onnx`` becomes ``model_int8_qdq.onnx`` beside the FP32 ``model.onnx``.
    """
    if options.precision == "fp16":
        return _float_export(bundle, out_dir, options, "jetson")
    if options.precision != "int8":
        raise PaceEdgeError(f"target jetson supports fp16 and int8, not {options.precision}")
    from .qdq_rules import require_conforming

    profile = batch_profile(options)
    workspace = int(options.extra.get("workspace_mb", DEFAULT_WORKSPACE_MB))
    trt_version = str(options.extra.get("tensorrt_version", DEFAULT_TENSORRT_VERSION))
    L = bundle.input_length
    result = int8_qdq(bundle, out_dir, options)
    qdq_path = out_dir / QDQ_FILE
    require_conforming(qdq_path, QDQ_FILE)
    fp32_path, fp32_parity = _fp32_onnx(bundle, out_dir, options)
    cache = CalibrationCache.from_amax(
        tensor_amax(qdq_path, fp32_path, result.calibration or {}, bundle, options), trt_version
    )
    (out_dir / CACHE_FILE).write_text(cache.to_text())

    main = _commands(QDQ_FILE, L, options, profile, True, True, workspace)
    shapes = profile if options.batch == "dynamic" else None
    implicit = trtexec_command(
        ONNX_FILE, "model_implicit.engine", input_name=INPUT_NAME, length=L, profile=shapes,
        fp16=True, int8=True, workspace_mb=workspace, calib=CACHE_FILE,
        tensorrt_major=TENSORRT_MAJOR,
    )
    strongly_typed = trtexec_command(
        QDQ_FILE, ENGINE_FILE, input_name=INPUT_NAME, length=L, profile=shapes, int8=True,
        workspace_mb=workspace, tensorrt_major=11,
    )
    notes = [
        (f"Implicit INT8 from {CACHE_FILE} instead (TensorRT 8.6-10.x only: calibrators are\n"
         "deprecated since 10.1 and removed in 11; every tensor it lists runs INT8, the layers\n"
         f"the Q/DQ model keeps float included). Its header names TensorRT {trt_version}\n"
         f"({cache.header}); re-head it for another TensorRT version:",
         implicit),
        ("TensorRT >= 11 (strongly typed: no --int8/--fp16; layers outside Q/DQ stay FP32):",
         strongly_typed),
    ]
    _write_script(out_dir / SCRIPT_FILE, build_script("jetson", "int8", main, notes))
    cache_entry = {
        "path": CACHE_FILE,
        "header": cache.header,
        "tensorrt_version": trt_version,
        "tensors": len(cache.scales),
        "source": "QuantizeLinear scales of model_int8_qdq.onnx (amax = scale x 127)",
        "use": "implicit INT8 (trtexec --calib) on TensorRT 8.6-10.x; ignored for the Q/DQ model",
    }
    result.artefacts = [
        {"path": ONNX_FILE, "kind": "onnx", "precision": "fp32"},
        *result.artefacts,
        {"path": CACHE_FILE, "kind": "tensorrt-calibration-cache", "precision": "int8"},
        {"path": SCRIPT_FILE, "kind": "tensorrt-build-script", "precision": "int8"},
    ]
    result.parity = [fp32_parity, *result.parity]
    result.executed_graph = {"onnxruntime-cpu": {"op_counts": ort_graph_counts(fp32_path)},
                             **result.executed_graph}
    result.runtime = {**result.runtime, **_runtime(
        QDQ_FILE, L, options, profile, True, True, workspace, main, fallback="fp16",
        calibration_cache=cache_entry)}
    result.calibration = {**(result.calibration or {}), "tensorrt_cache": cache_entry}
    result.opset = options.opset
    return result


def int8_qdq(bundle: Bundle, out_dir: Path, options: ExportOptions) -> TargetResult:
    """The quantize pipeline's ONNX INT8 export, its QDQ model renamed ``model_int8_qdq.onnx``.

    Artefact, parity, accuracy and executed-graph entries are renamed to match.
    """
    try:
        from .quantize.pipeline import export_int8
    except ImportError as exc:
        raise PaceEdgeError(f"INT8 export needs pace_edge.export.quantize: {exc}") from exc
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


def tensor_amax(qdq_path: Path, fp32_path: Path, calibration: dict[str, Any], bundle: Bundle,
                options: ExportOptions) -> dict[str, float]:
    """Per-tensor amax for TensorRT's cache: the Q/DQ model's activation scales x 127.

    Only tensors the Q/DQ model quantises are listed (TensorRT's implicit mode runs a layer in
    INT8 only where its tensors have ranges, so float-kept layers stay float), plus the input:
    from the Q/DQ model, else the calibration's activation ranges, else the calibration
    spectra's maximum.
    """
    amax = amax_from_qdq(qdq_path, fp32_path)
    if INPUT_NAME in amax:
        return amax
    value = (calibration.get("activation_amax") or {}).get(INPUT_NAME)
    if value is None:
        from .quantize import select_calibration
        from .quantize.pipeline import calibration_data

        size = options.extra.get("calib_size", 300)
        cal = select_calibration(bundle, calibration_data(bundle, options.extra.get("calib")),
                                 size, options.seed)
        value = float(np.abs(np.asarray(cal.inputs, np.float64)).max())
    return {INPUT_NAME: float(value)} | amax


__all__ = [
    "CACHE_FILE",
    "ENGINE_FILE",
    "QDQ_FILE",
    "SCRIPT_FILE",
    "batch_profile",
    "build_script",
    "export",
    "export_jetson",
    "input_spec",
    "int8_qdq",
    "tensor_amax",
]
