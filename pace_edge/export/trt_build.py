"""Build a TensorRT engine from an exported ONNX file with TensorRT's Python API.

The builder follows TensorRT's Python API (``tensorrt`` is imported on use, never at import):

* ``trt.Builder(logger)``; ``builder.create_network(flags)``: no flags from TensorRT 10 on
  (``EXPLICIT_BATCH`` is deprecated and ignored there, explicit batch being the only mode);
  ``1 << EXPLICIT_BATCH`` before 10;
* ``trt.OnnxParser(network, logger).parse(bytes, path)``, errors from ``get_error(i)``;
* one optimisation profile (``builder.create_optimization_profile()``, ``set_shape(name, min,
  opt, max)``) when the input's batch is dynamic;
* ``config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, bytes)``;
* ``config.clear_flag(trt.BuilderFlag.TF32)``: TF32 is on by default for FP32 layers on Ampere
  and newer GPUs (Orin included) and rounds their inputs to 10 mantissa bits; cleared, an FP32
  plan (or the FP32 layers of an FP16/INT8 plan) computes in IEEE FP32, as ONNX Runtime does;
* precision: FP16 by ``BuilderFlag.FP16``; INT8 only by explicit quantisation (the Q/DQ ONNX),
  which a weakly-typed TensorRT 8-10 network builds only with ``BuilderFlag.INT8`` set.
  TensorRT 11 removed every precision flag (networks are always strongly typed, the Q/DQ
  graph's types decide), so there nothing is set and FP16 needs an FP16 ONNX;
* ``builder.build_serialized_network(network, config)`` gives the plan bytes.

No calibrator is used: implicit INT8 (``IInt8EntropyCalibrator2``) is deprecated since 10.1 and
removed in TensorRT 11.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from ..errors import PaceEdgeError

DEFAULT_DYNAMIC_PROFILE = (1, 8, 64)
QDQ_FILE = "model_int8_qdq.onnx"  # the jetson target's explicit-quantisation model
# (FP16, INT8) builder precision per plan precision: INT8 keeps FP16 as the fallback.
PRECISION_FLAGS = {"fp32": (False, False), "fp16": (True, False), "int8": (True, True)}
DEFAULT_WORKSPACE_MB = 1024
CLEARED_FLAGS = ("TF32",)  # BuilderFlags cleared in every plan (TF32 is on by default)


class TensorRTUnavailable(PaceEdgeError):
    """TensorRT (the ``tensorrt`` Python package) or an NVIDIA GPU is not available here."""


@dataclass(frozen=True)
class BatchProfile:
    """The optimisation profile's batch sizes: ``min <= opt <= max``."""

    min: int
    opt: int
    max: int

    def __post_init__(self) -> None:
        if not 1 <= self.min <= self.opt <= self.max:
            raise PaceEdgeError(
                f"batch profile needs 1 <= min <= opt <= max, got {self.min}/{self.opt}/{self.max}"
            )

    @classmethod
    def from_batch(cls, batch: int | str, dynamic: Sequence[int] = DEFAULT_DYNAMIC_PROFILE
                   ) -> BatchProfile:
        """N/N/N for a fixed batch ``N``; ``dynamic`` (default 1/8/64) for ``"dynamic"``."""
        if batch == "dynamic":
            return cls(*dynamic)
        if isinstance(batch, bool) or not isinstance(batch, int):
            raise PaceEdgeError(f"batch must be a positive number or 'dynamic', got {batch!r}")
        return cls(batch, batch, batch)

    @classmethod
    def from_dict(cls, data: dict[str, int]) -> BatchProfile:
        return cls(int(data["min"]), int(data["opt"]), int(data["max"]))

    @property
    def fixed(self) -> bool:
        return self.min == self.max

    def to_dict(self) -> dict[str, int]:
        return {"min": self.min, "opt": self.opt, "max": self.max}

    def shapes(self, length: int) -> dict[str, tuple[int, int]]:
        """Input shapes ``(batch, length)`` for min, opt and max."""
        return {k: (v, length) for k, v in self.to_dict().items()}


@dataclass(frozen=True)
class BuildSettings:
    """What to build: the ONNX file, its input, the profile and the precision flags."""

    onnx: Path
    input_name: str
    length: int | None  # None: taken from the ONNX input's shape
    profile: BatchProfile
    fp16: bool = False
    int8: bool = False
    workspace_mb: int = DEFAULT_WORKSPACE_MB

    @property
    def precision(self) -> str:
        return "int8" if self.int8 else "fp16" if self.fp16 else "fp32"


def builder_flags(fp16: bool, int8: bool, tensorrt_major: int = 10) -> list[str]:
    """The ``BuilderFlag`` names to set: none on TensorRT >= 11 (strongly typed only)."""
    if tensorrt_major >= 11:
        return []
    return [name for name, on in (("INT8", int8), ("FP16", fp16)) if on]


# --- TensorRT --------------------------------------------------------------------------------


def import_tensorrt() -> ModuleType:
    """The ``tensorrt`` module; :class:`TensorRTUnavailable` if it cannot be imported."""
    try:
        import tensorrt
    except ImportError as exc:
        raise TensorRTUnavailable(
            f"TensorRT is not installed here (cannot import the tensorrt package: {exc})"
        ) from None
    return tensorrt


def tensorrt_version(trt: ModuleType) -> tuple[int, int, int]:
    """``(major, minor, patch)`` of an imported ``tensorrt`` module."""
    parts = [int("".join(c for c in p if c.isdigit()) or 0) for p in trt.__version__.split(".")]
    return tuple((parts + [0, 0, 0])[:3])  # type: ignore[return-value]


def gpu_info() -> tuple[str, str] | None:
    """``(name, compute capability)`` of CUDA device 0, or ``None`` if no GPU is visible.

    Asks cuda-python (as the TensorRT runner does), then ``nvidia-smi``.
    """
    try:
        try:
            from cuda.bindings import runtime as cudart  # cuda-python >= 12.6
        except ImportError:
            from cuda import cudart  # type: ignore[no-redef]
        err, props = cudart.cudaGetDeviceProperties(0)
        if int(err) == 0:
            name = props.name
            if isinstance(name, bytes | bytearray):
                name = bytes(name).split(b"\0", 1)[0].decode(errors="replace")
            return str(name).strip(), f"{props.major}.{props.minor}"
    except Exception:  # any failure means "not this way"
        pass
    smi = shutil.which("nvidia-smi")
    if smi:
        try:
            line = subprocess.run(
                [smi, "--query-gpu=name,compute_cap", "--format=csv,noheader"],
                capture_output=True, text=True, timeout=20, check=True,
            ).stdout.splitlines()[0]
            name, cap = (part.strip() for part in line.rsplit(",", 1))
            return name, cap
        except (OSError, subprocess.SubprocessError, IndexError, ValueError):
            pass
    return None


def tensorrt_gpu_available() -> bool:
    """Whether ``tensorrt`` imports and an NVIDIA GPU is visible (for tests and the CLI)."""
    try:
        import_tensorrt()
    except TensorRTUnavailable:
        return False
    return gpu_info() is not None


def _parse_errors(parser: Any) -> list[str]:
    return [str(parser.get_error(i)) for i in range(parser.num_errors)]


def build_engine(settings: BuildSettings, trt: ModuleType | None = None,
                 logger: Any | None = None) -> bytes:
    """Serialized TensorRT engine for ``settings`` (needs ``tensorrt`` and an NVIDIA GPU)."""
    return _build(settings, trt, logger)[0]


def _build(settings: BuildSettings, trt: ModuleType | None, logger: Any | None
           ) -> tuple[bytes, int]:
    """The engine bytes and the input length it takes."""
    trt = trt or import_tensorrt()
    major = tensorrt_version(trt)[0]
    if major >= 11 and settings.fp16:
        raise PaceEdgeError(
            f"TensorRT {trt.__version__} has no FP16 builder flag (networks are strongly typed): "
            "build the FP32 or Q/DQ ONNX as it is, or convert it with ModelOpt AutoCast"
        )
    logger = logger or trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    flags = 0 if major >= 10 else 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    onnx_path = Path(settings.onnx)
    if not parser.parse(onnx_path.read_bytes(), str(onnx_path)):
        errors = "; ".join(_parse_errors(parser)) or "no details"
        raise PaceEdgeError(f"TensorRT's ONNX parser rejected {onnx_path.name}: {errors}")
    inputs = [network.get_input(i) for i in range(network.num_inputs)]
    names = [t.name for t in inputs]
    if settings.input_name not in names:
        raise PaceEdgeError(f"{onnx_path.name} has inputs {names}, not {settings.input_name!r}")
    shape = tuple(inputs[names.index(settings.input_name)].shape)
    length = settings.length or (shape[1] if len(shape) == 2 else -1)
    if len(shape) != 2 or length < 1 or shape[1] != length:
        raise PaceEdgeError(f"{onnx_path.name}: input {settings.input_name!r} has shape {shape}, "
                            f"not (batch, {settings.length or 'points'})")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(settings.workspace_mb) << 20)
    for flag in builder_flags(settings.fp16, settings.int8, major):
        config.set_flag(getattr(trt.BuilderFlag, flag))
    for flag in CLEARED_FLAGS:
        if hasattr(trt.BuilderFlag, flag):
            config.clear_flag(getattr(trt.BuilderFlag, flag))
    if shape[0] == -1:
        profile = builder.create_optimization_profile()
        s = settings.profile.shapes(length)
        profile.set_shape(settings.input_name, s["min"], s["opt"], s["max"])
        config.add_optimization_profile(profile)
    elif not (settings.profile.fixed and shape[0] == settings.profile.min):
        raise PaceEdgeError(
            f"{onnx_path.name} has a fixed batch of {shape[0]}, but the profile asks for "
            f"{settings.profile.min}/{settings.profile.opt}/{settings.profile.max}"
        )
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise PaceEdgeError(f"TensorRT failed to build an engine from {onnx_path.name} "
                            "(see the TensorRT log above)")
    return bytes(serialized), int(length)


def int8_source(onnx_path: str | Path) -> Path:
    """The Q/DQ model an INT8 engine is built from: ``onnx_path`` or its ``QDQ_FILE`` sibling.

    TensorRT INT8 here is explicit quantisation only, never an FP32 model with INT8 enabled.
    """
    onnx_path = Path(onnx_path)
    if onnx_path.name == QDQ_FILE:
        return onnx_path
    sibling = onnx_path.with_name(QDQ_FILE)
    if not sibling.is_file():
        raise PaceEdgeError(
            f"an INT8 TensorRT engine is built from the Q/DQ model {QDQ_FILE}, which "
            f"{onnx_path.parent} lacks; export with --target jetson --precision int8"
        )
    return sibling


def build_plan(
    onnx_path: str | Path,
    plan_path: str | Path,
    *,
    precision: str = "fp32",
    batch: int | str = "dynamic",
    profile: BatchProfile | None = None,
    workspace_mb: int = DEFAULT_WORKSPACE_MB,
    input_name: str = "spectrum",
    fp16: bool | None = None,
    trt: ModuleType | None = None,
) -> Path:
    """Build an engine from ``onnx_path`` on this machine and write it as a pace-edge plan.

    ``precision`` ``fp32``, ``fp16`` or ``int8`` (INT8 from the Q/DQ model, FP16 fallback);
    ``fp16`` overrides the FP16 flag (INT8 then falls back to FP32);
    ``profile`` defaults to :meth:`BatchProfile.from_batch` of ``batch``. The plan's header
    records the TensorRT version, GPU, profile and the source ONNX's sha256.
    """
    from .trt_plan import PlanHeader, write_plan

    if precision not in PRECISION_FLAGS:
        raise PaceEdgeError(f"TensorRT precision must be one of {', '.join(PRECISION_FLAGS)}, "
                            f"not {precision!r}")
    source = int8_source(onnx_path) if precision == "int8" else Path(onnx_path)
    trt = trt or import_tensorrt()
    gpu = gpu_info()
    if gpu is None:
        raise TensorRTUnavailable("no NVIDIA GPU is visible here; TensorRT engines are built on "
                                  "the GPU that will run them")
    default_fp16, int8 = PRECISION_FLAGS[precision]
    fp16 = default_fp16 if fp16 is None else fp16
    if int8 and tensorrt_version(trt)[0] >= 11:
        fp16 = False  # strongly typed: the Q/DQ graph's types decide, no FP16 fallback flag
    profile = profile or BatchProfile.from_batch(batch)
    settings = BuildSettings(source, input_name, None, profile, fp16, int8, workspace_mb)
    engine, length = _build(settings, trt, None)
    header = PlanHeader(
        tensorrt_version=str(trt.__version__),
        gpu_name=gpu[0],
        compute_capability=gpu[1],
        precision=precision,
        batch=profile.to_dict(),
        source_onnx=source.name,
        source_onnx_sha256=hashlib.sha256(source.read_bytes()).hexdigest(),
        input_name=input_name,
        input_length=length,
        builder_flags=builder_flags(fp16, int8, tensorrt_version(trt)[0]),
        cleared_flags=[f for f in CLEARED_FLAGS if hasattr(trt.BuilderFlag, f)],
        workspace_mb=int(workspace_mb),
    )
    return write_plan(plan_path, engine, header)


__all__ = [
    "DEFAULT_DYNAMIC_PROFILE",
    "CLEARED_FLAGS",
    "DEFAULT_WORKSPACE_MB",
    "PRECISION_FLAGS",
    "QDQ_FILE",
    "BatchProfile",
    "BuildSettings",
    "TensorRTUnavailable",
    "build_engine",
    "build_plan",
    "builder_flags",
    "gpu_info",
    "import_tensorrt",
    "int8_source",
    "tensorrt_gpu_available",
    "tensorrt_version",
]
