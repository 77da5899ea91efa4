"""``engine.json``: the device-local record of the TensorRT plan built beside an export.

A TensorRT plan is built on the device that runs it, after the export was written and perhaps
signed, so it cannot be listed in ``manifest.json`` without rewriting (and unsigning) it. The
builders (``pace-edge build-engine``, ``pace-stream --build-engine``) therefore never touch the
manifest: they write the plan (``model.plan``) and this record beside it, covered by its own
digest ``engine.json.sha256`` (:mod:`pace_edge.integrity.digest`)::

    {"format": "pace-edge-engine", "format_version": 1,
     "plan": "model.plan", "plan_sha256": "…", "plan_bytes": 123456,
     "source_onnx": "model.onnx", "source_onnx_sha256": "…",   # as listed in the manifest
     "precision": "fp16", "tensorrt_version": "10.3.0.30", "gpu_name": "Orin",
     "compute_capability": "8.7", "builder_flags": ["FP16"], "cleared_flags": ["TF32"],
     "batch": {"min": 1, "opt": 8, "max": 64},
     "check": {"passed": true, "max_abs_diff": …, "agreement": …, …}, "created": "…"}

A runner accepts the plan only when (:func:`device_plan`, then :func:`plan_problem`): the record
matches its digest and the plan file its sha256 (otherwise :class:`BundleError`: edited or
swapped, whatever backend was asked for); its source ONNX is listed in the verified (and, with
trusted keys, signed) manifest with the same sha256; and its engine check passed (otherwise the
plan is stale or unchecked: not used, with the command that rebuilds it). A plan that fails its
check is kept as ``model.plan.rejected`` with its record in ``engine.rejected.json``; runners
never read those. The digest catches accidental and naive edits; the plan is as trustworthy as
the device that built it (it is not signed by the export's key). Torch-free, TensorRT-free.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from .. import __version__
from ..errors import BundleError
from ..integrity.digest import digest_path, sha256_file, strict_json, verify_digest, write_digest
from .trt_plan import PLAN_FILE, PlanMismatch

if TYPE_CHECKING:
    from .manifest import Artefact, Manifest
    from .trt_plan import PlanHeader

ENGINE_FILE = "engine.json"
REJECTED_FILE = "engine.rejected.json"
REJECTED_SUFFIX = ".rejected"
FORMAT = "pace-edge-engine"
FORMAT_VERSION = 1
PLAN_KIND = "tensorrt-plan"
_REBUILD = "rebuild it with pace-edge build-engine (or pace-stream --build-engine)"


@dataclass
class EngineRecord:
    """What a device built beside an export: the plan, its source, its TensorRT and GPU, and
    its engine check against ONNX Runtime."""

    plan: str
    plan_sha256: str
    plan_bytes: int
    source_onnx: str
    source_onnx_sha256: str
    precision: str
    tensorrt_version: str
    gpu_name: str
    compute_capability: str
    check: dict[str, Any]
    builder_flags: list[str] = field(default_factory=list)
    cleared_flags: list[str] = field(default_factory=list)
    batch: dict[str, int] = field(default_factory=dict)
    created: str = ""
    pace_edge: str = __version__

    @property
    def passed(self) -> bool:
        return self.check.get("passed") is True

    @classmethod
    def for_plan(cls, plan: Path, header: PlanHeader, check: dict[str, Any]) -> EngineRecord:
        """The record of the plan file ``plan`` (hashed here), built as ``header`` says."""
        return cls(
            plan=plan.name, plan_sha256=sha256_file(plan), plan_bytes=plan.stat().st_size,
            source_onnx=header.source_onnx, source_onnx_sha256=header.source_onnx_sha256,
            precision=header.precision, tensorrt_version=header.tensorrt_version,
            gpu_name=header.gpu_name, compute_capability=header.compute_capability,
            check=check, builder_flags=list(header.builder_flags),
            cleared_flags=list(header.cleared_flags), batch=dict(header.batch),
            created=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        )

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "format_version": FORMAT_VERSION, **asdict(self)}

    def artefact(self) -> Artefact:
        """The plan as an artefact a runner loads (kind ``tensorrt-plan``)."""
        from .manifest import Artefact

        return Artefact(self.plan, PLAN_KIND, self.precision, self.plan_sha256, self.plan_bytes)

    def describe(self) -> str:
        """``"model.plan (fp16, TensorRT 10.3.0.30 on Orin, engine check passed)"``."""
        verdict = "passed" if self.passed else "FAILED"
        return (f"{self.plan} ({self.precision}, TensorRT {self.tensorrt_version} on "
                f"{self.gpu_name}, engine check {verdict})")


def write_engine_record(directory: str | Path, record: EngineRecord,
                        name: str = ENGINE_FILE) -> Path:
    """Write ``record`` as ``directory``/``name`` (strict JSON) and its digest; return it."""
    path = Path(directory) / name
    text = strict_json(record.to_dict()).encode()
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(text)
    tmp.replace(path)
    write_digest(path, text)
    return path


def remove_engine_record(directory: str | Path, name: str = ENGINE_FILE) -> None:
    """Remove ``directory``/``name`` and its digest (before a new plan replaces the old)."""
    path = Path(directory) / name
    path.unlink(missing_ok=True)
    digest_path(path).unlink(missing_ok=True)


def _from_dict(data: Any, path: Path) -> EngineRecord:
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise BundleError(f"{path}: not a pace-edge engine record")
    version = data.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise BundleError(f"{path}: engine record format {version} is newer than this "
                          f"pace-edge understands ({FORMAT_VERSION}); upgrade pace-edge")
    known = {f.name for f in fields(EngineRecord)}
    try:
        record = EngineRecord(**{k: v for k, v in data.items() if k in known})
    except TypeError as exc:
        raise BundleError(f"{path}: malformed engine record ({exc})") from None
    ok = (isinstance(record.plan, str) and isinstance(record.plan_sha256, str)
          and isinstance(record.plan_bytes, int) and isinstance(record.source_onnx, str)
          and isinstance(record.source_onnx_sha256, str) and isinstance(record.check, dict))
    rel = PurePosixPath(record.plan) if isinstance(record.plan, str) else None
    if not ok or rel is None or rel.is_absolute() or ".." in rel.parts or not rel.parts:
        raise BundleError(f"{path}: malformed engine record (plan, hashes or check)")
    return record


def read_engine_record(directory: str | Path, name: str = ENGINE_FILE) -> EngineRecord | None:
    """The record ``directory``/``name`` checked against its digest, or ``None`` when the
    device has built no plan there; :class:`BundleError` when it was edited or is malformed."""
    path = Path(directory) / name
    if not path.is_file():
        return None
    data = path.read_bytes()
    verify_digest(path, data, _REBUILD)
    try:
        document = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(f"{path}: not valid JSON ({exc})") from None
    return _from_dict(document, path)


def check_plan_digest(record: EngineRecord, plan: Path, sha256: str, size: int) -> None:
    """:class:`BundleError` unless the plan file's ``sha256`` and ``size`` are the recorded."""
    if sha256 != record.plan_sha256 or size != record.plan_bytes:
        raise BundleError(f"{plan}: sha256 {sha256[:12]}… does not match {ENGINE_FILE} "
                          f"({record.plan_sha256[:12]}…): the plan was replaced or altered after "
                          f"it was built; {_REBUILD}")


def device_plan(manifest: Manifest) -> EngineRecord | None:
    """The export's device-built plan: its record (digest checked) with the plan file's sha256
    and size checked, or ``None`` when none was built; :class:`BundleError` when the record was
    edited or the plan swapped. Whether it fits the manifest: :func:`plan_problem`."""
    root = manifest.path or Path(".")
    record = read_engine_record(root)
    if record is None:
        return None
    plan = root / record.plan
    if not plan.is_file():
        raise BundleError(f"{plan}: the plan recorded in {ENGINE_FILE} is missing; {_REBUILD}")
    check_plan_digest(record, plan, sha256_file(plan), plan.stat().st_size)
    return record


def _source(manifest: Manifest, record: EngineRecord) -> Artefact | None:
    return next((a for a in manifest.artefacts
                 if a.path == record.source_onnx and a.kind in ("onnx", "onnx-qdq")), None)


def plan_problem(manifest: Manifest, record: EngineRecord) -> str:
    """Why the (integrity-checked) plan of ``record`` may not run this export, or ``""``: its
    source ONNX must be listed by the verified manifest with the same sha256, and its engine
    check must have passed."""
    source = _source(manifest, record)
    if source is None:
        return (f"{record.plan} was built from {record.source_onnx}, which this export's "
                "manifest does not list")
    if source.sha256 != record.source_onnx_sha256:
        return (f"{record.plan} was built from {record.source_onnx} with sha256 "
                f"{record.source_onnx_sha256[:12]}…, not from this export's "
                f"({source.sha256[:12]}…)")
    if not record.passed:
        return f"{ENGINE_FILE} records no passed engine check for {record.plan}"
    return ""


def check_plan_record(manifest: Manifest, record: EngineRecord, hint: str = _REBUILD) -> None:
    """:class:`PlanMismatch` (with ``hint``) when :func:`plan_problem` finds one."""
    problem = plan_problem(manifest, record)
    if problem:
        raise PlanMismatch(problem, hint)


def rejected_plan_name() -> str:
    """``model.plan.rejected``: where a plan that failed its engine check is kept."""
    return PLAN_FILE + REJECTED_SUFFIX


__all__ = [
    "ENGINE_FILE",
    "FORMAT",
    "FORMAT_VERSION",
    "PLAN_KIND",
    "REJECTED_FILE",
    "EngineRecord",
    "check_plan_digest",
    "check_plan_record",
    "device_plan",
    "plan_problem",
    "read_engine_record",
    "rejected_plan_name",
    "remove_engine_record",
    "write_engine_record",
]
