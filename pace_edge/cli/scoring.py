"""Score a model on a labelled data set (shared by train, evaluate and demo)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from ..bundle import Bundle
from ..data import SpectralDataset
from ..errors import DataError
from ..evaluate import Metrics

if TYPE_CHECKING:
    from ..runtimes import Runner

CHUNK = 256  # spectra per call


def model_labels(data: SpectralDataset, classes: Sequence[str]) -> np.ndarray:
    """``data``'s labels as indices into the model's ``classes`` (matched by name; the data
    may hold a subset, in any order); :class:`DataError` for a class the model does not know."""
    classes = list(classes)
    missing = [c for c in data.classes if c not in classes]
    if missing:
        raise DataError(
            f"{data.source}: classes {missing} are unknown to the model (it knows {classes})"
        )
    index = np.array([classes.index(c) for c in data.classes], dtype=np.int64)
    return index[np.asarray(data.y, dtype=np.int64)]


def score_bundle(bundle: Bundle, data: SpectralDataset) -> Metrics:
    """Accuracy and friends of ``bundle`` (on PyTorch) on ``data``."""
    from ..evaluate.classifier import BundleClassifier

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
