"""Score a model on a labelled data set (train, evaluate, demo and the benchmark), and map a
data set's labels onto a model's classes (the one place that does it)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import DataError
from .metrics import Metrics

if TYPE_CHECKING:
    from ..bundle import Bundle
    from ..data import SpectralDataset
    from ..runtimes import Runner



def model_labels(data: SpectralDataset, classes: Sequence[str], what: str = "") -> np.ndarray:
    """``data``'s labels as indices into the model's ``classes`` (matched by name; the data
    may hold a subset, in any order); :class:`DataError` for a class the model does not know,
    naming the data as ``what`` (e.g. "calibration data") when given."""
    classes = list(classes)
    missing = [c for c in data.classes if c not in classes]
    if missing:
        raise DataError(
            f"{what + ' ' if what else ''}{data.source}: classes {missing} are unknown to the "
            f"model (it knows {classes})"
        )
    index = np.array([classes.index(c) for c in data.classes], dtype=np.int64)
    return index[np.asarray(data.y, dtype=np.int64)]


def score_bundle(bundle: Bundle, data: SpectralDataset) -> Metrics:
    """Accuracy and friends of ``bundle`` (on PyTorch) on ``data``."""
    return judge_bundle(bundle, data)[0]


def judge_bundle(bundle: Bundle, data: SpectralDataset
                 ) -> tuple[Metrics, dict[str, Any], list[dict[str, Any]]]:
    """Metrics, the trust summary (acceptance, refusals, calibration error) and one record
    per spectrum (true and predicted class, probability, accepted, reason, score) of
    ``bundle`` on PyTorch."""
    from .classifier import BundleClassifier

    y = model_labels(data, bundle.classes)
    clf = BundleClassifier(bundle)
    verdicts, logits = clf.judge(data.x, data.axis)
    return _judged(data, y, bundle.classes, verdicts, logits, clf.trust.temperature)


def score_runner(runner: Runner, data: SpectralDataset) -> Metrics:
    """Accuracy and friends of any runner (an export on ONNX Runtime / OpenVINO / TensorRT,
    or a bundle on PyTorch) on ``data``, through the runner's own preprocessing."""
    return judge_runner(runner, data)[0]


def judge_runner(runner: Runner, data: SpectralDataset
                 ) -> tuple[Metrics, dict[str, Any], list[dict[str, Any]]]:
    """:func:`judge_bundle` for any runner, through the runner's own preprocessing, physical
    checks and "unknown" detector (the features output of an export)."""
    y = model_labels(data, runner.classes)
    raw = np.asarray(data.x)
    verdicts, logits = runner.judge_inputs(raw, runner.preprocess(raw, data.axis))
    return _judged(data, y, runner.classes, verdicts, logits, runner.spec.trust.temperature)


def _judged(data: SpectralDataset, y: np.ndarray, classes: Sequence[str], verdicts: Any,
            logits: np.ndarray, temperature: float
            ) -> tuple[Metrics, dict[str, Any], list[dict[str, Any]]]:
    from .trust_report import trust_summary

    classes = list(classes)
    predicted = np.asarray(logits).argmax(axis=1)
    metrics = Metrics.from_labels(y, predicted, classes)
    summary = trust_summary(verdicts, logits, np.asarray(y), temperature)
    records = []
    for i, (true, best) in enumerate(zip(y, predicted, strict=True)):
        records.append({"index": i, "name": data.where(i), "true": classes[int(true)],
                        "class": classes[int(best)],
                        "probability": round(float(verdicts.probabilities[i, best]), 6),
                        **verdicts.record(i)})
    return metrics, summary, records
