"""TensorRT runner (NVIDIA GPU only): a plan written by ``pace-edge build-engine``.

Loading reads the plan's device-local record ``engine.json``
(:mod:`pace_edge.export.engine_record`: checked against its digest, the plan's bytes against the
sha256 it records), checks that the plan was built from the export's ONNX file as the verified
(and, with trusted keys, signed) manifest lists it, that its engine check passed, and that it
was built by this TensorRT version for this GPU; the engine inside the plan is checked against
the sha256 of its header (:mod:`pace_edge.export.trt_plan`). A runner never rewrites an export:
a stale plan (:class:`~pace_edge.export.trt_plan.PlanMismatch`) is refused with the command that
rebuilds and checks it on this device.

I/O uses the TensorRT 10 name-based API (``set_input_shape``, ``set_tensor_address``,
``execute_async_v3``) with **cuda-python** (``cuda.bindings.runtime``, or ``cuda.cudart`` in
older releases) for device buffers and the stream, not torch: devices run without PyTorch.
Buffers are allocated once for the largest batch the engine takes (its fixed batch, or its
optimisation profile's maximum); each call copies in, enqueues and copies out on one stream.

``tensorrt`` and cuda-python are imported on load, never at module import.
"""

from __future__ import annotations

import shlex
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
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        inp, out = spec.input_name, spec.output_name
        if inp not in names or out not in names or (
            engine.get_tensor_mode(inp) != trt.TensorIOMode.INPUT
        ):
            raise BundleError(
                f"{artefact}: engine I/O {names} lacks input {inp!r} or output {out!r}"
            )
        shape = tuple(engine.get_tensor_shape(inp))
        if len(shape) != 2 or shape[1] != spec.input_length:
            raise BundleError(
                f"{artefact}: input shape {shape} does not take spectra of {spec.input_length} "
                "points"
            )
        self._dynamic = shape[0] == -1
        if self._dynamic:
            low, _, high = engine.get_tensor_profile_shape(inp, 0)
            self._min_batch, self.max_batch = int(low[0]), int(high[0])
        else:
            self._min_batch = self.max_batch = int(shape[0])
        self._in_dtype = np.dtype(trt.nptype(engine.get_tensor_dtype(inp)))
        self._out_dtype = np.dtype(trt.nptype(engine.get_tensor_dtype(out)))
        self._context = engine.create_execution_context()
        self._stream = _cuda(cudart, cudart.cudaStreamCreate(), "cudaStreamCreate")
        rows, classes = self.max_batch, len(spec.classes)
        self._d_in = self._malloc(rows * spec.input_length * self._in_dtype.itemsize)
        self._d_out = self._malloc(rows * classes * self._out_dtype.itemsize)
        self._context.set_tensor_address(inp, self._d_in)
        self._context.set_tensor_address(out, self._d_out)

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
        cudart, n = self._cudart, len(x)
        x = np.ascontiguousarray(x, dtype=self._in_dtype)
        if self._dynamic and not self._context.set_input_shape(self.spec.input_name, x.shape):
            raise PaceEdgeError(f"tensorrt: the engine refused input shape {x.shape}")
        out = np.empty((n, len(self.spec.classes)), self._out_dtype)
        h2d = cudart.cudaMemcpyKind.cudaMemcpyHostToDevice
        d2h = cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost
        _cuda(cudart, cudart.cudaMemcpyAsync(self._d_in, x.ctypes.data, x.nbytes, h2d,
                                             self._stream), "copy to GPU")
        if not self._context.execute_async_v3(int(self._stream)):
            raise PaceEdgeError("tensorrt: execute_async_v3 failed (see the TensorRT log)")
        _cuda(cudart, cudart.cudaMemcpyAsync(out.ctypes.data, self._d_out, out.nbytes, d2h,
                                             self._stream), "copy from GPU")
        _cuda(cudart, cudart.cudaStreamSynchronize(self._stream), "cudaStreamSynchronize")
        return out.astype(np.float32, copy=False)

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
