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


# --- group-aware splits: whole samples on one side ------------------------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


def grouped_labels(n_groups: int = 40, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Three classes, ``n_groups`` samples of 3-30 spectra, each sample of one class."""
    rng = np.random.default_rng(seed)
    label_of = np.arange(n_groups) % 3
    sizes = rng.integers(3, 31, n_groups)
    order = rng.permutation(int(sizes.sum()))  # spectra of a sample are not contiguous
    y = np.repeat(label_of, sizes)[order]
    groups = np.repeat([f"s{g:02d}" for g in range(n_groups)], sizes)[order]
    return y, groups


def test_group_split_keeps_groups_apart_and_classes_balanced() -> None:
    y, groups = grouped_labels()
    train, val = stratified_split(y, 0.2, seed=0, groups=groups)
    assert not set(groups[train]) & set(groups[val])
    np.testing.assert_array_equal(np.sort(np.concatenate([train, val])), np.arange(y.size))
    assert np.all(np.diff(train) > 0) and np.all(np.diff(val) > 0)
    share = np.bincount(y[val], minlength=3) / np.bincount(y)
    assert np.all(np.abs(share - 0.2) < 0.06), share  # whole samples: close, not exact
    again = stratified_split(y, 0.2, seed=0, groups=groups)
    other = stratified_split(y, 0.2, seed=1, groups=groups)
    np.testing.assert_array_equal(val, again[1])
    assert not np.array_equal(val, other[1])


def test_without_groups_the_split_is_unchanged() -> None:
    y, _ = grouped_labels()
    a = stratified_split(y, 0.2, seed=3)
    b = stratified_split(y, 0.2, seed=3, groups=None)
    np.testing.assert_array_equal(a[1], b[1])


def test_group_split_refuses_a_class_from_one_sample() -> None:
    y = np.array([0, 0, 0, 1, 1, 1, 1])
    groups = np.array(["a", "a", "b", "c", "c", "c", "c"])
    with pytest.raises(PaceEdgeError, match=r"class 1: all its 4 spectra come from one group "
                                            r"\('c'\)"):
        stratified_split(y, 0.2, groups=groups)
    with pytest.raises(PaceEdgeError, match=r"class 'Sick': all its 4 spectra"):
        stratified_split(y, 0.2, groups=groups, classes=["Healthy", "Sick"])
    train, val = stratified_split(y, 0.0, groups=groups)  # no validation wanted: fine
    assert val.size == 0 and train.size == y.size
    with pytest.raises(PaceEdgeError, match="3 group ids but 7 labels"):
        stratified_split(y, 0.2, groups=groups[:3])


@settings(max_examples=150, deadline=None)
@given(
    labels=st.lists(st.integers(0, 3), min_size=2, max_size=60),
    group_count=st.integers(1, 15),
    mixed=st.booleans(),
    fraction=st.floats(0.05, 0.6),
    seed=st.integers(0, 2**16),
    data=st.data(),
)
def test_group_split_property(labels: list[int], group_count: int, mixed: bool,
                              fraction: float, seed: int, data: st.DataObject) -> None:
    """Whatever the labels and groups: no group on both sides, or a clear error."""
    y = np.array(labels)
    if mixed:  # groups may hold several classes
        groups = np.array(data.draw(st.lists(st.integers(0, group_count - 1),
                                             min_size=y.size, max_size=y.size)))
    else:  # each group one class: group = (class, sub-id)
        sub = data.draw(st.lists(st.integers(0, group_count - 1), min_size=y.size,
                                 max_size=y.size))
        groups = np.array([f"{c}-{s}" for c, s in zip(y, sub, strict=True)])
    try:
        train, val = stratified_split(y, fraction, seed, groups=groups)
    except PaceEdgeError as exc:  # only when some class lives in a single group
        assert "come from one group" in str(exc) or "no group can go" in str(exc)
        return
    assert not set(groups[train]) & set(groups[val])
    np.testing.assert_array_equal(np.sort(np.concatenate([train, val])), np.arange(y.size))
    assert set(y[train]) == set(y)  # every class keeps training spectra
    assert set(y[val]) == set(y)  # and has validation spectra


def test_group_folds_keep_groups_apart() -> None:
    y, groups = grouped_labels(n_groups=30, seed=2)
    folds = stratified_folds(y, 5, seed=0, groups=groups)
    vals = np.concatenate([v for _, v in folds])
    np.testing.assert_array_equal(np.sort(vals), np.arange(y.size))  # each spectrum once
    for train, val in folds:
        assert not set(groups[train]) & set(groups[val])
        assert set(y[val]) == {0, 1, 2} and set(y[train]) == {0, 1, 2}
    # every group validates in exactly one fold
    fold_sets = [set(groups[v]) for _, v in folds]
    assert sum(len(s) for s in fold_sets) == len(set(groups))
    again = stratified_folds(y, 5, seed=0, groups=groups)
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(folds, again, strict=True))


def test_group_folds_need_k_groups_per_class() -> None:
    y = np.array([0] * 6 + [1] * 6)
    groups = np.array(["a", "a", "b", "b", "c", "c", "d", "d", "d", "e", "e", "e"])
    with pytest.raises(PaceEdgeError, match=r"class 1 has spectra from 2 group\(s\), fewer "
                                            r"than the 3 folds"):
        stratified_folds(y, 3, groups=groups)
    assert len(stratified_folds(y, 2, groups=groups)) == 2


@settings(max_examples=100, deadline=None)
@given(labels=st.lists(st.integers(0, 2), min_size=4, max_size=60),
       group_count=st.integers(1, 12), k=st.integers(2, 5), seed=st.integers(0, 2**16),
       data=st.data())
def test_group_folds_property(labels: list[int], group_count: int, k: int, seed: int,
                              data: st.DataObject) -> None:
    y = np.array(labels)
    groups = np.array(data.draw(st.lists(st.integers(0, group_count - 1), min_size=y.size,
                                         max_size=y.size)))
    try:
        folds = stratified_folds(y, k, seed, groups=groups)
    except PaceEdgeError as exc:
        assert "group" in str(exc) or "fold" in str(exc)
        return
    vals = np.concatenate([v for _, v in folds])
    np.testing.assert_array_equal(np.sort(vals), np.arange(y.size))
    for train, val in folds:
        assert val.size and not set(groups[train]) & set(groups[val])
        assert set(y[train]) == set(y)
