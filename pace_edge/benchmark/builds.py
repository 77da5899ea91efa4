"""Builds to benchmark: a bundle exported for a target at a precision, or the bundle itself.

A build is named ``target:precision`` (``onnx:fp32``, ``openvino:int8``, ``x86:int8``,
``torch:fp32`` = the bundle on PyTorch eager, the baseline), optionally ``@backend`` to pick
which runtime runs an export that holds several (``x86:int8@onnxruntime``). Exports go through
:func:`pace_edge.export.exporter.export_bundle` (the same code path, checks and manifest as a
user's ``pace-edge export``)
into ``WORKDIR/<target>-<precision>``; an export already there is reused when its manifest
verifies and records the bundle's current weights. A user error (unreadable calibration data)
stops the benchmark with its one-line message, as any other command's does.

Status of a build:

* ``ok``: exported, parity (and the INT8 accuracy gate, if it ran) passed;
* ``exported but failed validation``: written, but a gate failed (parity, the accuracy gate,
  the INT8 sensitivity tolerance); the reason is in the table, and it is measured only with
  ``--allow-failed``;
* ``exported, cannot run here``: e.g. a TensorRT export on a machine without TensorRT or GPU
  (for TensorRT builds ``pace-edge build-engine`` runs after the export, as on a device).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import PaceEdgeError

if TYPE_CHECKING:
    from ..export.manifest import Manifest
    from ..runtimes import Runner

BASELINE = "torch"
# Target -> the backend that runs its export by default.
BACKEND_OF = {
    "torch": "torch",
    "onnx": "onnxruntime",
    "openvino": "openvino",
    "x86": "openvino",
    "tensorrt": "tensorrt",
    "jetson": "tensorrt",
}
STATUS_OK = "ok"
STATUS_INVALID = "exported but failed validation"
STATUS_UNRUNNABLE = "exported, cannot run here"


@dataclass(frozen=True)
class BuildSpec:
    """What to build: an export ``target`` (or ``torch``) at ``precision``, run by ``backend``."""

    target: str
    precision: str = "fp32"
    backend: str | None = None  # None: the target's default (BACKEND_OF)

    @property
    def runtime(self) -> str:
        return self.backend or BACKEND_OF[self.target]

    @property
    def label(self) -> str:
        default = self.backend in (None, BACKEND_OF[self.target])
        return f"{self.target}:{self.precision}{'' if default else '@' + str(self.backend)}"

    @property
    def is_baseline(self) -> bool:
        return self.target == BASELINE

    @property
    def export_name(self) -> str:
        """The export's folder name under the work directory."""
        return f"{self.target}-{self.precision}"


def targets() -> list[str]:
    """Every build target: ``torch`` then the export targets."""
    from ..export import TARGETS

    return [BASELINE, *TARGETS]


def check_spec(spec: BuildSpec) -> BuildSpec:
    """``spec`` if its target, precision and backend exist and fit together, else
    :class:`PaceEdgeError` saying what to choose."""
    from ..export import PRECISIONS, TARGETS
    from ..runtimes.select import normalize_backend

    if spec.target not in BACKEND_OF or (spec.target != BASELINE and spec.target not in TARGETS):
        raise PaceEdgeError(f"unknown target {spec.target!r}; choose from {', '.join(targets())}")
    if spec.precision not in PRECISIONS:
        raise PaceEdgeError(
            f"unknown precision {spec.precision!r} in {spec.label}; choose from "
            f"{', '.join(PRECISIONS)}"
        )
    allowed = ("fp32",) if spec.is_baseline else TARGETS[spec.target].precisions
    if spec.precision not in allowed:
        raise PaceEdgeError(
            f"target {spec.target} does not build {spec.precision} (it builds "
            f"{', '.join(allowed)})"
        )
    if spec.backend is not None:
        backend = normalize_backend(spec.backend)
        if backend == "auto" or (spec.is_baseline and backend != "torch"):
            raise PaceEdgeError(f"{spec.label}: choose a concrete backend for this build")
        default = backend == BACKEND_OF[spec.target]
        return BuildSpec(spec.target, spec.precision, None if default else backend)
    return spec


def parse_builds(text: str) -> list[BuildSpec]:
    """``"onnx:fp32,openvino:int8,x86:int8@onnxruntime"`` → checked specs, duplicates dropped.

    A bare target means fp32.
    """
    specs: list[BuildSpec] = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        name, _, backend = item.partition("@")
        target, _, precision = name.partition(":")
        spec = check_spec(BuildSpec(target.strip().lower(), (precision or "fp32").strip().lower(),
                                    backend.strip().lower() or None))
        if spec not in specs:
            specs.append(spec)
    if not specs:
        raise PaceEdgeError("no builds given; e.g. --targets onnx:fp32,openvino:int8")
    return specs


@dataclass
class Build:
    """A built (or failed) :class:`BuildSpec`: its status, directory and why."""

    spec: BuildSpec
    status: str
    path: Path | None = None  # the export directory (the bundle for torch)
    reason: str = ""
    reused: bool = False
    export_s: float = 0.0
    log: str = field(default="", repr=False)
    failed_gates: tuple[str, ...] = ()  # the manifest's failed gates (sensitivity, parity, ...)

    @property
    def label(self) -> str:
        return self.spec.label

    @property
    def runnable(self) -> bool:
        """Whether there is something to run (ok, or exported but failed validation)."""
        return self.status in (STATUS_OK, STATUS_INVALID) and self.path is not None

    def status_text(self) -> str:
        return f"{self.status} ({self.reason})" if self.reason else self.status


def _bundle_sha(bundle_dir: Path) -> str:
    from ..bundle import WEIGHTS_FILE, sha256_file

    return sha256_file(bundle_dir / WEIGHTS_FILE)


def validation_problems(manifest: Manifest) -> list[str]:
    """Why an export is marked failed: failed parity rows and a failed accuracy gate."""
    if "problems" in manifest.status:  # failed gates, accepted ones included
        return [f"{gate}: {text}" for gate, text in manifest.status["problems"].items()]
    problems = [  # an export written before the manifest recorded its status
        f"parity {row.get('artefact')}: max|Δlogit| {row.get('max_abs_diff', float('nan')):.2e}, "
        f"agreement {row.get('agreement', float('nan')):.2%}"
        for row in manifest.parity if not row.get("passed", False)
    ]
    acc = manifest.accuracy
    if acc and not acc.get("passed", True):
        problems.append("accuracy gate failed")
    return problems


def _from_manifest(spec: BuildSpec, out: Path, manifest: Manifest, reason: str = "", *,
                   reused: bool = False, export_s: float = 0.0) -> Build:
    """``ok``, or ``exported but failed validation`` with ``reason`` (the export's error) or
    the manifest's failed checks."""
    problems = validation_problems(manifest)
    status = STATUS_INVALID if problems or reason else STATUS_OK
    return Build(spec, status, out, reason or "; ".join(problems), reused=reused,
                 export_s=export_s,
                 failed_gates=tuple(manifest.status.get("problems", {})))


def qat_epochs(manifest: Manifest) -> int:
    """Epochs of quantisation-aware fine-tuning the export ran before INT8 (0: none)."""
    qat = (manifest.calibration or {}).get("qat") or {}
    return int(qat.get("options", {}).get("epochs", 0))


def reusable(out: Path, bundle_dir: Path, spec: BuildSpec, qat: int = 0) -> Manifest | None:
    """The manifest of a previous export of ``bundle_dir`` for ``spec`` (after ``qat`` epochs
    of quantisation-aware fine-tuning) in ``out``, if it verifies (every file's sha256) and
    records the bundle's current weights."""
    from ..export.manifest import MANIFEST_FILE, load_manifest

    if not (out / MANIFEST_FILE).is_file():
        return None
    try:
        manifest = load_manifest(out)
    except PaceEdgeError:
        return None
    same = (manifest.target == spec.target and manifest.precision == spec.precision
            and manifest.source.get("weights_sha256") == _bundle_sha(bundle_dir)
            and qat_epochs(manifest) == qat)
    return manifest if same else None


def export_build(
    bundle_dir: str | Path,
    spec: BuildSpec,
    workdir: str | Path,
    *,
    calib: str | Path | None = None,
    reuse: bool = True,
    qat: int = 0,
) -> Build:
    """Export ``bundle_dir`` for ``spec`` into ``workdir/<target>-<precision>`` with
    :func:`~pace_edge.export.exporter.export_bundle` (what ``pace-edge export`` runs), or reuse
    a matching export there (its calibration data is not compared: ``reuse=False`` to export
    again). ``calib``: INT8 calibration data (default: the bundle's training source); ``qat``:
    epochs of quantisation-aware fine-tuning before INT8 (``pace-edge export --qat``).

    A user error (unreadable calibration data, a target this install cannot build) is raised;
    an export that fails a gate is benchmarked and reported as ``exported but failed
    validation``; a TensorRT export whose plan cannot be built here is ``exported, cannot run
    here``."""
    from ..export import ExportOptions
    from ..export.exporter import export_bundle

    bundle_dir = Path(bundle_dir)
    spec = check_spec(spec)
    if spec.is_baseline:
        return Build(spec, STATUS_OK, bundle_dir)
    out = Path(workdir) / spec.export_name
    if reuse:
        manifest = reusable(out, bundle_dir, spec, qat)
        if manifest is not None:
            return _from_manifest(spec, out, manifest, reused=True)
    log: list[str] = []
    # force replaces a stale export (and, as for a user's --force, accepts a failed accuracy
    # gate: the manifest still records it and the build is reported as failed validation)
    options = ExportOptions(precision=spec.precision, force=True,
                            calib=calib if spec.precision == "int8" else None,
                            qat=qat if spec.precision == "int8" else 0)
    start = time.perf_counter()
    result = export_bundle(bundle_dir, spec.target, out, options, log=log.append)
    seconds = time.perf_counter() - start
    build = _from_manifest(spec, out, result.manifest, export_s=seconds)
    if spec.runtime == "tensorrt" and build.runnable:
        from ..export.engine_build import build_engine

        try:
            build_engine(out, log=log.append)
        except PaceEdgeError as exc:  # no TensorRT or GPU here, or the plan fails its check
            build.status, build.reason = STATUS_UNRUNNABLE, f"build-engine: {exc}"
    build.log = "\n".join(log)
    return build


def open_runner(build: Build, threads: int | None = None) -> Runner:
    """A runner for a runnable build (its spec's backend and precision, ``threads`` threads),
    even one that failed validation: the caller decides whether to measure those."""
    from ..runtimes import load_runner

    if not build.runnable or build.path is None:
        raise PaceEdgeError(f"{build.label}: {build.status_text()}")
    spec = build.spec
    if spec.is_baseline:
        return load_runner(build.path, backend="torch", threads=threads)
    # A TensorRT export holds FP32 ONNX whatever the precision (the builder's flags make the
    # plan FP16/INT8): let the runtime find the plan built on the device.
    precision = None if spec.runtime == "tensorrt" else spec.precision
    return load_runner(build.path, backend=spec.runtime, precision=precision, threads=threads,
                       allow_failed=True)


def model_size_mb(runner: Runner) -> float | None:
    """Size on disk of what ``runner`` loads: the ONNX file, the IR's ``.xml`` + ``.bin``,
    the TensorRT plan, or a bundle's weights file."""
    from ..bundle import WEIGHTS_FILE

    path = runner.artefact
    if path is None:
        return None
    files = [path / WEIGHTS_FILE] if path.is_dir() else [path]
    if path.suffix == ".xml":
        files.append(path.with_suffix(".bin"))
    sizes = [f.stat().st_size for f in files if f.is_file()]
    return sum(sizes) / 1e6 if sizes else None


__all__ = [
    "BACKEND_OF",
    "BASELINE",
    "STATUS_INVALID",
    "STATUS_OK",
    "STATUS_UNRUNNABLE",
    "Build",
    "BuildSpec",
    "check_spec",
    "export_build",
    "model_size_mb",
    "open_runner",
    "parse_builds",
    "reusable",
    "targets",
    "validation_problems",
]
