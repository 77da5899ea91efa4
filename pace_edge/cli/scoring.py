"""Score a bundle on a labelled data set (shared by train, evaluate and demo)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..bundle import Bundle
from ..data import SpectralDataset
from ..errors import DataError
from ..evaluate import Metrics


def score_bundle(bundle: Bundle, data: SpectralDataset) -> Metrics:
    """Accuracy and friends of ``bundle`` on ``data``, whose classes must be the bundle's."""
    return judge_bundle(bundle, data)[0]


def judge_bundle(bundle: Bundle, data: SpectralDataset
                 ) -> tuple[Metrics, dict[str, Any], list[dict[str, Any]]]:
    """Metrics, the trust summary (acceptance, refusals, calibration error) and one record
    per spectrum (true and predicted class, probability, accepted, reason, score)."""
    from ..evaluate.classifier import BundleClassifier
    from ..evaluate.trust_report import trust_summary

    if data.classes != bundle.classes:
        missing = [c for c in data.classes if c not in bundle.classes]
        if missing:
            raise DataError(
                f"{data.source}: classes {missing} are unknown to the model "
                f"(it knows {bundle.classes})"
            )
        # Same names in another order (or a subset): map the data's labels onto the model's.
        index = [bundle.classes.index(c) for c in data.classes]
        y = [index[v] for v in data.y]
    else:
        y = data.y
    clf = BundleClassifier(bundle)
    verdicts, logits = clf.judge(data.x, data.axis)
    predicted = logits.argmax(axis=1)
    metrics = Metrics.from_labels(y, predicted, bundle.classes)
    summary = trust_summary(verdicts, logits, np.asarray(y), clf.trust.temperature)
    records = []
    for i, (true, best) in enumerate(zip(y, predicted, strict=True)):
        records.append({"index": i, "name": data.where(i), "true": bundle.classes[int(true)],
                        "class": bundle.classes[int(best)],
                        "probability": round(float(verdicts.probabilities[i, best]), 6),
                        **verdicts.record(i)})
    return metrics, summary, records
