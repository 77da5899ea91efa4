"""The runner interface shared by every backend, and what a runner needs to know about its model.

A :class:`Runner` wraps one loaded model on one runtime (ONNX Runtime, OpenVINO, TensorRT or
PyTorch). Everything except running a batch lives here, so preprocessing, chunking to the
artefact's batch size, softmax and input checks are one code path for all backends. Subclasses
implement :meth:`Runner._run` (one batch within the artefact's limits), :meth:`Runner._release`
and optionally :meth:`Runner._describe`.

Torch-free and onnx-free: runtimes are imported by the backend modules, on load.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import BundleError, DataError, PaceEdgeError
from ..preprocess import BoundPipeline, Pipeline
from ..trust import Trust, Verdicts, scaled_softmax

if TYPE_CHECKING:
    from ..bundle import Bundle
    from ..export.manifest import Manifest

BACKENDS = ("onnxruntime", "openvino", "tensorrt", "torch")
DEFAULT_CHUNK = 256  # rows per call for dynamic-batch models
BOUND_AXES = 8  # input axes whose bound preprocessing a runner keeps


@dataclass(frozen=True)
class ModelSpec:
    """How to feed a model and read it: its classes, input axis, preprocessing and I/O names.

    ``batch`` is the batch the artefact was exported with (a size or ``"dynamic"``); runners
    trust the loaded model's own input shape over it.
    """

    classes: tuple[str, ...]
    axis: np.ndarray
    pipeline: Pipeline
    input_name: str = "spectrum"
    output_name: str = "logits"
    batch: int | str = "dynamic"
    trust: Trust = field(default_factory=Trust)
    features_name: str | None = None  # the graph's whitened-features output, if any

    @property
    def input_length(self) -> int:
        return int(self.axis.size)

    @classmethod
    def from_manifest(cls, manifest: Manifest) -> ModelSpec:
        """The spec recorded in an export's (verified) manifest."""
        where = manifest.path or Path(".")
        try:
            pipeline = Pipeline.from_list(manifest.input.preprocessing)
        except (PaceEdgeError, TypeError) as exc:
            raise BundleError(f"{where / 'manifest.json'}: bad preprocessing ({exc})") from exc
        axis = np.asarray(manifest.input.axis, dtype=np.float64)
        if axis.ndim != 1 or axis.size != manifest.input.length:
            raise BundleError(f"{where / 'manifest.json'}: input axis length mismatch")
        if len(manifest.classes) != manifest.output.classes:
            raise BundleError(
                f"{where / 'manifest.json'}: {len(manifest.classes)} class names for a "
                f"{manifest.output.classes}-class output"
            )
        trust_record = getattr(manifest, "trust", None) or {}
        trust = Trust.from_dict(trust_record, f"{where / 'manifest.json'}: trust")
        return cls(
            classes=tuple(str(c) for c in manifest.classes),
            axis=axis,
            pipeline=pipeline,
            input_name=manifest.input.name,
            output_name=manifest.output.name,
            batch=manifest.input.batch,
            trust=trust,
            features_name=trust_record.get("features_output") if trust.has_detector else None,
        )

    @classmethod
    def from_bundle(cls, bundle: Bundle) -> ModelSpec:
        """The spec of a (verified) model bundle: dynamic batch, standard I/O names."""
        from ..trust import bundle_trust

        return cls(
            classes=tuple(bundle.classes),
            axis=np.asarray(bundle.axis, dtype=np.float64),
            pipeline=bundle.preprocessing,
            trust=bundle_trust(bundle)[0],
        )


@dataclass(frozen=True)
class Prediction:
    """Class probabilities ``(n, classes)`` with the winning class of each row."""

    probabilities: np.ndarray
    classes: tuple[str, ...]

    @property
    def indices(self) -> np.ndarray:
        return self.probabilities.argmax(axis=1)

    @property
    def labels(self) -> list[str]:
        return [self.classes[i] for i in self.indices]

    @property
    def confidence(self) -> np.ndarray:
        return self.probabilities.max(axis=1)


@dataclass(frozen=True)
class LayerTime:
    """One executed layer (node or fused primitive) of a profiled model: mean ms per call."""

    name: str
    op: str  # the graph's operation, e.g. Convolution
    kernel: str  # what the runtime ran, e.g. brgconv_avx512_1x1_I8
    ms: float


def softmax(logits: np.ndarray, dtype: type = np.float32) -> np.ndarray:
    """Row-wise softmax computed in float64, returned as ``dtype`` (the one softmax: runners,
    the stream, the PyTorch classifier)."""
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return (e / e.sum(axis=1, keepdims=True)).astype(dtype, copy=False)


class Runner(ABC):
    """One model on one runtime: ``preprocess`` raw spectra, ``infer`` logits, ``predict_proba``.

    Attributes: ``name`` (backend), ``precision``, ``classes``, ``axis`` (the model's input
    axis), ``input_length``, ``max_batch`` (rows per call; ``None`` = dynamic), ``threads``
    (as requested; :meth:`describe` reports what the runtime actually uses), ``artefact``
    (the file run) and ``reason`` (why :func:`~pace_edge.runtimes.load_runner` chose it).
    """

    name: str = "runner"

    def __init__(
        self,
        spec: ModelSpec,
        *,
        precision: str,
        artefact: Path | None,
        threads: int | None = None,
    ) -> None:
        if threads is not None and (isinstance(threads, bool) or int(threads) < 1):
            raise PaceEdgeError(f"threads must be a positive number, got {threads!r}")
        self.spec = spec
        self.precision = precision
        self.artefact = artefact
        self.threads = None if threads is None else int(threads)
        self.max_batch: int | None = None
        self._min_batch = 1  # pad smaller chunks up to this (fixed-batch / TensorRT profiles)
        self.reason = ""
        self._closed = False
        self._bound: dict[bytes, BoundPipeline] = {}

    # --- what the model expects ---------------------------------------------------------------

    @property
    def classes(self) -> list[str]:
        return list(self.spec.classes)

    @property
    def axis(self) -> np.ndarray:
        return self.spec.axis

    @property
    def input_length(self) -> int:
        return self.spec.input_length

    @property
    def pipeline(self) -> Pipeline:
        return self.spec.pipeline

    # --- the one data path --------------------------------------------------------------------

    def preprocess(self, raw: np.ndarray, axis: np.ndarray) -> np.ndarray:
        """Raw spectra ``(n, L')`` or ``(L',)`` on ``axis`` → model inputs ``(n, L)`` float32.

        Runs the export's (or bundle's) preprocessing pipeline; :class:`DataError` if the
        spectra or axis are unusable or do not land on the model's input axis.
        """
        x = self.bound_pipeline(axis)(np.atleast_2d(np.asarray(raw)))
        return np.ascontiguousarray(x, dtype=np.float32)

    def bound_pipeline(self, axis: np.ndarray) -> BoundPipeline:
        """The preprocessing bound to input ``axis``, checked to land on the model's axis.

        Bound once per distinct axis (a few are kept), so a stream from one instrument pays
        for the axis checks and interpolation plan once, not per spectrum.
        """
        a = np.asarray(axis, dtype=np.float64)
        key = a.tobytes()
        bound = self._bound.get(key)
        if bound is not None:
            return bound
        bound = self.pipeline.bind(a)
        model, out_axis = self.axis, bound.axis
        if out_axis.size != model.size:
            raise DataError(
                f"after preprocessing the spectra have {out_axis.size} points but the model "
                f"expects {model.size} (axis {model[0]:g}…{model[-1]:g}); the pipeline does "
                "not resample onto the model's axis"
            )
        tolerance = 1e-3 * float(np.min(np.diff(model)))
        if not np.allclose(out_axis, model, rtol=0.0, atol=tolerance):
            raise DataError(
                f"after preprocessing the axis runs {out_axis[0]:g}…{out_axis[-1]:g} but the "
                f"model's runs {model[0]:g}…{model[-1]:g}; the pipeline does not resample "
                "onto the model's axis"
            )
        if len(self._bound) >= BOUND_AXES:
            self._bound.pop(next(iter(self._bound)))
        self._bound[key] = bound
        return bound

    def infer(self, inputs: np.ndarray) -> np.ndarray:
        """Logits ``(n, classes)`` float32 of preprocessed inputs ``(n, L)``.

        Splits ``inputs`` into chunks of at most :attr:`max_batch` rows and zero-pads chunks a
        fixed-batch artefact cannot take as they are; padded rows are dropped.
        """
        return self._chunked(inputs, with_features=False)[0]

    def infer_with_features(self, inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Logits and the whitened features the "unknown" detector scores ``(n, d)``
        (``None`` when the model carries no detector)."""
        if not self.spec.trust.has_detector:
            return self.infer(inputs), None
        return self._chunked(inputs, with_features=True)

    def judge_inputs(self, raw: np.ndarray | None,
                     inputs: np.ndarray) -> tuple[Verdicts, np.ndarray]:
        """Verdicts and logits of preprocessed ``inputs`` whose raw intensities (for the
        physical checks; ``None`` skips them) are the rows of ``raw``."""
        logits, projected = self.infer_with_features(inputs)
        return self.spec.trust.judge(raw, logits, projected), logits

    def judge(self, raw: np.ndarray, axis: np.ndarray) -> Verdicts:
        """Physical checks, the model and the "unknown" detector on raw spectra on ``axis``:
        accepted or not (with the reason and score), and calibrated probabilities."""
        raw = np.atleast_2d(np.asarray(raw))
        return self.judge_inputs(raw, self.preprocess(raw, axis))[0]

    def _chunked(self, inputs: np.ndarray,
                 with_features: bool) -> tuple[np.ndarray, np.ndarray | None]:
        self._check_open()
        x = np.asarray(inputs)
        if x.ndim == 1:
            x = x[None, :]
        if x.ndim != 2 or x.shape[1] != self.input_length:
            raise DataError(
                f"model inputs must be (n, {self.input_length}), got shape {x.shape}; "
                "preprocess raw spectra with runner.preprocess(raw, axis)"
            )
        n_classes = len(self.spec.classes)
        dim = self.spec.trust.centers.shape[1] if with_features else 0
        if x.shape[0] == 0:
            return (np.zeros((0, n_classes), np.float32),
                    np.zeros((0, dim), np.float32) if with_features else None)
        x = np.ascontiguousarray(x, dtype=np.float32)
        step = self.max_batch or DEFAULT_CHUNK
        out, feats = [], []
        for start in range(0, len(x), step):
            chunk = x[start : start + step]
            n = len(chunk)
            if n < self._min_batch:
                pad = np.zeros((self._min_batch - n, x.shape[1]), np.float32)
                chunk = np.concatenate([chunk, pad])
            if with_features:
                logits, projected = (np.asarray(a) for a in self._run_features(chunk))
                if projected.shape != (len(chunk), dim):
                    raise PaceEdgeError(
                        f"{self.name}: model returned features of shape {projected.shape}, "
                        f"expected ({len(chunk)}, {dim})"
                    )
                feats.append(projected[:n])
            else:
                logits = np.asarray(self._run(chunk))
            if logits.shape != (len(chunk), n_classes):
                raise PaceEdgeError(
                    f"{self.name}: model returned shape {logits.shape}, expected "
                    f"({len(chunk)}, {n_classes})"
                )
            out.append(logits[:n])
        logits = np.ascontiguousarray(np.concatenate(out), dtype=np.float32)
        return logits, (np.concatenate(feats).astype(np.float32) if with_features else None)

    def predict_proba(self, raw: np.ndarray, axis: np.ndarray) -> np.ndarray:
        """Class probabilities ``(n, classes)`` of raw spectra: the softmax of the logits
        over the model's calibrated temperature (1 for models without one)."""
        logits = self.infer(self.preprocess(raw, axis))
        return scaled_softmax(logits, self.spec.trust.temperature).astype(np.float32)

    def predict(self, raw: np.ndarray, axis: np.ndarray) -> Prediction:
        """:meth:`predict_proba` with the class names attached."""
        return Prediction(self.predict_proba(raw, axis), self.spec.classes)

    def profile(self, inputs: np.ndarray, iterations: int = 50,
                warmup: int = 5) -> list[LayerTime]:
        """Per-layer time of ``infer(inputs)``, slowest first, from the runtime's own counters
        (mean over ``iterations`` calls after ``warmup``). A :class:`PaceEdgeError` where the
        backend has no per-layer profiler."""
        self._check_open()
        x = np.ascontiguousarray(np.atleast_2d(inputs), dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != self.input_length or not len(x):
            raise DataError(f"model inputs must be (n, {self.input_length}), got {x.shape}")
        if iterations < 1 or warmup < 0:
            raise PaceEdgeError("profile needs iterations >= 1 and warmup >= 0")
        if self.max_batch is not None and len(x) != self.max_batch:
            raise DataError(f"this artefact takes batches of {self.max_batch}, got {len(x)}")
        totals = self._profile(x, iterations, warmup)
        layers = [LayerTime(name, op, kernel, ms / iterations)
                  for (name, op, kernel), ms in totals.items()]
        return sorted(layers, key=lambda layer: layer.ms, reverse=True)

    def _profile(self, x: np.ndarray, iterations: int,
                 warmup: int) -> dict[tuple[str, str, str], float]:
        """Total ms per (layer, op, kernel) over ``iterations`` calls (backend hook)."""
        raise PaceEdgeError(f"per-layer profiling is not available for the {self.name} backend")

    def warmup(self, n: int = 3) -> None:
        """Run ``n`` inferences of one zero spectrum (first-call allocations, JIT, autotuning)."""
        x = np.zeros((1, self.input_length), np.float32)
        for _ in range(n):
            self.infer(x)

    # --- lifecycle and introspection ----------------------------------------------------------

    def describe(self) -> dict[str, Any]:
        """Backend, precision, artefact, threads and device as the runtime reports them."""
        info: dict[str, Any] = {
            "backend": self.name,
            "precision": self.precision,
            "artefact": str(self.artefact) if self.artefact is not None else None,
            "threads": self.threads,
            "device": "cpu",
            "max_batch": self.max_batch,
            "input_length": self.input_length,
            "classes": self.classes,
        }
        if not self._closed:
            info.update(self._describe())
        if self.reason:
            info["reason"] = self.reason
        return info

    def close(self) -> None:
        """Release the runtime's resources; further inference raises. Idempotent."""
        if not self._closed:
            self._closed = True
            self._release()

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        batch = "dynamic" if self.max_batch is None else self.max_batch
        return (
            f"<{type(self).__name__} {self.precision} {self.artefact} batch={batch}"
            f"{' closed' if self._closed else ''}>"
        )

    def _check_open(self) -> None:
        if self._closed:
            raise PaceEdgeError(f"{self.name} runner is closed")

    # --- backend hooks ------------------------------------------------------------------------

    @abstractmethod
    def _run(self, x: np.ndarray) -> np.ndarray:
        """Logits of one contiguous float32 batch within ``[_min_batch, max_batch]`` rows."""

    def _run_features(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Logits and whitened features of one batch (backends whose model has the
        detector's output override this)."""
        raise PaceEdgeError(
            f"{self.name}: this artefact has no features output for the 'unknown' detector; "
            "re-export it with this version of pace-edge"
        )

    def _release(self) -> None:  # noqa: B027 - optional hook
        """Free sessions, compiled models and device memory."""

    def _describe(self) -> dict[str, Any]:
        """Backend specifics for :meth:`describe` (actual threads, device, ...)."""
        return {}
