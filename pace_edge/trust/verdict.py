"""What a bundle or export knows about trusting its predictions, and the verdict per spectrum.

Stored as plain JSON (``Trust.to_dict``): the temperature, the physical checks' thresholds, the
detector's class centres in whitened feature space, the acceptance threshold and how it was
calibrated. The whitening matrix itself lives with the weights (bundle) or inside the graph
(export), whose second output is the whitened features.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import BundleError
from .checks import PhysicalChecks
from .ood import nearest_center_score
from .temperature import scaled_softmax

OUT_OF_DISTRIBUTION = "out_of_distribution"
METHOD = "mahalanobis"


@dataclass(frozen=True)
class Verdicts:
    """Per spectrum: accepted or not, the reason when not, the OOD score, and the
    temperature-scaled class probabilities (kept for inspection either way)."""

    accepted: np.ndarray  # (n,) bool
    reasons: list[str | None]
    scores: np.ndarray  # (n,) float64; NaN where a physical check refused before the model
    probabilities: np.ndarray  # (n, classes) float64

    def record(self, i: int) -> dict[str, Any]:
        """The JSON fields of spectrum ``i``: ``accepted`` and, when refused, ``reason`` and
        ``score`` (the OOD score; ``null`` when a physical check refused it)."""
        if self.accepted[i]:
            return {"accepted": True}
        score = float(self.scores[i])
        return {"accepted": False, "reason": self.reasons[i],
                "score": None if np.isnan(score) else round(score, 6)}


@dataclass(frozen=True)
class Trust:
    """Temperature, physical checks and the "unknown" detector of one model."""

    temperature: float = 1.0
    checks: PhysicalChecks = field(default_factory=PhysicalChecks)
    centers: np.ndarray | None = None  # (classes, d) in whitened feature space
    threshold: float = float("inf")
    accept_rate: float | None = None
    calibration: dict[str, Any] = field(default_factory=dict)

    @property
    def has_detector(self) -> bool:
        return self.centers is not None

    def to_dict(self) -> dict[str, Any]:
        return {
            "temperature": self.temperature,
            "checks": self.checks.to_dict(),
            "detector": None if self.centers is None else {
                "method": METHOD,
                "threshold": self.threshold,
                "accept_rate": self.accept_rate,
                "feature_dim": int(self.centers.shape[1]),
                "centers": [[float(v) for v in row] for row in self.centers],
            },
            "calibration": self.calibration,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None, where: str = "trust") -> Trust:
        """The recorded trust; an empty or missing one (older bundles) checks physics only
        and leaves the probabilities unscaled."""
        if not d:
            return cls()
        try:
            detector = d.get("detector")
            centers = threshold = rate = None
            if detector:
                if detector.get("method") != METHOD:
                    raise BundleError(f"{where}: unknown detector {detector.get('method')!r}")
                centers = np.asarray(detector["centers"], dtype=np.float32)
                if centers.ndim != 2 or centers.shape[1] != int(detector["feature_dim"]):
                    raise BundleError(f"{where}: detector centres do not match feature_dim")
                threshold = float(detector["threshold"])
                rate = detector.get("accept_rate")
            temperature = float(d.get("temperature", 1.0))
            if not temperature > 0:
                raise BundleError(f"{where}: temperature must be positive, got {temperature}")
            return cls(temperature=temperature,
                       checks=PhysicalChecks.from_dict(d.get("checks") or {}),
                       centers=centers,
                       threshold=float("inf") if threshold is None else threshold,
                       accept_rate=None if rate is None else float(rate),
                       calibration=dict(d.get("calibration") or {}))
        except (KeyError, TypeError, ValueError) as exc:
            raise BundleError(f"{where}: malformed trust record ({exc})") from exc

    def scores(self, projected: np.ndarray | None) -> np.ndarray:
        """OOD scores of whitened features ``(n, d)`` (zeros without a detector)."""
        if self.centers is None or projected is None:
            n = 0 if projected is None else len(projected)
            return np.zeros(n)
        return nearest_center_score(projected, self.centers)

    def judge(self, raw: np.ndarray | None, logits: np.ndarray,
              projected: np.ndarray | None) -> Verdicts:
        """Verdicts for spectra whose raw intensities are ``raw`` (``None``: skip the physical
        checks), with model ``logits`` and whitened features ``projected``."""
        logits = np.atleast_2d(np.asarray(logits))
        n = len(logits)
        reasons: list[str | None] = (self.checks.reasons(raw) if raw is not None
                                     else [None] * n)
        scores = self.scores(projected) if self.has_detector else np.zeros(n)
        final: list[str | None] = []
        for i in range(n):
            if reasons[i] is None and self.has_detector and not scores[i] <= self.threshold:
                final.append(OUT_OF_DISTRIBUTION)  # NaN scores are refused too
            else:
                final.append(reasons[i])
        scores = np.where([r is None or r == OUT_OF_DISTRIBUTION for r in final], scores,
                          np.nan)
        accepted = np.array([r is None for r in final], dtype=bool)
        return Verdicts(accepted, final, scores, scaled_softmax(logits, self.temperature))
