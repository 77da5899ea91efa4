"""The plan file pace-edge writes around a serialized TensorRT engine, and its checks.

A TensorRT engine ("plan") only deserializes with the TensorRT version that built it (unless
built version-compatible) and on the GPU model it was built for, so pace-edge stores what it was
built with in front of the engine bytes::

    b"PACETRT\\0"            8 bytes, magic
    format version          uint32 little-endian
    header length N         uint32 little-endian
    header                  N bytes, UTF-8 JSON (:class:`PlanHeader`)
    engine                  the bytes of ``IHostMemory`` from ``build_serialized_network``

:func:`read_plan` verifies the engine's sha256; :func:`check_compatible` raises
:class:`PlanMismatch` when the running TensorRT or GPU differ. Torch-free; no TensorRT import.
"""

from __future__ import annotations

import hashlib
import io
import json
import struct
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from .. import __version__
from ..errors import BundleError, PaceEdgeError

MAGIC = b"PACETRT\x00"
FORMAT_VERSION = 1
PLAN_FILE = "model.plan"
_PREFIX = struct.Struct("<8sII")
MAX_HEADER = 1 << 20


class PlanMismatch(PaceEdgeError):
    """A plan built for another TensorRT version or GPU, or from another ONNX file; ``reason``
    says what differs (the message adds how to rebuild it)."""

    def __init__(self, reason: str, hint: str = "rebuild it here with `pace-edge build-engine`"):
        super().__init__(f"{reason}; {hint}")
        self.reason = reason


@dataclass
class PlanHeader:
    """What an engine was built from, with and for."""

    tensorrt_version: str  # e.g. "10.3.0.30" (tensorrt.__version__)
    gpu_name: str  # e.g. "Orin (nvgpu)", "NVIDIA H100 80GB HBM3"
    compute_capability: str  # e.g. "8.7"
    precision: str  # "fp32", "fp16" or "int8" (INT8 with FP16 fallback)
    batch: dict[str, int]  # optimisation profile {"min", "opt", "max"}
    source_onnx: str  # the ONNX file the engine was built from, relative to the export
    source_onnx_sha256: str
    input_name: str = "spectrum"
    input_length: int = 0
    builder_flags: list[str] = field(default_factory=list)
    cleared_flags: list[str] = field(default_factory=list)  # e.g. ["TF32"]
    workspace_mb: int | None = None
    engine_sha256: str = ""
    engine_bytes: int = 0
    created: str = ""
    pace_edge: str = __version__

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PlanHeader:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def _tensorrt_release(version: str) -> tuple[int, ...]:
    """``(major, minor, patch)`` of a TensorRT version string (the build number is ignored)."""
    parts = []
    for part in str(version).split(".")[:3]:
        digits = "".join(ch for ch in part if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts + [0] * (3 - len(parts)))


def write_plan(path: str | Path, engine: bytes, header: PlanHeader) -> Path:
    """Write ``header`` (engine hash and size filled in) and ``engine`` to ``path``."""
    engine = bytes(engine)
    if not engine:
        raise PaceEdgeError("refusing to write an empty TensorRT engine")
    header.engine_sha256 = hashlib.sha256(engine).hexdigest()
    header.engine_bytes = len(engine)
    if not header.created:
        header.created = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    blob = json.dumps(header.to_dict(), sort_keys=True).encode()
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(_PREFIX.pack(MAGIC, FORMAT_VERSION, len(blob)))
        f.write(blob)
        f.write(engine)
    tmp.replace(path)
    return path


def _read_prefix(f: Any, path: Path) -> PlanHeader:
    prefix = f.read(_PREFIX.size)
    if len(prefix) < _PREFIX.size or prefix[:8] != MAGIC:
        raise BundleError(
            f"{path}: not a pace-edge TensorRT plan (no {MAGIC[:7].decode()} header); build it "
            "with `pace-edge build-engine` or `pace-stream --build-engine`"
        )
    _, version, length = _PREFIX.unpack(prefix)
    if version > FORMAT_VERSION:
        raise BundleError(f"{path}: plan format {version} is newer than this pace-edge "
                          f"understands ({FORMAT_VERSION}); upgrade pace-edge")
    if length > MAX_HEADER:
        raise BundleError(f"{path}: plan header of {length} bytes is implausible")
    blob = f.read(length)
    try:
        return PlanHeader.from_dict(json.loads(blob.decode()))
    except (UnicodeDecodeError, json.JSONDecodeError, TypeError) as exc:
        raise BundleError(f"{path}: corrupt plan header ({exc})") from exc


def read_header(path: str | Path) -> PlanHeader:
    """The header of a plan file, without reading or checking the engine."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            return _read_prefix(f, path)
    except OSError as exc:
        raise BundleError(f"{path}: cannot read plan ({exc.strerror})") from exc


def read_plan(path: str | Path, data: bytes | None = None) -> tuple[PlanHeader, bytes]:
    """The header and engine bytes of a plan file (or of ``data``, its bytes already read),
    the engine checked against its sha256."""
    path = Path(path)
    try:
        with open(path, "rb") if data is None else io.BytesIO(data) as f:
            header = _read_prefix(f, path)
            engine = f.read()
    except OSError as exc:
        raise BundleError(f"{path}: cannot read plan ({exc.strerror})") from exc
    if len(engine) != header.engine_bytes:
        raise BundleError(f"{path}: engine is {len(engine)} bytes, header says "
                          f"{header.engine_bytes} (truncated or altered)")
    if hashlib.sha256(engine).hexdigest() != header.engine_sha256:
        raise BundleError(f"{path}: engine sha256 does not match its header (altered)")
    return header, engine


def check_compatible(
    header: PlanHeader,
    tensorrt_version: str,
    gpu_name: str | None = None,
    compute_capability: str | None = None,
) -> None:
    """Raise :class:`PlanMismatch` unless the plan was built by this TensorRT for this GPU.

    TensorRT versions must agree on major.minor.patch (the build number may differ); the GPU on
    compute capability and, when given, name (engines are tuned for the exact GPU model).
    """
    problems = []
    built, running = _tensorrt_release(header.tensorrt_version), _tensorrt_release(tensorrt_version)
    if built != running:
        problems.append(f"built with TensorRT {header.tensorrt_version}, running "
                        f"{tensorrt_version}")
    if compute_capability is not None and str(compute_capability) != header.compute_capability:
        problems.append(f"built for compute capability {header.compute_capability}, this GPU "
                        f"is {compute_capability}")
    if gpu_name is not None and gpu_name != header.gpu_name:
        problems.append(f"built on {header.gpu_name!r}, this GPU is {gpu_name!r}")
    if problems:
        raise PlanMismatch("TensorRT plan does not match this machine: " + "; ".join(problems))


def check_plan(
    header: PlanHeader,
    *,
    tensorrt_version: str,
    gpu: str | None = None,
    compute_capability: str | None = None,
) -> None:
    """Keyword form of :func:`check_compatible` (``gpu`` is the GPU's name)."""
    check_compatible(header, tensorrt_version, gpu, compute_capability)


def check_source(header: PlanHeader, onnx_sha256: str) -> None:
    """Raise :class:`PlanMismatch` when the plan was built from another ONNX file."""
    if header.source_onnx_sha256 != onnx_sha256:
        raise PlanMismatch(
            f"TensorRT plan was built from {header.source_onnx} with sha256 "
            f"{header.source_onnx_sha256[:12]}…, not from this export's ({onnx_sha256[:12]}…)"
        )


__all__ = [
    "FORMAT_VERSION",
    "MAGIC",
    "PLAN_FILE",
    "PlanHeader",
    "PlanMismatch",
    "check_compatible",
    "check_plan",
    "check_source",
    "read_header",
    "read_plan",
    "write_plan",
]
