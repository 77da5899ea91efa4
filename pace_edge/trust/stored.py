"""A bundle's stored trust: the JSON record in ``model.json`` (``training.trust``) and the
detector's whitening arrays kept with the weights."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..errors import BundleError
from .ood import MahalanobisDetector
from .verdict import Trust

if TYPE_CHECKING:
    from ..bundle import Bundle

WHITEN_KEY = "trust.whiten"  # build_model ignores weights named "trust.*"
MEAN_KEY = "trust.mean"


def bundle_trust(bundle: Bundle) -> tuple[Trust, MahalanobisDetector | None]:
    """The bundle's trust record and its detector (``None`` for bundles without one)."""
    where = f"{bundle.path or 'bundle'}"
    trust = Trust.from_dict(bundle.training.get("trust"), f"{where}: trust")
    if not trust.has_detector:
        return trust, None
    try:
        detector = MahalanobisDetector(np.asarray(bundle.weights[WHITEN_KEY]),
                                       np.asarray(bundle.weights[MEAN_KEY]), trust.centers)
    except KeyError as exc:
        raise BundleError(f"{where}: the detector's {exc} array is missing from the "
                          "weights") from None
    if detector.whiten.shape != (trust.centers.shape[1],) * 2:
        raise BundleError(f"{where}: the detector's whitening matrix does not match its "
                          "centres")
    return trust, detector
