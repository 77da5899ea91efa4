"""Score a bundle on a labelled data set (shared by train, evaluate and demo)."""

from __future__ import annotations

from ..bundle import Bundle
from ..data import SpectralDataset
from ..errors import DataError
from ..evaluate import Metrics


def score_bundle(bundle: Bundle, data: SpectralDataset) -> Metrics:
    """Accuracy and friends of ``bundle`` on ``data``, whose classes must be the bundle's."""
    from ..evaluate.classifier import BundleClassifier

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
    predicted = clf.predict_proba(data.x, data.axis).argmax(axis=1)
    return Metrics.from_labels(y, predicted, bundle.classes)
