"""TensorRT runner (NVIDIA GPU only): a plan written by ``pace-edge build-engine``.

Loading reads the plan's device-local record ``engine.json``
(:mod:`pace_edge.export.engine_record`: checked against its digest, the plan's bytes against the
sha256 it records), checks that the plan was built from the export's ONNX file as the verified
(and, with trusted keys, signed) manifest lists it, that its engine check passed, and that it
was built by this TensorRT version for this GPU; the engine inside the plan is checked against
the sha256 of its header (:mod:`pace_edge.export.trt_plan`). A runner never rewrites an export:
a stale plan (:class:`~pace_edge.export.trt_plan.PlanMismatch`) is refused with the command that
rebuilds and checks it on this device.

I/O uses the TensorRT 10 name-based API (``num_io_tensors``, ``get_tensor_name``,
``get_tensor_mode``, ``set_input_shape``, ``set_tensor_address``, ``execute_async_v3``) with
**cuda-python** (``cuda.bindings.runtime``, or ``cuda.cudart`` in older releases) for device
buffers and the stream, not torch: devices run without PyTorch. Every I/O tensor the engine has
gets an address, as ``execute_async_v3`` requires: the logits, and the whitened features the
"unknown" detector scores (``ood_features``, read by name when the manifest's trust record
names it). Buffers are allocated once for the largest batch the engine takes (its fixed batch,
or its optimisation profile's maximum); each call copies in, enqueues and copies out on one
stream.

``tensorrt`` and cuda-python are imported on load, never at module import.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from math import prod
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import BundleError, PaceEdgeError
from .base import ModelSpec, Runner

if TYPE_CHECKING:
    from ..export.manifest import Artefact, Manifest

BUILD_HINT = "run pace-edge build-engine on the device"


def rebuild_command(export_dir: Path) -> str:
    """The commands that rebuild and check an export's plan on this device."""
    where = shlex.quote(str(export_dir))
    return (f"pace-edge build-engine --export {where} (or pace-stream --build-engine "
            f"--model {where})")


# --- CUDA through cuda-python ------------------------------------------------------------------


def cuda_runtime() -> Any:
    """cuda-python's CUDA runtime module, checked to see a GPU; :class:`PaceEdgeError` if not."""
    try:
        from cuda.bindings import runtime as cudart
    except ImportError:
        try:
            from cuda import cudart  # cuda-python < 12.6
        except ImportError:
            raise PaceEdgeError(
                "cuda-python is not installed (pip install cuda-python); the TensorRT runner "
                "uses it for GPU memory"
            ) from None
    err, count = cudart.cudaGetDeviceCount()
    if err != cudart.cudaError_t.cudaSuccess or count < 1:
        raise PaceEdgeError(f"no NVIDIA GPU is visible ({_error_name(cudart, err)})")
    return cudart


def _error_name(cudart: Any, err: Any) -> str:
    try:
        name = cudart.cudaGetErrorName(err)[1]
        return name.decode() if isinstance(name, bytes) else str(name)
    except Exception:  # noqa: BLE001 - only used to word an error
        return str(err)


def _cuda(cudart: Any, result: tuple[Any, ...], what: str) -> Any:
    """The value(s) of a cuda-python call ``(err, *values)``; :class:`PaceEdgeError` on error."""
    err, *values = result
    if err != cudart.cudaError_t.cudaSuccess:
        raise PaceEdgeError(f"CUDA {what} failed: {_error_name(cudart, err)}")
    return values[0] if len(values) == 1 else (values or None)


def gpu_name(cudart: Any, device: int = 0) -> str:
    """The name of CUDA device ``device``, e.g. ``"NVIDIA H100 80GB HBM3"`` or ``"Orin"``."""
    prop = _cuda(cudart, cudart.cudaGetDeviceProperties(device), "cudaGetDeviceProperties")
    name = prop.name
    if isinstance(name, bytes | bytearray):
        name = bytes(name).split(b"\0", 1)[0].decode(errors="replace")
    return str(name).strip()


def import_tensorrt() -> Any:
    try:
        import tensorrt as trt
    except ImportError:
        raise PaceEdgeError(
            f"backend tensorrt: the tensorrt package is not installed; {BUILD_HINT}"
        ) from None
    return trt


# --- the plan: read, check, rebuild (format: pace_edge.export.trt_plan) --------------------------


def compute_capability(cudart: Any, device: int = 0) -> str:
    """``"8.7"``: the compute capability of CUDA device ``device``."""
    prop = _cuda(cudart, cudart.cudaGetDeviceProperties(device), "cudaGetDeviceProperties")
    return f"{prop.major}.{prop.minor}"


def checked_plan(manifest: Manifest, path: Path, trt_version: str, gpu: str, cc: str
                 ) -> tuple[Any, bytes]:
    """Header and engine of the plan at ``path``, checked: its record ``engine.json`` and the
    plan's sha256 (``BundleError``: edited or swapped), the engine's sha256 in its header
    (``BundleError``); built from the export's verified ONNX, with a passed engine check, by
    this TensorRT for this GPU (``PlanMismatch``, with the command that rebuilds it)."""
    from ..export import trt_plan
    from ..export.engine_record import check_plan_digest, check_plan_record, read_engine_record
    from ..integrity.digest import sha256_bytes

    root = manifest.path or Path(".")
    hint = f"the runner does not rewrite an export: rebuild it with {rebuild_command(root)}"
    record = read_engine_record(root)
    if record is None or root / record.plan != Path(path):
        raise BundleError(f"{path}: no engine.json beside the export records this plan; build "
                          f"it with {rebuild_command(root)}")
    try:
        data = Path(path).read_bytes()  # hashed and parsed from the same bytes
    except OSError as exc:
        raise BundleError(f"{path}: cannot read plan ({exc.strerror})") from None
    check_plan_digest(record, Path(path), sha256_bytes(data), len(data))
    check_plan_record(manifest, record, hint)
    header, engine = trt_plan.read_plan(path, data)
    try:
        trt_plan.check_source(header, record.source_onnx_sha256)
        trt_plan.check_compatible(header, trt_version, gpu_name=gpu, compute_capability=cc)
    except trt_plan.PlanMismatch as exc:
        raise trt_plan.PlanMismatch(f"{path}: {exc.reason}", hint) from None
    return header, engine


# --- the engine's I/O ----------------------------------------------------------------------------


@dataclass(frozen=True)
class TensorIO:
    """One I/O tensor of an engine: its name, shape without the batch dimension, dtype."""

    name: str
    row_shape: tuple[int, ...]
    dtype: np.dtype

    @property
    def row_size(self) -> int:
        return int(prod(self.row_shape))


@dataclass(frozen=True)
class EngineIO:
    """What a runner binds: the spectra input, every output (each needs an address before
    ``execute_async_v3``, read or not), and the batch range of the engine."""

    input: TensorIO
    outputs: tuple[TensorIO, ...]
    dynamic: bool
    min_batch: int
    max_batch: int

    def output(self, name: str) -> TensorIO:
        return next(o for o in self.outputs if o.name == name)


def engine_io(engine: Any, trt: Any, spec: ModelSpec, where: Path | None) -> EngineIO:
    """The I/O of a deserialized ``engine`` through TensorRT 10's name-based API, checked
    against ``spec``: one input of spectra, the logits output, and the features output when
    the spec's detector reads one (:class:`BundleError` naming what is missing)."""
    inputs, outputs, shapes = [], [], {}
    for i in range(engine.num_io_tensors):
        name = engine.get_tensor_name(i)
        shapes[name] = tuple(int(d) for d in engine.get_tensor_shape(name))
        (inputs if engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT else outputs).append(name)
    names = inputs + outputs
    inp, out, feats = spec.input_name, spec.output_name, spec.features_name
    if inputs != [inp] or out not in outputs:
        raise BundleError(f"{where}: engine I/O {names} (inputs {inputs}) is not one input "
                          f"{inp!r} and an output {out!r}")
    if feats is not None and feats not in outputs:
        raise BundleError(f"{where}: engine has no output {feats!r}, which the manifest's "
                          f"'unknown' detector reads (outputs {outputs}); re-export and rebuild")
    shape = shapes[inp]
    if len(shape) != 2 or shape[1] != spec.input_length:
        raise BundleError(f"{where}: input shape {shape} does not take spectra of "
                          f"{spec.input_length} points")
    dynamic = shape[0] == -1
    if dynamic:
        low, _, high = engine.get_tensor_profile_shape(inp, 0)
        low_batch, high_batch = int(low[0]), int(high[0])
    else:
        low_batch = high_batch = int(shape[0])
    tensors = []
    for name in names:
        row = shapes[name][1:]
        if not shapes[name] or any(d < 0 for d in row):
            raise BundleError(f"{where}: output {name!r} has shape {shapes[name]}; only the "
                              "batch dimension may be dynamic")
        tensors.append(TensorIO(name, row, np.dtype(trt.nptype(engine.get_tensor_dtype(name)))))
    io = EngineIO(tensors[0], tuple(tensors[1:]), dynamic, low_batch, high_batch)
    expected = {out: (len(spec.classes),)}
    if feats is not None:
        expected[feats] = (int(spec.trust.centers.shape[1]),)
    for name, row in expected.items():
        if io.output(name).row_shape != row:
            raise BundleError(f"{where}: output {name!r} has rows of shape "
                              f"{io.output(name).row_shape}, expected {row}")
    return io


# --- the runner ----------------------------------------------------------------------------------


class TensorRTRunner(Runner):
    """A deserialized TensorRT engine with one execution context, stream and I/O buffers."""

    name = "tensorrt"

    def __init__(
        self,
        engine_bytes: bytes,
        spec: ModelSpec,
        *,
        precision: str,
        artefact: Path | None = None,
        threads: int | None = None,
    ) -> None:
        super().__init__(spec, precision=precision, artefact=artefact, threads=threads)
        trt = import_tensorrt()
        cudart = cuda_runtime()
        self._trt, self._cudart = trt, cudart
        self._buffers: list[int] = []
        self._stream: Any = None
        self._gpu = gpu_name(cudart)
        self._logger = trt.Logger(trt.Logger.WARNING)
        self._runtime = trt.Runtime(self._logger)
        engine = self._runtime.deserialize_cuda_engine(engine_bytes)
        if engine is None:
            raise BundleError(f"{artefact}: TensorRT {trt.__version__} cannot deserialize it")
        self._engine = engine
        self._io = engine_io(engine, trt, spec, artefact)
        self._dynamic = self._io.dynamic
        self._min_batch, self.max_batch = self._io.min_batch, self._io.max_batch
        self._context = engine.create_execution_context()
        self._stream = _cuda(cudart, cudart.cudaStreamCreate(), "cudaStreamCreate")
        rows = self.max_batch
        self._device: dict[str, int] = {}
        for tensor in (self._io.input, *self._io.outputs):  # every I/O tensor needs an address
            ptr = self._malloc(rows * tensor.row_size * tensor.dtype.itemsize)
            self._device[tensor.name] = ptr
            if not self._context.set_tensor_address(tensor.name, ptr):
                raise PaceEdgeError(f"tensorrt: set_tensor_address({tensor.name!r}) failed")

    @classmethod
    def from_export(
        cls, manifest: Manifest, artefact: Artefact, threads: int | None = None
    ) -> TensorRTRunner:
        """The runner of plan ``artefact``; a plan built for another TensorRT version or GPU,
        or from another ONNX file, is refused with the command that rebuilds it here."""
        trt = import_tensorrt()
        cudart = cuda_runtime()
        gpu, cc = gpu_name(cudart), compute_capability(cudart)
        path = (manifest.path or Path(".")) / artefact.path
        header, engine = checked_plan(manifest, path, trt.__version__, gpu, cc)
        precision = header.precision
        return cls(engine, ModelSpec.from_manifest(manifest), precision=precision,
                   artefact=path, threads=threads)

    def _malloc(self, nbytes: int) -> int:
        ptr = int(_cuda(self._cudart, self._cudart.cudaMalloc(nbytes), "cudaMalloc"))
        self._buffers.append(ptr)
        return ptr

    def _run(self, x: np.ndarray) -> np.ndarray:
        return self._execute(x, [self.spec.output_name])[0]

    def _run_features(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.spec.features_name is None:
            return super()._run_features(x)
        logits, features = self._execute(x, [self.spec.output_name, self.spec.features_name])
        return logits, features

    def _execute(self, x: np.ndarray, read: list[str]) -> list[np.ndarray]:
        """Copy ``x`` in, enqueue, copy the outputs named in ``read`` out (float32)."""
        cudart, n = self._cudart, len(x)
        io = self._io
        x = np.ascontiguousarray(x, dtype=io.input.dtype)
        if self._dynamic and not self._context.set_input_shape(io.input.name, x.shape):
            raise PaceEdgeError(f"tensorrt: the engine refused input shape {x.shape}")
        h2d = cudart.cudaMemcpyKind.cudaMemcpyHostToDevice
        d2h = cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost
        _cuda(cudart, cudart.cudaMemcpyAsync(self._device[io.input.name], x.ctypes.data,
                                             x.nbytes, h2d, self._stream), "copy to GPU")
        if not self._context.execute_async_v3(int(self._stream)):
            raise PaceEdgeError("tensorrt: execute_async_v3 failed (see the TensorRT log)")
        outs = []
        for name in read:
            tensor = io.output(name)
            out = np.empty((n, *tensor.row_shape), tensor.dtype)
            _cuda(cudart, cudart.cudaMemcpyAsync(out.ctypes.data, self._device[name], out.nbytes,
                                                 d2h, self._stream), "copy from GPU")
            outs.append(out)
        _cuda(cudart, cudart.cudaStreamSynchronize(self._stream), "cudaStreamSynchronize")
        return [o.astype(np.float32, copy=False) for o in outs]

    def _release(self) -> None:
        cudart = self._cudart
        self._context = None
        self._engine = None
        for ptr in self._buffers:
            cudart.cudaFree(ptr)
        self._buffers.clear()
        if self._stream is not None:
            cudart.cudaStreamDestroy(self._stream)
            self._stream = None

    def __del__(self) -> None:
        if getattr(self, "_cudart", None) is not None and not getattr(self, "_closed", True):
            self.close()

    def _describe(self) -> dict[str, Any]:
        return {
            "threads": None,  # a GPU runtime: threads do not apply
            "device": f"cuda:0 ({self._gpu})",
            "tensorrt": self._trt.__version__,
            "min_batch": self._min_batch,
        }
