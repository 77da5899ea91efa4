"""Stratified split: sizes per class, determinism, disjoint sorted cover, argument checks."""

from __future__ import annotations

import numpy as np
import pytest

from pace_edge.data import stratified_folds, stratified_split
from pace_edge.errors import PaceEdgeError

Y = np.array([0] * 10 + [1] * 5 + [2] * 2 + [3] * 1)


def test_split_sizes_per_class() -> None:
    train, val = stratified_split(Y, 0.2, seed=0)
    counts = np.bincount(Y[val], minlength=4)
    # round(0.2 * n): 2 of 10, 1 of 5; at least 1 of a 2-item class; a lone item stays in train
    np.testing.assert_array_equal(counts, [2, 1, 1, 0])
    assert set(Y[train]) == {0, 1, 2, 3}


def test_split_is_sorted_disjoint_cover() -> None:
    train, val = stratified_split(Y, 0.5, seed=3)
    assert train.dtype == np.int64 and val.dtype == np.int64
    assert np.all(np.diff(train) > 0) and np.all(np.diff(val) > 0)
    assert not set(train) & set(val)
    np.testing.assert_array_equal(np.sort(np.concatenate([train, val])), np.arange(Y.size))


def test_split_is_deterministic_per_seed() -> None:
    y = np.repeat(np.arange(3), 30)
    a = stratified_split(y, 0.3, seed=7)
    b = stratified_split(y, 0.3, seed=7)
    c = stratified_split(y, 0.3, seed=8)
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[1], c[1])


def test_zero_fraction_keeps_everything_in_train() -> None:
    train, val = stratified_split(Y, 0.0, seed=0)
    assert val.size == 0 and train.size == Y.size


@pytest.mark.parametrize("fraction", [-0.1, 1.0, 1.5, float("nan")])
def test_fraction_out_of_range(fraction: float) -> None:
    with pytest.raises(PaceEdgeError, match=r"fraction must be in \[0, 1\)"):
        stratified_split(Y, fraction, seed=0)


def test_folds_partition_the_data_and_keep_class_proportions() -> None:
    y = np.array([0] * 12 + [1] * 7 + [2] * 5)
    folds = stratified_folds(y, 5, seed=3)
    assert len(folds) == 5
    vals = np.concatenate([v for _, v in folds])
    np.testing.assert_array_equal(np.sort(vals), np.arange(y.size))  # each spectrum once
    for train, val in folds:
        assert np.intersect1d(train, val).size == 0 and train.size + val.size == y.size
        assert list(train) == sorted(train) and list(val) == sorted(val)
        counts = np.bincount(y[val], minlength=3)
        assert counts[0] in (2, 3) and counts[1] in (1, 2) and counts[2] == 1
    again = stratified_folds(y, 5, seed=3)
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(folds, again, strict=True))
    other = stratified_folds(y, 5, seed=4)
    assert not all(np.array_equal(a[1], b[1]) for a, b in zip(folds, other, strict=True))


def test_folds_argument_checks() -> None:
    with pytest.raises(PaceEdgeError, match="at least 2 folds"):
        stratified_folds(Y, 1)
    with pytest.raises(PaceEdgeError, match="has 1 spectra, fewer than the 2 folds"):
        stratified_folds(Y, 2)
