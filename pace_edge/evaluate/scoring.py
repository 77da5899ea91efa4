"""Score a model on a labelled data set (train, evaluate, demo and the benchmark), and map a
data set's labels onto a model's classes (the one place that does it)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from ..errors import DataError
from .metrics import Metrics

if TYPE_CHECKING:
    from ..bundle import Bundle
    from ..data import SpectralDataset
    from ..runtimes import Runner

CHUNK = 256  # spectra per call


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
    from .classifier import BundleClassifier

    y = model_labels(data, bundle.classes)
    predicted = BundleClassifier(bundle).predict_proba(data.x, data.axis).argmax(axis=1)
    return Metrics.from_labels(y, predicted, bundle.classes)


def score_runner(runner: Runner, data: SpectralDataset) -> Metrics:
    """Accuracy and friends of any runner (an export on ONNX Runtime / OpenVINO / TensorRT,
    or a bundle on PyTorch) on ``data``, through the runner's own preprocessing."""
    y = model_labels(data, runner.classes)
    predicted = np.concatenate([
        runner.predict_proba(data.x[i : i + CHUNK], data.axis).argmax(axis=1)
        for i in range(0, len(data), CHUNK)
    ]) if len(data) else np.zeros(0, np.int64)
    return Metrics.from_labels(y, predicted, runner.classes)
