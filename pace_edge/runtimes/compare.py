"""Comparator: several runners on the same inputs, each measured against a reference runner.

Per candidate: max and mean |Δlogit|, max |Δprobability|, argmax agreement and time per
spectrum, judged by the export's parity limits for the candidate's precision
(:data:`pace_edge.export.parity.THRESHOLDS`: FP32 max |Δlogit| ≤ 1e-4 and identical argmax).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from ..errors import DataError, PaceEdgeError
from ..export.parity import compare
from .base import Runner, softmax


def runner_label(runner: Runner) -> str:
    """``"openvino fp32 model.xml"``: backend, precision and artefact file name."""
    name = runner.artefact.name if runner.artefact is not None else "-"
    return f"{runner.name} {runner.precision} {name}"


@dataclass(frozen=True)
class RunnerDiff:
    """One candidate runner against the reference on the same inputs."""

    runner: str
    backend: str
    precision: str
    samples: int
    max_abs_logit: float
    mean_abs_logit: float
    max_abs_prob: float
    agreement: float
    max_abs_limit: float | None
    min_agreement: float
    passed: bool
    ms_per_spectrum: float


@dataclass
class Comparison:
    """The reference runner, its timing, and one :class:`RunnerDiff` per other runner."""

    reference: str
    reference_ms_per_spectrum: float
    samples: int
    rows: list[RunnerDiff] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(row.passed for row in self.rows)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "passed": self.passed}

    def table(self) -> str:
        """A plain-text table: one line for the reference, one per candidate."""
        header = ["runner", "max|Δlogit|", "mean|Δlogit|", "max|Δprob|", "argmax agree",
                  "ms/spectrum", "result"]
        rows = [[f"{self.reference} (reference)", "-", "-", "-", "-",
                 f"{self.reference_ms_per_spectrum:.3f}", "-"]]
        for r in self.rows:
            limit = f" (≤{r.max_abs_limit:g})" if r.max_abs_limit is not None else ""
            rows.append([
                r.runner, f"{r.max_abs_logit:.2e}{limit}", f"{r.mean_abs_logit:.2e}",
                f"{r.max_abs_prob:.2e}", f"{r.agreement:.2%}", f"{r.ms_per_spectrum:.3f}",
                "ok" if r.passed else "FAILED",
            ])
        widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
        lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
                 for row in [header, *rows]]
        return "\n".join(lines)


def _timed_logits(runner: Runner, inputs: np.ndarray) -> tuple[np.ndarray, float]:
    start = time.perf_counter()
    logits = runner.infer(inputs)
    return logits, 1e3 * (time.perf_counter() - start) / max(len(inputs), 1)


def compare_runners(
    runners: Sequence[Runner],
    x: np.ndarray,
    axis: np.ndarray | None = None,
    *,
    reference: int = 0,
    max_abs: float | None = None,
    min_agreement: float | None = None,
) -> Comparison:
    """Run every runner on ``x`` and compare each with ``runners[reference]``.

    Without ``axis``, ``x`` is model input ``(n, L)`` given to every runner as is (isolates the
    runtimes); with ``axis``, ``x`` is raw spectra that each runner preprocesses itself.
    ``max_abs``/``min_agreement`` override the per-precision limits.
    """
    if len(runners) < 2:
        raise PaceEdgeError("comparing needs at least two runners")
    if not 0 <= reference < len(runners):
        raise PaceEdgeError(f"reference index {reference} out of range for {len(runners)} runners")
    lengths = {r.input_length for r in runners}
    if axis is None and len(lengths) > 1:
        raise DataError(f"the runners take different input lengths {sorted(lengths)}; "
                        "compare on raw spectra with their axis")
    outputs = []
    for runner in runners:
        inputs = runner.preprocess(x, axis) if axis is not None else np.atleast_2d(x)
        outputs.append(_timed_logits(runner, inputs))
    ref_logits, ref_ms = outputs[reference]
    ref_probs = softmax(ref_logits)
    result = Comparison(runner_label(runners[reference]), ref_ms, int(len(ref_logits)))
    for i, (runner, (logits, ms)) in enumerate(zip(runners, outputs, strict=True)):
        if i == reference:
            continue
        if logits.shape != ref_logits.shape:
            raise DataError(f"{runner_label(runner)} returned {logits.shape}, the reference "
                            f"{ref_logits.shape}: the models differ")
        parity = compare(ref_logits, logits, artefact=runner_label(runner), runtime=runner.name,
                         precision=runner.precision, max_abs=max_abs, min_agreement=min_agreement)
        prob_diff = np.abs(softmax(logits).astype(np.float64) - ref_probs)
        result.rows.append(RunnerDiff(
            runner=runner_label(runner),
            backend=runner.name,
            precision=runner.precision,
            samples=parity.samples,
            max_abs_logit=parity.max_abs_diff,
            mean_abs_logit=parity.mean_abs_diff,
            max_abs_prob=float(prob_diff.max()) if np.isfinite(prob_diff).all() else float("inf"),
            agreement=parity.agreement,
            max_abs_limit=parity.max_abs_limit,
            min_agreement=parity.min_agreement,
            passed=parity.passed,
            ms_per_spectrum=ms,
        ))
    return result
