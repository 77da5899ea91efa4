"""Deterministic stratified train/validation splits: one hold-out, or k folds.

With ``groups`` (one sample or patient id per spectrum) the splits are *group-aware*: every
group lies wholly on one side, and groups are dealt so that each side keeps the class balance
as well as whole groups allow. Several spectra of one sample are near-duplicates; splitting
them between training and validation scores the model on samples it has already seen.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ..errors import PaceEdgeError


def stratified_split(
    y: np.ndarray, fraction: float, seed: int = 0, groups: np.ndarray | None = None,
    classes: Sequence[str] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Split indices of ``y`` into sorted, disjoint ``(train_idx, val_idx)``.

    Per class, ``fraction * count`` (rounded half up) items go to validation, at least one when
    ``fraction > 0`` and the class has 2+ items, and never the class's last training item.
    The same ``y``, ``fraction`` and ``seed`` always give the same split.

    With ``groups``, whole groups go to validation (:func:`_group_split`): each class gets
    about ``fraction`` of its spectra there, at least one group, never its last training group;
    a class whose spectra all come from one group is an error (``classes``, the names of
    labels ``0..k-1``, make its message name the class).
    """
    fraction = float(fraction)
    if not 0.0 <= fraction < 1.0:  # also rejects NaN
        raise PaceEdgeError(f"validation fraction must be in [0, 1), got {fraction}")
    y = np.asarray(y)
    if y.ndim != 1:
        raise PaceEdgeError(f"labels must be 1-D, got shape {y.shape}")
    rng = np.random.default_rng(seed)
    if groups is not None:
        return _group_split(fraction, rng, _GroupTable(y, groups, classes))
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


def stratified_folds(
    y: np.ndarray, k: int, seed: int = 0, groups: np.ndarray | None = None,
    classes: Sequence[str] | None = None,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """``k`` sorted ``(train_idx, val_idx)`` pairs whose validation parts partition ``y``.

    Each class's items are shuffled (seeded) and dealt round-robin over the folds, so every
    fold holds each class in proportion; every class needs at least ``k`` items. With
    ``groups``, whole groups are dealt instead (:func:`_group_folds`), and every class needs
    spectra from at least ``k`` groups.
    """
    y = np.asarray(y)
    if y.ndim != 1:
        raise PaceEdgeError(f"labels must be 1-D, got shape {y.shape}")
    if k < 2:
        raise PaceEdgeError(f"k-fold selection needs at least 2 folds, got {k}")
    rng = np.random.default_rng(seed)
    if groups is not None:
        return _group_folds(k, rng, _GroupTable(y, groups, classes))
    fold_of = np.empty(y.size, dtype=np.int64)
    for label in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == label))
        if members.size < k:
            raise PaceEdgeError(
                f"class {label!r} has {members.size} spectra, fewer than the {k} folds"
            )
        fold_of[members] = np.arange(members.size) % k
    return [(np.flatnonzero(fold_of != f), np.flatnonzero(fold_of == f)) for f in range(k)]


def group_record(groups: np.ndarray | None, parts: list[np.ndarray]) -> dict[str, object]:
    """What a bundle records about a group-aware split: how many groups in all and in each of
    ``parts`` (index arrays: train and validation, or the k validation folds). Nothing without
    groups, so records of plain splits stay as they were."""
    if groups is None:
        return {}
    groups = np.asarray(groups)
    return {"group_aware": True, "groups": int(np.unique(groups).size),
            "groups_per_part": [int(np.unique(groups[p]).size) for p in parts]}


class _GroupTable:
    """Spectra per group and class (``counts[g, c]``) and each spectrum's group ``code``."""

    def __init__(self, y: np.ndarray, groups: np.ndarray,
                 classes: Sequence[str] | None = None) -> None:
        self.classes = classes
        groups = np.asarray(groups)
        if groups.shape != y.shape:
            raise PaceEdgeError(f"{groups.size} group ids but {y.size} labels "
                                f"(one group id per spectrum)")
        self.names, self.code = np.unique(groups, return_inverse=True)
        self.labels, label_code = np.unique(y, return_inverse=True)
        self.counts = np.zeros((self.names.size, self.labels.size), dtype=np.int64)
        np.add.at(self.counts, (self.code, label_code), 1)
        self.totals = self.counts.sum(axis=0)

    def holders(self, c: int) -> np.ndarray:
        """Indices of the groups with spectra of class index ``c``."""
        return np.flatnonzero(self.counts[:, c])

    def label(self, c: int) -> object:
        """Class index ``c`` for messages: its name when known, else the label itself."""
        label = self.labels[c].item()
        if self.classes is not None and isinstance(label, int) and 0 <= label < len(self.classes):
            return str(self.classes[label])
        return label

    def name(self, g: int) -> str:
        return str(self.names[g])

    def indices(self, chosen: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Sorted ``(outside, inside)`` spectrum indices for a boolean mask over groups."""
        inside = chosen[self.code]
        return np.flatnonzero(~inside).astype(np.int64), np.flatnonzero(inside).astype(np.int64)


def _group_split(fraction: float, rng: np.random.Generator,
                 table: _GroupTable) -> tuple[np.ndarray, np.ndarray]:
    """Whole groups to validation, greedily matching ``fraction`` of every class.

    Groups are visited in a seeded random order; one joins validation when that brings the
    per-class counts closer to their targets (L1 distance relative to each target) without
    taking a class's last training group. A class still without validation spectra then gets
    the group that disturbs the balance least.
    """
    in_val = np.zeros(table.names.size, dtype=bool)
    if fraction == 0.0:
        return table.indices(in_val)
    for c in range(table.labels.size):
        holders = table.holders(c)
        if holders.size < 2:
            raise PaceEdgeError(
                f"class {table.label(c)!r}: all its {table.totals[c]} spectra come from one "
                f"group ({table.name(holders[0])!r}), so a validation split that keeps groups "
                f"apart cannot hold this class; add spectra of another sample of it"
            )
    target = fraction * table.totals
    val = np.zeros(table.labels.size)

    def cost(v: np.ndarray) -> float:
        return float(np.sum(np.abs(v - target) / target))

    def movable(g: int) -> bool:  # moving g leaves every class some training spectra
        left = table.totals - val - table.counts[g]
        return not np.any((table.counts[g] > 0) & (left <= 0))

    for g in rng.permutation(table.names.size):
        if movable(g) and cost(val + table.counts[g]) < cost(val):
            in_val[g], val = True, val + table.counts[g]
    for c in range(table.labels.size):
        if val[c]:
            continue
        options = [g for g in table.holders(c) if not in_val[g] and movable(g)]
        if not options:
            raise PaceEdgeError(f"class {table.label(c)!r}: no group can go to validation "
                                f"without leaving another class without training spectra")
        g = min(options, key=lambda o: cost(val + table.counts[o]))
        in_val[g], val = True, val + table.counts[g]
    return table.indices(in_val)


def _group_folds(k: int, rng: np.random.Generator,
                 table: _GroupTable) -> list[tuple[np.ndarray, np.ndarray]]:
    """Deal whole groups over ``k`` folds, each to the fold it unbalances least.

    Groups are visited in a seeded random order; a group goes to the fold where the squared
    distance of the per-class counts from ``1/k`` of each class (relative to it) grows least
    (ties: the fold with fewer spectra, then a random one).
    """
    for c in range(table.labels.size):
        if table.holders(c).size < k:
            raise PaceEdgeError(
                f"class {table.label(c)!r} has spectra from {table.holders(c).size} group(s), "
                f"fewer than the {k} folds (each group stays in one fold)"
            )
    target = table.totals / k
    fill = np.zeros((k, table.labels.size))
    fold_of_group = np.empty(table.names.size, dtype=np.int64)
    for g in rng.permutation(table.names.size):
        add = table.counts[g]
        growth = (((fill + add - target) / target) ** 2
                  - ((fill - target) / target) ** 2).sum(axis=1)
        f = int(np.lexsort((rng.random(k), fill.sum(axis=1), np.round(growth, 9)))[0])
        fold_of_group[g] = f
        fill[f] += add
    folds = []
    for f in range(k):
        train_idx, val_idx = table.indices(fold_of_group == f)
        whole = [table.label(c) for c in range(table.labels.size)
                 if fill[f, c] == table.totals[c]]
        if whole:
            raise PaceEdgeError(f"cannot deal the groups into {k} folds: fold {f + 1} would "
                                f"hold every spectrum of class {whole[0]!r}")
        if val_idx.size == 0:
            raise PaceEdgeError(f"cannot deal the groups into {k} non-empty folds")
        folds.append((train_idx, val_idx))
    return folds
