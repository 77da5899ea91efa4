"""SYNTHETIC spectra: determinism, realism features (baseline, spikes), learnability."""

from __future__ import annotations

import numpy as np
from scipy.signal import savgol_filter

from pace_edge.data import make_synthetic
from pace_edge.data.synthetic import synthetic_spectrum


def test_shape_classes_and_source() -> None:
    ds = make_synthetic(n_per_class=4, n_classes=3, seed=5)
    assert ds.x.shape == (12, 701) and ds.axis[0] == 400 and ds.axis[-1] == 1800
    assert ds.classes == ["synthetic-A", "synthetic-B", "synthetic-C"]
    assert ds.class_counts() == {"synthetic-A": 4, "synthetic-B": 4, "synthetic-C": 4}
    assert ds.source == "synthetic(seed=5)"


def test_same_seed_same_data_other_seed_differs() -> None:
    a, b = make_synthetic(5, seed=1), make_synthetic(5, seed=1)
    np.testing.assert_array_equal(a.x, b.x)
    np.testing.assert_array_equal(a.y, b.y)
    assert not np.array_equal(a.x, make_synthetic(5, seed=2).x)


def test_counts_are_whole_non_negative_numbers() -> None:
    ds = make_synthetic(3, axis=np.linspace(500, 1500, 200), seed=0, counts=True)
    assert ds.x.shape == (9, 200)
    assert np.all(ds.x == np.rint(ds.x)) and ds.x.min() >= 0


def test_cosmic_ray_is_a_one_or_two_pixel_spike() -> None:
    spiked = synthetic_spectrum(np.random.default_rng(3), 0, spike_probability=1.0)
    clean = synthetic_spectrum(np.random.default_rng(3), 0, spike_probability=0.0)
    hit = np.flatnonzero(spiked != clean)
    assert 1 <= hit.size <= 2 and np.ptp(hit) <= 1
    assert (spiked - clean)[hit].min() >= 1000


def test_dataset_has_occasional_spikes_and_a_large_varying_baseline() -> None:
    ds = make_synthetic(100, seed=0)
    spikes = np.abs(np.diff(ds.x, 2, axis=1)).max(axis=1) > 3000  # bands stay well below
    assert 1 <= spikes.sum() <= 0.12 * len(ds)
    level = np.median(ds.x, axis=1)  # fluorescence + dark offset, under the bands
    bands = np.ptp(savgol_filter(ds.x, 9, 2, axis=1) - savgol_filter(ds.x, 151, 1, axis=1), 1)
    assert np.mean(level > bands) > 0.8
    assert level.std() / level.mean() > 0.2


def preprocess(x: np.ndarray) -> np.ndarray:
    """Baseline removal by smoothed first derivative, then standard normal variate."""
    d = savgol_filter(x, 11, 2, deriv=1, axis=1)
    return (d - d.mean(axis=1, keepdims=True)) / d.std(axis=1, keepdims=True)


def test_classes_are_separable_after_preprocessing() -> None:
    train, test = make_synthetic(40, seed=1), make_synthetic(30, seed=2)
    xtr, xte = preprocess(train.x), preprocess(test.x)
    centroids = np.stack([xtr[train.y == c].mean(axis=0) for c in range(3)])
    pred = np.argmin(((xte[:, None, :] - centroids[None]) ** 2).sum(axis=2), axis=1)
    assert np.mean(pred == test.y) > 0.8
