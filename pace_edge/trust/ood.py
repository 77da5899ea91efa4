"""Out-of-distribution ("unknown") scores on a model's pooled features.

The deployed detector is the class-conditional Mahalanobis distance with one shared,
Ledoit–Wolf-shrunk covariance (Lee et al., 2018): features are whitened once,
``z = W (f − μ)``, and the score is the squared distance to the nearest class centre in that
space divided by the feature dimension. The whitening is a single matrix product, so an
export folds it into the graph and every runtime only needs the class centres. kNN, energy
and maximum-softmax scores are here for measuring the choice (``scripts/measure_unknown.py``).
Higher scores mean less like the training spectra.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import rankdata

from ..errors import PaceEdgeError


@dataclass(frozen=True)
class MahalanobisDetector:
    """``whiten`` ``(d, d)`` and ``mean`` ``(d,)`` map features to ``z``; ``centers``
    ``(classes, d)`` are the class means in ``z``."""

    whiten: np.ndarray
    mean: np.ndarray
    centers: np.ndarray

    @classmethod
    def fit(cls, features: np.ndarray, y: np.ndarray, components: int | None = None,
            shrinkage: float | None = None) -> MahalanobisDetector:
        """Class means and the covariance of the class-centred ``features``.

        ``components``: keep only the top ``k`` principal directions of that covariance
        (``whiten`` is then ``(k, d)``); otherwise all ``d``. ``shrinkage``: the covariance
        is ``(1 − α) S + α · tr(S)/d · I``; ``None`` picks ``α`` by Ledoit–Wolf.
        """
        from sklearn.covariance import ledoit_wolf  # training-time only

        f = np.asarray(features, dtype=np.float64)
        y = np.asarray(y, dtype=np.int64)
        if f.ndim != 2 or len(f) != len(y) or len(f) < 2:
            raise PaceEdgeError(f"the detector needs (n, d) features and n labels, got "
                                f"{f.shape} and {y.shape}")
        if components is not None and not 1 <= components <= f.shape[1]:
            raise PaceEdgeError(f"detector components must be in [1, {f.shape[1]}], got "
                                f"{components}")
        labels = np.unique(y)
        means = np.stack([f[y == c].mean(axis=0) for c in labels])
        centred = f - means[np.searchsorted(labels, y)]
        if shrinkage is None:
            cov, _ = ledoit_wolf(centred, assume_centered=True)
        else:
            if not 0.0 <= shrinkage <= 1.0:
                raise PaceEdgeError(f"shrinkage must be in [0, 1], got {shrinkage}")
            sample = centred.T @ centred / len(centred)
            cov = ((1.0 - shrinkage) * sample
                   + shrinkage * np.trace(sample) / f.shape[1] * np.eye(f.shape[1]))
        eigval, eigvec = np.linalg.eigh(cov)  # ascending
        eigval = np.maximum(eigval, eigval.max() * 1e-9)
        if components is not None:
            eigval, eigvec = eigval[-components:], eigvec[:, -components:]
        whiten = (eigvec / np.sqrt(eigval)).T
        mean = f.mean(axis=0)
        centers = (means - mean) @ whiten.T
        return cls(whiten.astype(np.float32), mean.astype(np.float32),
                   centers.astype(np.float32))

    @property
    def dim(self) -> int:
        return int(self.centers.shape[1])

    def project(self, features: np.ndarray) -> np.ndarray:
        """Whitened features ``z`` of pooled ``features`` ``(n, d)``."""
        f = np.asarray(features, dtype=np.float64)
        return (f - self.mean) @ self.whiten.T.astype(np.float64)

    def score_projected(self, z: np.ndarray) -> np.ndarray:
        """Squared distance to the nearest class centre per dimension, of whitened ``z``."""
        return nearest_center_score(z, self.centers)

    def score(self, features: np.ndarray) -> np.ndarray:
        return self.score_projected(self.project(features))


def nearest_center_score(z: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """``min_c ||z − centers_c||² / d`` for each row of ``z``."""
    z = np.asarray(z, dtype=np.float64)
    c = np.asarray(centers, dtype=np.float64)
    d2 = (z * z).sum(1)[:, None] - 2.0 * z @ c.T + (c * c).sum(1)[None, :]
    return np.maximum(d2.min(axis=1), 0.0) / c.shape[1]


def accept_threshold(scores: np.ndarray, accept_rate: float) -> float:
    """The score at or below which spectra are accepted, set on held-out in-distribution
    ``scores`` so that a share ``accept_rate`` of new ones is accepted (the conformal rank
    ``⌈(n + 1) · rate⌉``; the largest score when there are too few for that rank, which
    guarantees ``n / (n + 1)``)."""
    s = np.sort(np.asarray(scores, dtype=np.float64))
    if s.size == 0:
        raise PaceEdgeError("no held-out spectra to set the acceptance threshold on")
    if not 0.0 < accept_rate < 1.0:
        raise PaceEdgeError(f"accept rate must be in (0, 1), got {accept_rate}")
    rank = min(math.ceil((s.size + 1) * accept_rate), s.size)
    return float(s[rank - 1])


def knn_score(train_features: np.ndarray, features: np.ndarray, k: int = 1) -> np.ndarray:
    """Distance to the ``k``-th nearest training feature vector, both L2-normalised
    (Sun et al., 2022)."""
    a = _unit(train_features)
    b = _unit(features)
    d2 = np.maximum(2.0 - 2.0 * b @ a.T, 0.0)
    return np.sqrt(np.sort(d2, axis=1)[:, k - 1])


def energy_score(logits: np.ndarray) -> np.ndarray:
    """Negative free energy, ``−logsumexp(logits)`` (Liu et al., 2020)."""
    z = np.asarray(logits, dtype=np.float64)
    m = z.max(axis=1)
    return -(m + np.log(np.exp(z - m[:, None]).sum(axis=1)))


def msp_score(logits: np.ndarray) -> np.ndarray:
    """Negative maximum softmax probability (Hendrycks & Gimpel, 2017)."""
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=1, keepdims=True)
    p = np.exp(z)
    return -(p / p.sum(axis=1, keepdims=True)).max(axis=1)


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def auroc(in_scores: np.ndarray, out_scores: np.ndarray) -> float:
    """Probability that an out-of-distribution spectrum scores above an in-distribution one
    (ties count half): the area under the ROC curve of the score as a detector."""
    a = np.asarray(in_scores, dtype=np.float64)
    b = np.asarray(out_scores, dtype=np.float64)
    if a.size == 0 or b.size == 0:
        raise PaceEdgeError("AUROC needs in- and out-of-distribution scores")
    ranks = rankdata(np.concatenate([a, b]))
    return float((ranks[a.size:].sum() - b.size * (b.size + 1) / 2) / (a.size * b.size))
