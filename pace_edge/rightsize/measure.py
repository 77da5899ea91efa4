"""Measurements of trained candidates: accuracy on labelled data, and the latency of their INT8
builds timed side by side (interleaved, one batch size after the other, in one process)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..benchmark.latency import deployed_call, measure_interleaved, model_inputs

if TYPE_CHECKING:
    from ..bundle import Bundle
    from ..data import SpectralDataset
    from ..runtimes import Runner

CHUNK = 256


def _labels(classes: Sequence[str], data: SpectralDataset) -> np.ndarray:
    from ..evaluate.scoring import model_labels

    return model_labels(data, classes)


def bundle_accuracy(bundle: Bundle, data: SpectralDataset) -> float:
    """Top-1 accuracy of ``bundle`` (PyTorch, FP32) on raw labelled spectra."""
    from ..evaluate.classifier import BundleClassifier

    classifier = BundleClassifier(bundle)
    predicted = classifier.predict_proba(data.x, data.axis).argmax(axis=1)
    return float(np.mean(predicted == _labels(bundle.classes, data)))


def runner_accuracy(runner: Runner, data: SpectralDataset) -> float:
    """Top-1 accuracy of an export's runner on raw labelled spectra (its own preprocessing)."""
    from ..benchmark.run import accuracy

    return accuracy(runner, data)


def time_runners(runners: Mapping[str, Runner], rows: np.ndarray | None,
                 batches: Sequence[int] = (1, 64), iterations: int = 200,
                 warmup: int = 20) -> dict[str, dict[str, dict[str, Any]]]:
    """Per runner, per batch size (as a string key), the latency summary of its
    :func:`~pace_edge.benchmark.latency.deployed_call` on ``rows`` (preprocessed spectra,
    repeated to the batch), every runner timed interleaved with the others at each batch
    size."""
    out: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in runners}
    if not runners:
        return out
    for batch in batches:
        calls = {}
        for name, runner in runners.items():
            x = model_inputs(runner.input_length, batch, rows=rows)
            calls[name] = deployed_call(runner, x)
        stats = measure_interleaved(calls, batch=batch, iterations=iterations, warmup=warmup)
        for name, s in stats.items():
            out[name][str(batch)] = s.summary()
    return out


__all__ = ["bundle_accuracy", "runner_accuracy", "time_runners"]
