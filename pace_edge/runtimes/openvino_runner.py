"""OpenVINO runner: an IR (``.xml`` + ``.bin``) compiled with the manifest's runtime settings.

The manifest's ``runtime.openvino`` gives the device (default ``CPU``) and the ``compile_model``
config the export was checked with, e.g. ``INFERENCE_PRECISION_HINT=f32`` for FP32 IR (CPUs
with bf16 support otherwise compute in bf16). For an FP32 artefact that hint is applied even if
the manifest lacks it. ``threads`` sets ``INFERENCE_NUM_THREADS``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import BundleError, PaceEdgeError
from .base import ModelSpec, Runner

if TYPE_CHECKING:
    from ..export.manifest import Artefact, Manifest

DEFAULT_DEVICE = "CPU"
MAX_CACHED_BATCHES = 8  # input tensors kept per runner (one per batch size seen)


def _type_name(value: Any) -> str:
    return value.to_string() if hasattr(value, "to_string") else str(value)


class OpenVINORunner(Runner):
    """An ``openvino.CompiledModel`` of one IR of an export, with one infer request."""

    name = "openvino"

    def __init__(
        self,
        xml: str | Path,
        spec: ModelSpec,
        *,
        precision: str,
        weights: str | Path | None = None,
        threads: int | None = None,
        device: str = DEFAULT_DEVICE,
        config: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(spec, precision=precision, artefact=Path(xml), threads=threads)
        try:
            import openvino as ov
        except ImportError as exc:
            raise PaceEdgeError("backend openvino: the openvino package is not installed") \
                from exc
        settings = {str(k): v for k, v in (config or {}).items()}
        if precision == "fp32":
            settings.setdefault("INFERENCE_PRECISION_HINT", "f32")
        if self.threads is not None:
            settings["INFERENCE_NUM_THREADS"] = self.threads
        self.config = settings
        self._device = device
        core = ov.Core()
        try:
            model = core.read_model(str(xml), None if weights is None else str(weights))
            self._compiled = core.compile_model(model, device, settings)
            self._model = model
        except RuntimeError as exc:
            raise BundleError(f"{xml}: OpenVINO cannot load it on {device} ({exc})") from exc
        self._device_name = core.get_property(device, "FULL_DEVICE_NAME")
        names_in = [n for i in self._compiled.inputs for n in i.get_names()]
        names_out = [n for o in self._compiled.outputs for n in o.get_names()]
        if spec.input_name not in names_in or spec.output_name not in names_out:
            raise BundleError(
                f"{xml}: model I/O ({names_in}, {names_out}) does not have input "
                f"{spec.input_name!r} and output {spec.output_name!r}"
            )
        shape = self._compiled.input(spec.input_name).get_partial_shape()
        length = shape[1] if shape.rank.is_static and len(shape) == 2 else None
        if length is None or (length.is_static and length.get_length() != spec.input_length):
            raise BundleError(
                f"{xml}: input shape {shape} does not take spectra of {spec.input_length} points"
            )
        if shape[0].is_static:
            self.max_batch = self._min_batch = shape[0].get_length()
        self._request = self._compiled.create_infer_request()
        self._input_index = next(i for i, port in enumerate(self._compiled.inputs)
                                 if spec.input_name in port.get_names())
        self._output_index = next(i for i, port in enumerate(self._compiled.outputs)
                                  if spec.output_name in port.get_names())
        self._features_index: int | None = None
        if spec.features_name is not None:
            if spec.features_name not in names_out:
                raise BundleError(f"{xml}: the manifest's detector needs the output "
                                  f"{spec.features_name!r}, which the model does not have")
            self._features_index = next(i for i, port in enumerate(self._compiled.outputs)
                                        if spec.features_name in port.get_names())
        self._tensors: dict[int, Any] = {}  # input tensor per batch size, reused across calls
        self._bound_rows = 0  # batch size of the tensor now set on the request
        self._ov = ov

    @classmethod
    def from_export(
        cls, manifest: Manifest, artefact: Artefact, threads: int | None = None
    ) -> OpenVINORunner:
        """The runner of ``artefact`` (an ``openvino-xml`` entry of the verified ``manifest``);
        its weights are the ``openvino-bin`` entry of the same stem (else beside the xml)."""
        root = manifest.path or Path(".")
        xml = root / artefact.path
        bins = [a for a in manifest.artefacts if a.kind == "openvino-bin"]
        stem = Path(artefact.path).with_suffix("")
        same = [a for a in bins if Path(a.path).with_suffix("") == stem]
        weights = root / same[0].path if same else None
        settings = manifest.runtime.get("openvino", {})
        return cls(
            xml,
            ModelSpec.from_manifest(manifest),
            precision=artefact.precision,
            weights=weights,
            threads=threads,
            device=settings.get("device", DEFAULT_DEVICE),
            config=settings.get("config", {}),
        )

    def _run(self, x: np.ndarray) -> np.ndarray:
        # Copy into an input tensor the request already holds and read the output tensor in
        # place: a dict call builds new tensors and an OVDict per call (≈ 10 % of a batch-1
        # INT8 inference of the paper preset).
        rows = x.shape[0]
        if rows != self._bound_rows:
            tensor = self._tensors.get(rows)
            if tensor is None:
                if len(self._tensors) >= MAX_CACHED_BATCHES:
                    self._tensors.pop(next(iter(self._tensors)))
                tensor = self._ov.Tensor(self._ov.Type.f32, self._ov.Shape(list(x.shape)))
                self._tensors[rows] = tensor
            self._request.set_input_tensor(self._input_index, tensor)
            self._bound_rows = rows
        np.copyto(self._tensors[rows].data, x, casting="same_kind")
        self._request.infer()
        return np.array(self._request.get_output_tensor(self._output_index).data,
                        dtype=np.float32)

    def _run_features(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self._features_index is None:
            return super()._run_features(x)
        logits = self._run(x)
        features = np.array(self._request.get_output_tensor(self._features_index).data,
                            dtype=np.float32)
        return logits, features

    def _profile(self, x: np.ndarray, iterations: int,
                 warmup: int) -> dict[tuple[str, str, str], float]:
        # A second compilation of the same model with OpenVINO's performance counters on,
        # so timed inference keeps running without them.
        core = self._ov.Core()
        profiled = core.compile_model(self._model, self._device, {**self.config,
                                                                   "PERF_COUNT": True})
        request = profiled.create_infer_request()
        request.set_input_tensor(self._input_index, self._ov.Tensor(x))
        for _ in range(warmup):
            request.infer()
        totals: dict[tuple[str, str, str], float] = {}
        for _ in range(iterations):
            request.infer()
            for info in request.profiling_info:
                if info.status != info.Status.EXECUTED:
                    continue
                key = (info.node_name, info.node_type, info.exec_type)
                totals[key] = totals.get(key, 0.0) + info.real_time.total_seconds() * 1e3
        return totals

    def _release(self) -> None:
        self._tensors.clear()
        del self._request, self._compiled, self._model

    def _describe(self) -> dict[str, Any]:
        compiled = self._compiled
        return {
            "threads": int(compiled.get_property("INFERENCE_NUM_THREADS")),
            "device": f"{self._device} ({self._device_name})",
            "inference_precision": _type_name(compiled.get_property("INFERENCE_PRECISION_HINT")),
            "config": dict(self.config),
        }
