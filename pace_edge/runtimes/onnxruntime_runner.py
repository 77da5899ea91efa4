"""ONNX Runtime runner: any ONNX model an export lists (FP32, FP16 with float32 I/O, INT8 QDQ).

Providers come from the manifest's ``runtime.onnxruntime.providers`` (default CPU), keeping
only those this onnxruntime build has. ``threads`` sets ``intra_op_num_threads``.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import BundleError, PaceEdgeError
from .base import ModelSpec, Runner

if TYPE_CHECKING:
    from ..export.manifest import Artefact, Manifest

DEFAULT_PROVIDERS = ("CPUExecutionProvider",)


class OnnxRuntimeRunner(Runner):
    """An ``onnxruntime.InferenceSession`` on one ONNX artefact of an export."""

    name = "onnxruntime"

    def __init__(
        self,
        path: str | Path,
        spec: ModelSpec,
        *,
        precision: str,
        threads: int | None = None,
        providers: list[str] | tuple[str, ...] = DEFAULT_PROVIDERS,
    ) -> None:
        super().__init__(spec, precision=precision, artefact=Path(path), threads=threads)
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise PaceEdgeError("backend onnxruntime: the onnxruntime package is not installed") \
                from exc
        options = ort.SessionOptions()
        options.log_severity_level = 3  # no "hardware specific optimizations" notes
        if self.threads is not None:
            options.intra_op_num_threads = self.threads
        have = set(ort.get_available_providers())
        chosen = [p for p in providers if p in have] or list(DEFAULT_PROVIDERS)
        try:
            self._session = ort.InferenceSession(str(path), options, providers=chosen)
        except Exception as exc:  # onnxruntime raises its own exception types
            raise BundleError(f"{path}: ONNX Runtime cannot load it ({exc})") from exc
        inputs, outputs = self._session.get_inputs(), self._session.get_outputs()
        names = ([i.name for i in inputs], [o.name for o in outputs])
        if spec.input_name not in names[0] or spec.output_name not in names[1]:
            raise BundleError(
                f"{path}: model I/O {names} does not have input {spec.input_name!r} and "
                f"output {spec.output_name!r}"
            )
        if spec.features_name is not None and spec.features_name not in names[1]:
            raise BundleError(f"{path}: the manifest's detector needs the output "
                              f"{spec.features_name!r}, which the model does not have")
        shape = next(i.shape for i in inputs if i.name == spec.input_name)
        if len(shape) != 2 or (isinstance(shape[1], int) and shape[1] != spec.input_length):
            raise BundleError(
                f"{path}: input shape {shape} does not take spectra of {spec.input_length} points"
            )
        if isinstance(shape[0], int) and shape[0] > 0:  # a fixed batch
            self.max_batch = self._min_batch = shape[0]

    @classmethod
    def from_export(
        cls, manifest: Manifest, artefact: Artefact, threads: int | None = None
    ) -> OnnxRuntimeRunner:
        """The runner of ``artefact`` (an ``onnx`` entry of the verified ``manifest``)."""
        settings = manifest.runtime.get("onnxruntime", {})
        return cls(
            (manifest.path or Path(".")) / artefact.path,
            ModelSpec.from_manifest(manifest),
            precision=artefact.precision,
            threads=threads,
            providers=tuple(settings.get("providers", DEFAULT_PROVIDERS)),
        )

    def _run(self, x: np.ndarray) -> np.ndarray:
        return self._session.run([self.spec.output_name], {self.spec.input_name: x})[0]

    def _run_features(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.spec.features_name is None:
            return super()._run_features(x)
        logits, features = self._session.run([self.spec.output_name, self.spec.features_name],
                                             {self.spec.input_name: x})
        return logits, features

    def _profile(self, x: np.ndarray, iterations: int,
                 warmup: int) -> dict[tuple[str, str, str], float]:
        # A second session with ONNX Runtime's profiler on; it writes a Chrome-trace JSON
        # whose "Node" events carry each kernel's duration (µs).
        import onnxruntime as ort

        with tempfile.TemporaryDirectory(prefix="pace-ort-profile-") as tmp:
            options = ort.SessionOptions()
            options.log_severity_level = 3
            if self.threads is not None:
                options.intra_op_num_threads = self.threads
            options.enable_profiling = True
            options.profile_file_prefix = str(Path(tmp) / "profile")
            session = ort.InferenceSession(str(self.artefact), options,
                                           providers=self._session.get_providers())
            feed = {self.spec.input_name: x}
            for _ in range(warmup + 1):  # the first call of a session is never counted
                session.run(None, feed)
            start = time.monotonic_ns()  # the profiler's clock (onnxruntime documents it)
            for _ in range(iterations):
                session.run(None, feed)
            events = json.loads(Path(session.end_profiling()).read_text())
        begin_us = (start - session.get_profiling_start_time_ns()) / 1e3
        totals: dict[tuple[str, str, str], float] = {}
        for event in events:
            args = event.get("args", {})
            if event.get("cat") != "Node" or "op_name" not in args or event["ts"] < begin_us:
                continue
            name = str(event.get("name", "")).removesuffix("_kernel_time")
            key = (name, str(args["op_name"]), str(args.get("provider", "")))
            totals[key] = totals.get(key, 0.0) + float(event.get("dur", 0.0)) / 1e3
        return totals

    def _release(self) -> None:
        del self._session

    def _describe(self) -> dict[str, Any]:
        options = self._session.get_session_options()
        providers = self._session.get_providers()
        return {
            "threads": options.intra_op_num_threads,  # 0: ONNX Runtime's default
            "device": providers[0],
            "providers": providers,
        }
