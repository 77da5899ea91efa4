"""Whether a prediction can be trusted: physical checks on the raw spectrum, an "unknown"
(out-of-distribution) detector on the model's pooled features, and temperature-scaled
probabilities. Torch-free: the device runtimes use it as it is."""

from .checks import PhysicalChecks
from .ood import MahalanobisDetector, accept_threshold
from .stored import MEAN_KEY, WHITEN_KEY, bundle_trust
from .temperature import (
    checked_temperature,
    expected_calibration_error,
    fit_temperature,
    scaled_softmax,
)
from .verdict import Trust, Verdicts

__all__ = [
    "MEAN_KEY",
    "WHITEN_KEY",
    "bundle_trust",
    "MahalanobisDetector",
    "PhysicalChecks",
    "Trust",
    "Verdicts",
    "accept_threshold",
    "checked_temperature",
    "expected_calibration_error",
    "fit_temperature",
    "scaled_softmax",
]
