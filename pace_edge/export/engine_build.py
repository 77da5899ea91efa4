"""Build, check and record the TensorRT plan of an export on the device: :func:`build_engine`.

Loads and verifies the export's manifest, builds with the TensorRT Python API
(:func:`pace_edge.export.trt_build.build_plan`; FP32 layers with TF32 cleared) from the export's
ONNX model (the Q/DQ model for INT8, with FP16 fallback; the FP32 one otherwise), then runs the
plan with the production :class:`~pace_edge.runtimes.tensorrt_runner.TensorRTRunner` on the
export's engine-check spectra and compares it with ONNX Runtime's logits of the same ONNX file
(:mod:`pace_edge.export.trt_verify`). The export's ``manifest.json`` (and its signature) is never
rewritten: a plan within its precision's tolerance is written beside it as ``model.plan`` with
the device-local record ``engine.json`` (:mod:`pace_edge.export.engine_record`), which the
runners verify; a plan outside it is kept as ``model.plan.rejected`` with
``engine.rejected.json``, a previous plan stays as it was, and :class:`EngineCheckFailed` is
raised.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import PaceEdgeError
from . import trt_build
from .engine_record import (
    REJECTED_FILE,
    EngineRecord,
    rejected_plan_name,
    remove_engine_record,
    write_engine_record,
)
from .manifest import load_manifest
from .trt_build import (
    DEFAULT_WORKSPACE_MB,
    PRECISION_FLAGS,
    QDQ_FILE,
    BatchProfile,
    TensorRTUnavailable,
    build_plan,
)
from .trt_plan import PLAN_FILE, PlanHeader, read_header, read_plan
from .trt_verify import EngineCheckFailed, check_engine, check_record, load_check_data

if TYPE_CHECKING:
    from ..integrity.signing import TrustedKeys


def plan_request(manifest: Any, precision: str | None, workspace: int | None) -> dict[str, Any]:
    """Source ONNX, precision, builder flags, profile and workspace for ``manifest``'s export."""
    settings = manifest.runtime.get("tensorrt")
    root = manifest.path or Path(".")
    if not settings:
        raise PaceEdgeError(f"{root} is a {manifest.target} export; TensorRT plans are built "
                            "from pace-edge export --target jetson or tensorrt")
    precision = precision or settings.get("precision", manifest.precision)
    if precision not in PRECISION_FLAGS:
        precision = "fp32"
    fp16, int8 = PRECISION_FLAGS[precision]
    onnx = [a for a in manifest.artefacts if a.kind in ("onnx", "onnx-qdq")]
    if int8:
        source = next((a for a in onnx if Path(a.path).name == QDQ_FILE), None)
        if source is None:
            raise PaceEdgeError(
                f"{root}: an INT8 plan is built from the Q/DQ model {QDQ_FILE}, which this "
                "export lacks; export with --target jetson --calib DATA"
            )
    else:
        source = next((a for a in onnx if a.precision == "fp32"), None)
        if source is None:
            raise PaceEdgeError(f"{root}: the export has no FP32 ONNX model to build a plan from")
    if "profile" in settings:
        profile = BatchProfile.from_dict(settings["profile"])
    else:
        profile = BatchProfile.from_batch(manifest.input.batch)
    return {
        "source": source.path,
        "precision": precision,
        "fp16": fp16,
        "int8": int8,
        "profile": profile,
        "workspace_mb": workspace or int(settings.get("workspace_mb", DEFAULT_WORKSPACE_MB)),
        "input_name": manifest.input.name,
    }


def plan_logits(plan: Path, manifest: Any) -> tuple[Callable[[np.ndarray], np.ndarray], str,
                                                      Callable[[], None]]:
    """Run the plan at ``plan`` with the production TensorRT runner: its logits function, the
    runtime's name and a function that releases it."""
    from ..runtimes.base import ModelSpec
    from ..runtimes.tensorrt_runner import TensorRTRunner

    header, engine = read_plan(plan)
    runner = TensorRTRunner(engine, ModelSpec.from_manifest(manifest), precision=header.precision,
                            artefact=plan)
    return runner.infer, f"tensorrt-{header.tensorrt_version} ({header.gpu_name})", runner.close


def build_engine(
    export_dir: str | Path,
    precision: str | None = None,
    workspace: int | None = None,
    trusted_keys: TrustedKeys | None = None,
    log: Callable[[str], None] = lambda line: None,
) -> tuple[Path, PlanHeader, dict[str, Any]]:
    """Build the plan of the export in ``export_dir``, check it and record it beside the export.

    Returns the plan's path, its header and the check record. :class:`PaceEdgeError` when
    TensorRT or a GPU is missing here (nothing changes), :class:`EngineCheckFailed` when the plan
    fails its check (kept as a rejected plan). ``log`` receives progress lines.
    """
    export_dir = Path(export_dir)
    manifest = load_manifest(export_dir, trusted_keys)
    request = plan_request(manifest, precision, workspace)
    data = load_check_data(manifest, request["source"])
    try:
        trt = trt_build.import_tensorrt()  # looked up on use: tests stand in for TensorRT
        if trt_build.gpu_info() is None:
            raise TensorRTUnavailable("no NVIDIA GPU is visible here")
    except TensorRTUnavailable as exc:
        raise PaceEdgeError(
            f"{exc}: cannot build a TensorRT plan on this machine; build it on the device that "
            f"runs it (pace-edge build-engine there, or pace-stream --build-engine --model DIR). "
            "pace-edge doctor says what this machine can run"
        ) from None
    final = export_dir / PLAN_FILE
    staged = final.with_name(final.name + ".building")
    log(f"building TensorRT {trt.__version__} plan from {request['source']} "
        f"({request['precision']}, TF32 off, batch {request['profile'].to_dict()}, workspace "
        f"{request['workspace_mb']} MiB)")
    try:
        build_plan(
            export_dir / request["source"], staged, precision=request["precision"],
            profile=request["profile"], workspace_mb=request["workspace_mb"],
            input_name=request["input_name"], trt=trt,
        )
        header = read_header(staged)
        logits, runtime, release = plan_logits(staged, manifest)
        try:
            result = check_engine(logits, data, header.precision, artefact=PLAN_FILE,
                                  runtime=runtime)
        finally:
            release()
        check = check_record(result, data, "pace-edge build-engine (TensorRT Python API)")
        log(f"engine check against {check['reference']}: {result.describe()}")
        if not result.passed:
            rejected = export_dir / rejected_plan_name()
            os.replace(staged, rejected)
            write_engine_record(export_dir, EngineRecord.for_plan(rejected, header, check),
                                REJECTED_FILE)
            raise EngineCheckFailed(
                f"the TensorRT plan fails the {header.precision} engine check "
                f"({result.describe()}); kept as {rejected.name}, not used, the result is in "
                f"{REJECTED_FILE}"
            )
        remove_engine_record(export_dir)  # the old record would not match the new plan
        os.replace(staged, final)
    finally:
        staged.unlink(missing_ok=True)
    write_engine_record(export_dir, EngineRecord.for_plan(final, header, check))
    return final, header, check
