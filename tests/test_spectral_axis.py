"""Pixel-to-model-axis maths: calibration polynomial, Raman shift, dark, averaging, order."""

from __future__ import annotations

import numpy as np
import pytest

from pace_edge.errors import DataError
from pace_edge.streaming.errors import ConfigError
from pace_edge.streaming.spectral_axis import (
    Averager,
    SpectralAxis,
    raman_shift,
    resample,
    subtract_dark,
    wavelength_from_shift,
    wavelengths_from_coefficients,
)


def test_calibration_polynomial():
    wl = wavelengths_from_coefficients([500.0, 0.5, 1e-4, -1e-8], 4)
    p = np.arange(4.0)
    assert wl == pytest.approx(500 + 0.5 * p + 1e-4 * p**2 - 1e-8 * p**3)
    with pytest.raises(ConfigError):
        wavelengths_from_coefficients([], 10)
    with pytest.raises(ConfigError):
        wavelengths_from_coefficients([1.0, np.nan], 10)


def test_raman_shift_values():
    assert raman_shift(np.array([785.0]), 785.0)[0] == pytest.approx(0.0, abs=1e-9)
    wl_1000 = 1e7 / (1e7 / 785.0 - 1000.0)  # ≈ 851.8 nm
    assert raman_shift(np.array([wl_1000]), 785.0)[0] == pytest.approx(1000.0)
    assert raman_shift(np.array([1000.0]), 785.0)[0] == pytest.approx(12738.853 - 10000, abs=1e-3)
    shifts = np.array([-50.0, 0.0, 520.7, 1600.0])
    assert raman_shift(wavelength_from_shift(shifts, 532.0), 532.0) == pytest.approx(shifts)
    for laser in (0.0, -785.0, np.nan):
        with pytest.raises(ConfigError):
            raman_shift(np.array([800.0]), laser)
    with pytest.raises(ConfigError):
        raman_shift(np.array([0.0, 800.0]), 785.0)


def test_axis_in_increasing_pixel_order_is_kept():
    ax = SpectralAxis.from_coefficients([790.0, 0.2], 1024, laser_nm=785.0)
    counts = np.arange(1024.0)
    intensity, axis = ax.apply(counts)
    assert not ax.reversed and ax.unit == "cm-1"
    assert np.all(np.diff(axis) > 0)
    assert intensity is not counts and np.array_equal(intensity, counts)
    assert axis[0] == pytest.approx(1e7 / 785 - 1e7 / 790)


def test_decreasing_axis_reverses_both_arrays():
    wl = np.linspace(1000.0, 790.0, 6)  # a spectrometer read out red-to-blue
    ax = SpectralAxis(wl, laser_nm=785.0)
    counts = np.array([1.0, 2, 3, 4, 5, 6])
    intensity, axis = ax.apply(counts, dark=1.0)
    assert ax.reversed
    assert np.all(np.diff(axis) > 0)
    assert intensity.tolist() == [5, 4, 3, 2, 1, 0]
    assert axis[-1] == pytest.approx(raman_shift(np.array([1000.0]), 785.0)[0])
    assert np.array_equal(ax.sorted_axis(), axis)
    wl_intensity, wl_axis = SpectralAxis(wl).apply(counts)
    assert wl_axis.tolist() == sorted(wl.tolist()) and wl_intensity[0] == 6


def test_negative_shifts_are_allowed_but_the_axis_must_be_monotonic():
    ax = SpectralAxis(np.linspace(790.0, 1000.0, 50), laser_nm=800.0)
    assert ax.axis[0] < 0 < ax.axis[-1]
    with pytest.raises(ConfigError, match="monotonic"):
        SpectralAxis.from_coefficients([790.0, 1.0, -0.01], 100)  # turns back at pixel 50
    with pytest.raises(ConfigError, match="monotonic"):
        SpectralAxis(np.array([800.0, 801.0, 801.0, 802.0]))
    with pytest.raises(ConfigError):
        SpectralAxis(np.array([-1.0, 1.0, 2.0]))
    with pytest.raises(ConfigError):
        SpectralAxis(np.array([800.0, 801.0]), laser_nm=-5.0)
    with pytest.raises(DataError):
        SpectralAxis(np.array([800.0, 801.0])).apply(np.ones(3))


def test_dark_subtraction():
    counts = np.array([10.0, 20.0, 30.0])
    assert subtract_dark(counts, np.array([1.0, 2.0, 3.0])).tolist() == [9, 18, 27]
    assert subtract_dark(counts, 5.0).tolist() == [5, 15, 25]
    out = subtract_dark(counts, None)
    assert out.tolist() == counts.tolist() and out is not counts
    with pytest.raises(DataError):
        subtract_dark(counts, np.ones(4))


def test_averager_combines_n_frames_then_starts_again():
    avg = Averager(3)
    assert avg.add(np.array([1.0, 2.0])) is None
    assert avg.add(np.array([2.0, 4.0])) is None
    assert avg.add(np.array([3.0, 6.0])).tolist() == [2.0, 4.0]
    assert avg.count == 0
    assert avg.add(np.array([9.0, 9.0])) is None
    with pytest.raises(DataError):
        avg.add(np.ones(3))
    assert Averager(1).add(np.array([7.0])).tolist() == [7.0]
    with pytest.raises(ConfigError):
        Averager(0)


def test_resample_onto_the_model_axis():
    axis = np.array([100.0, 200.0, 300.0])
    values = np.array([0.0, 10.0, 20.0])
    assert resample(values, axis, np.array([150.0, 250.0])).tolist() == [5.0, 15.0]
    with pytest.raises(ConfigError, match="outside"):
        resample(values, axis, np.array([50.0, 150.0]))
    assert resample(values, axis, np.array([50.0]), extrapolate=True).tolist() == [0.0]
    with pytest.raises(ConfigError):
        resample(values, axis[::-1], np.array([150.0]))
