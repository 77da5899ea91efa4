"""``pace-edge build-engine``: build the TensorRT plan of an export on the machine that runs it.

Loads and verifies the export's manifest, then builds with the TensorRT Python API
(:func:`pace_edge.export.trt_build.build_plan`) from the export's ONNX model: the Q/DQ model for
INT8 (explicit quantisation, FP16 fallback), the FP32 one otherwise. The plan (pace-edge header +
engine) is written beside the manifest and listed in it. Where ``tensorrt`` or a GPU is missing,
it prints the equivalent ``trtexec`` command and fails with one line.
"""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path
from typing import Any

from ..errors import PaceEdgeError
from .common import positive_int

HELP = "build a TensorRT engine (plan) on this machine from a tensorrt or jetson export"
PLAN_KIND = "tensorrt-plan"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("build-engine", help=HELP, description=HELP + ".")
    p.add_argument("--export", required=True, type=Path, dest="export_dir", metavar="DIR",
                   help="export directory (pace-edge export --target tensorrt|jetson)")
    p.add_argument("--fp16", action="store_true",
                   help="allow FP16 kernels (default: as exported)")
    p.add_argument("--int8", action="store_true",
                   help="INT8 from the export's Q/DQ model (explicit quantisation)")
    p.add_argument("--workspace", type=positive_int, metavar="MB",
                   help="builder workspace limit in MiB (default: as exported, 1024)")
    p.add_argument("--out", type=Path, metavar="PLAN",
                   help="plan file to write (default DIR/model.plan)")
    p.set_defaults(run=run)


def plan_request(manifest: Any, fp16: bool, int8: bool, workspace: int | None
                 ) -> dict[str, Any]:
    """Source ONNX, precision, builder flags, profile and workspace for ``manifest``'s export.

    Without ``--fp16``/``--int8`` the export's own precision decides (jetson int8: INT8 with
    FP16 fallback); with them, exactly the flags given.
    """
    from ..export.manifest import Artefact
    from ..export.trt_build import (
        DEFAULT_WORKSPACE_MB,
        PRECISION_FLAGS,
        QDQ_FILE,
        BatchProfile,
    )

    settings = manifest.runtime.get("tensorrt", {})
    if fp16 or int8:
        precision = "int8" if int8 else "fp16"
    else:
        precision = settings.get("precision", manifest.precision)
        if precision not in PRECISION_FLAGS:
            precision = "fp32"
        fp16, int8 = PRECISION_FLAGS[precision]
    root = manifest.path or Path(".")
    artefacts: list[Artefact] = manifest.artefacts
    onnx = [a for a in artefacts if a.kind == "onnx"]
    if int8:
        source = next((a for a in onnx if a.precision == "int8"), None) or next(
            (a for a in artefacts if Path(a.path).name == QDQ_FILE), None)
        if source is None:
            raise PaceEdgeError(
                f"{root}: --int8 needs the Q/DQ model of an INT8 export ({QDQ_FILE}); export "
                "with --target jetson --precision int8"
            )
    else:
        source = next((a for a in onnx if a.precision == "fp32"), None) or next(
            (a for a in onnx if a.precision != "int8"), None)
        if source is None:
            raise PaceEdgeError(f"{root}: the export has no ONNX model to build an engine from")
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
        "dynamic": manifest.input.batch == "dynamic",
        "workspace_mb": workspace or int(settings.get("workspace_mb", DEFAULT_WORKSPACE_MB)),
        "input_name": manifest.input.name,
        "length": manifest.input.length,
    }


def trtexec_line(export_dir: Path, request: dict[str, Any]) -> str:
    """The equivalent ``trtexec`` command, run from the export directory."""
    from ..export.trt_build import shell_command, trtexec_command

    args = trtexec_command(
        request["source"], "model.engine", input_name=request["input_name"],
        length=request["length"], profile=request["profile"] if request["dynamic"] else None,
        fp16=request["fp16"], int8=request["int8"], workspace_mb=request["workspace_mb"],
    )
    return f"cd {shlex.quote(str(export_dir))} && {shell_command(args)}"


def run(args: argparse.Namespace) -> int:
    from ..export.manifest import Artefact, load_manifest, write_manifest
    from ..export.trt_build import TensorRTUnavailable, build_plan, gpu_info, import_tensorrt
    from ..export.trt_plan import PLAN_FILE, read_header

    export_dir = Path(args.export_dir)
    manifest = load_manifest(export_dir)
    request = plan_request(manifest, args.fp16, args.int8, args.workspace)
    command = trtexec_line(export_dir, request)
    try:
        trt = import_tensorrt()
        if gpu_info() is None:
            raise TensorRTUnavailable("no NVIDIA GPU is visible here")
    except TensorRTUnavailable as exc:
        print("equivalent trtexec command (TensorRT 10; writes a raw engine without the "
              "pace-edge plan header):")
        print(f"  {command}")
        raise PaceEdgeError(
            f"{exc}: cannot build a TensorRT engine on this machine; build it on the target "
            "device (pace-edge build-engine there, or the trtexec command above)"
        ) from None
    out = args.out or export_dir / PLAN_FILE
    print(f"building TensorRT {trt.__version__} engine from {request['source']} "
          f"({request['precision']}, batch {request['profile'].to_dict()}, workspace "
          f"{request['workspace_mb']} MiB)")
    fp16_override = request["fp16"] if (args.fp16 or args.int8) else None
    path = build_plan(
        export_dir / request["source"], out, precision=request["precision"],
        profile=request["profile"], workspace_mb=request["workspace_mb"],
        input_name=request["input_name"], fp16=fp16_override, trt=trt,
    )
    header = read_header(path)
    print(f"wrote {path} ({header.engine_bytes / 1e6:.2f} MB engine; TensorRT "
          f"{header.tensorrt_version}, {header.gpu_name} sm {header.compute_capability}, "
          f"flags {header.builder_flags or ['none']})")
    _register(manifest, export_dir, path, header, write_manifest, Artefact)
    return 0


def _register(manifest: Any, export_dir: Path, path: Path, header: Any, write_manifest: Any,
              artefact_cls: Any) -> None:
    """List a plan written inside the export in its manifest (re-hashed)."""
    try:
        rel = path.resolve().relative_to(export_dir.resolve()).as_posix()
    except ValueError:
        print(f"note: {path} is outside {export_dir}, so the export's manifest does not list it")
        return
    manifest.artefacts = [a for a in manifest.artefacts if a.path != rel]
    manifest.artefacts.append(artefact_cls(path=rel, kind=PLAN_KIND, precision=header.precision))
    trt_runtime = manifest.runtime.setdefault("tensorrt", {})
    trt_runtime["engine_built"] = True
    trt_runtime["plan"] = {
        "path": rel,
        "tensorrt_version": header.tensorrt_version,
        "gpu_name": header.gpu_name,
        "compute_capability": header.compute_capability,
        "builder_flags": header.builder_flags,
        "source_onnx": header.source_onnx,
    }
    write_manifest(export_dir, manifest)
    print(f"listed {rel} in {export_dir / 'manifest.json'}")
