"""Numerical parity of exported artefacts with the PyTorch model they came from.

The reference is the original :class:`~pace_edge.model.PACE` rebuilt from the bundle (with its
BatchNorms), so parity also checks the graph passes. Runtimes are imported on use.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from . import INPUT_NAME, Batch, ExportOptions

if TYPE_CHECKING:
    from ..bundle import Bundle

# (max |logit difference| allowed or None, minimum argmax agreement) per precision.
THRESHOLDS: dict[str, tuple[float | None, float]] = {
    "fp32": (1e-4, 1.0),
    "fp16": (None, 0.999),
}


@dataclass(frozen=True)
class ParityResult:
    """How closely one artefact, run by one runtime, reproduces the reference logits."""

    artefact: str
    runtime: str
    precision: str
    samples: int
    max_abs_diff: float
    mean_abs_diff: float
    agreement: float
    max_abs_limit: float | None
    min_agreement: float
    passed: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        limit = f" (limit {self.max_abs_limit:g})" if self.max_abs_limit is not None else ""
        return (
            f"{self.artefact} on {self.runtime}: max |Δlogit| {self.max_abs_diff:.3g}{limit}, "
            f"argmax agreement {self.agreement:.2%} (need {self.min_agreement:.2%}) over "
            f"{self.samples} spectra"
        )


def compare(
    reference: np.ndarray,
    candidate: np.ndarray,
    *,
    artefact: str,
    runtime: str,
    precision: str,
    max_abs: float | None = None,
    min_agreement: float | None = None,
) -> ParityResult:
    """Compare two ``(N, classes)`` logit arrays; limits default to :data:`THRESHOLDS`."""
    reference = np.asarray(reference, dtype=np.float64)
    candidate = np.asarray(candidate, dtype=np.float64)
    if reference.shape != candidate.shape:
        raise ValueError(f"logit shapes differ: {reference.shape} vs {candidate.shape}")
    default_abs, default_agree = THRESHOLDS.get(precision, (None, 0.0))
    max_abs = default_abs if max_abs is None else max_abs
    min_agreement = default_agree if min_agreement is None else min_agreement
    diff = np.abs(reference - candidate)
    finite = bool(np.isfinite(candidate).all())
    max_diff = float(diff.max()) if finite else float("inf")
    agreement = float(np.mean(reference.argmax(1) == candidate.argmax(1)))
    passed = (
        finite
        and agreement >= min_agreement
        and (max_abs is None or max_diff <= max_abs)
    )
    return ParityResult(
        artefact=artefact,
        runtime=runtime,
        precision=precision,
        samples=int(reference.shape[0]),
        max_abs_diff=max_diff,
        mean_abs_diff=float(diff.mean()) if finite else float("inf"),
        agreement=agreement,
        max_abs_limit=max_abs,
        min_agreement=min_agreement,
        passed=passed,
    )


def parity_inputs(length: int, n: int = 256, seed: int = 0) -> np.ndarray:
    """``n`` synthetic, standardised spectra of ``length`` points (float32).

    Each is a smooth baseline plus 3-12 Gaussian bands plus noise, scaled to zero mean and unit
    variance like an SNV-normalised spectrum: realistic enough to exercise every layer.
    """
    rng = np.random.default_rng(seed)
    t = np.linspace(0.0, 1.0, length)
    x = np.empty((n, length))
    for i in range(n):
        y = np.polyval(rng.normal(0, 0.5, 3), t)
        for _ in range(rng.integers(3, 13)):
            centre, width = rng.uniform(0, 1), rng.uniform(0.003, 0.05)
            y += rng.uniform(0.2, 3.0) * np.exp(-0.5 * ((t - centre) / width) ** 2)
        y += rng.normal(0, 0.02, length)
        x[i] = (y - y.mean()) / (y.std() + 1e-12)
    return x.astype(np.float32)


def inputs_for(bundle: Bundle, options: ExportOptions) -> np.ndarray:
    """The spectra parity is checked on: the real ones given to the export (``--eval``) when
    there are any, else synthetic ones scaled to the training inputs the bundle recorded."""
    if options.parity_data is not None:
        return np.ascontiguousarray(options.parity_data, dtype=np.float32)
    x = parity_inputs(bundle.input_length, options.parity_samples, options.seed)
    stats = bundle.training.get("data", {}).get("input_stats")
    if stats:
        x = x * np.float32(stats["std"]) + np.float32(stats["mean"])
    return x.astype(np.float32)


def run_batched(fn: Callable[[np.ndarray], np.ndarray], x: np.ndarray, batch: Batch) -> np.ndarray:
    """``fn`` over ``x`` in chunks; with a fixed ``batch``, the last chunk is zero-padded."""
    size = 64 if batch == "dynamic" else int(batch)
    out = []
    for start in range(0, len(x), size):
        chunk = x[start : start + size]
        n = len(chunk)
        if batch != "dynamic" and n < size:
            chunk = np.concatenate([chunk, np.zeros((size - n, *chunk.shape[1:]), chunk.dtype)])
        out.append(np.asarray(fn(np.ascontiguousarray(chunk)))[:n])
    return np.concatenate(out)


def torch_logits(bundle: Bundle, x: np.ndarray) -> np.ndarray:
    """Reference logits of the bundle's original PyTorch model (eval mode, float32): the one
    reference path, :class:`~pace_edge.evaluate.classifier.BundleClassifier`."""
    from ..evaluate.classifier import BundleClassifier

    return BundleClassifier(bundle, batch_size=64).logits(x)


def onnx_logits(path: str | Path, x: np.ndarray, batch: Batch = "dynamic") -> np.ndarray:
    """Logits of an ONNX model run by ONNX Runtime's CPUExecutionProvider."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return run_batched(lambda c: session.run(None, {INPUT_NAME: c})[0], x, batch)


def openvino_logits(
    path: str | Path,
    x: np.ndarray,
    batch: Batch = "dynamic",
    config: dict[str, Any] | None = None,
) -> np.ndarray:
    """Logits of an OpenVINO IR compiled for CPU with ``config`` (e.g. an inference precision)."""
    import openvino as ov

    compiled = ov.Core().compile_model(str(path), "CPU", config or {})
    request = compiled.create_infer_request()

    def infer(chunk: np.ndarray) -> np.ndarray:
        return np.array(request.infer({0: chunk})[compiled.output(0)])

    return run_batched(infer, x, batch)
