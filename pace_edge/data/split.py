"""Deterministic stratified train/validation splits: one hold-out, or k folds."""

from __future__ import annotations

import math

import numpy as np

from ..errors import PaceEdgeError


def stratified_split(
    y: np.ndarray, fraction: float, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Split indices of ``y`` into sorted, disjoint ``(train_idx, val_idx)``.

    Per class, ``fraction * count`` (rounded half up) items go to validation, at least one when
    ``fraction > 0`` and the class has 2+ items, and never the class's last training item.
    The same ``y``, ``fraction`` and ``seed`` always give the same split.
    """
    fraction = float(fraction)
    if not 0.0 <= fraction < 1.0:  # also rejects NaN
        raise PaceEdgeError(f"validation fraction must be in [0, 1), got {fraction}")
    y = np.asarray(y)
    if y.ndim != 1:
        raise PaceEdgeError(f"labels must be 1-D, got shape {y.shape}")
    rng = np.random.default_rng(seed)
    val: list[np.ndarray] = []
    for label in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == label))
        val.append(members[: _n_val(members.size, fraction)])
    val_idx = np.sort(np.concatenate(val)) if val else np.array([], dtype=np.int64)
    train_mask = np.ones(y.size, dtype=bool)
    train_mask[val_idx] = False
    return np.flatnonzero(train_mask).astype(np.int64), val_idx.astype(np.int64)


def _n_val(count: int, fraction: float) -> int:
    if count < 2 or fraction == 0.0:
        return 0
    return min(max(math.floor(fraction * count + 0.5), 1), count - 1)


def stratified_folds(y: np.ndarray, k: int, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """``k`` sorted ``(train_idx, val_idx)`` pairs whose validation parts partition ``y``.

    Each class's items are shuffled (seeded) and dealt round-robin over the folds, so every
    fold holds each class in proportion; every class needs at least ``k`` items.
    """
    y = np.asarray(y)
    if y.ndim != 1:
        raise PaceEdgeError(f"labels must be 1-D, got shape {y.shape}")
    if k < 2:
        raise PaceEdgeError(f"k-fold selection needs at least 2 folds, got {k}")
    rng = np.random.default_rng(seed)
    fold_of = np.empty(y.size, dtype=np.int64)
    for label in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == label))
        if members.size < k:
            raise PaceEdgeError(
                f"class {label!r} has {members.size} spectra, fewer than the {k} folds"
            )
        fold_of[members] = np.arange(members.size) % k
    return [(np.flatnonzero(fold_of != f), np.flatnonzero(fold_of == f)) for f in range(k)]
