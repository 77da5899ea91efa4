"""Pixels to the model's axis: wavelength calibration, Raman shift, dark frames, averaging.

All numpy. A spectrometer reports counts per pixel; its calibration polynomial gives each
pixel's wavelength ``λ(p) = Σ cᵢ pⁱ`` (nm); for Raman the model's axis is the shift from the
laser line, ``1e7/λ_laser − 1e7/λ`` (cm⁻¹). :class:`SpectralAxis` returns ``(intensity, axis)``
with the axis strictly increasing, reversing both arrays when the device's pixel order runs
the other way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import DataError
from .errors import ConfigError


def wavelengths_from_coefficients(coefficients: Sequence[float], pixels: int) -> np.ndarray:
    """``λ(p) = Σ cᵢ pⁱ`` for ``p = 0 .. pixels-1`` (``coefficients`` from c₀ up)."""
    c = np.asarray(coefficients, dtype=np.float64)
    if c.ndim != 1 or c.size == 0 or not np.isfinite(c).all():
        raise ConfigError(f"wavelength coefficients must be finite numbers, got {coefficients}")
    if pixels < 2:
        raise ConfigError(f"need at least 2 pixels, got {pixels}")
    p = np.arange(pixels, dtype=np.float64)
    return np.polynomial.polynomial.polyval(p, c)


def raman_shift(wavelength_nm: np.ndarray, laser_nm: float) -> np.ndarray:
    """Raman shift (cm⁻¹) of each wavelength from the laser line: ``1e7/laser − 1e7/λ``."""
    if not np.isfinite(laser_nm) or laser_nm <= 0:
        raise ConfigError(f"laser wavelength must be a positive number of nm, got {laser_nm}")
    wl = np.asarray(wavelength_nm, dtype=np.float64)
    if not np.isfinite(wl).all() or (wl <= 0).any():
        raise ConfigError("wavelengths must be finite and positive")
    return 1e7 / laser_nm - 1e7 / wl


def wavelength_from_shift(shift_cm: np.ndarray, laser_nm: float) -> np.ndarray:
    """Inverse of :func:`raman_shift`: the wavelength (nm) at each Raman shift."""
    return 1e7 / (1e7 / laser_nm - np.asarray(shift_cm, dtype=np.float64))


def subtract_dark(counts: np.ndarray, dark: np.ndarray | float | None) -> np.ndarray:
    """``counts − dark`` as float64 (``dark`` a frame of the same length or a scalar)."""
    counts = np.asarray(counts, dtype=np.float64)
    if dark is None:
        return counts.copy()
    dark = np.asarray(dark, dtype=np.float64)
    if dark.ndim and dark.shape != counts.shape:
        raise DataError(f"dark frame has {dark.size} pixels, spectrum has {counts.size}")
    return counts - dark


class Averager:
    """Scans-to-average: :meth:`add` frames; every ``n``-th call returns their mean."""

    def __init__(self, n: int):
        if n < 1:
            raise ConfigError(f"scans to average must be at least 1, got {n}")
        self.n = n
        self._sum: np.ndarray | None = None
        self.count = 0

    def add(self, counts: np.ndarray) -> np.ndarray | None:
        """Add a frame; the mean of the last ``n`` once ``n`` are in, else None."""
        counts = np.asarray(counts, dtype=np.float64)
        if self._sum is None:
            self._sum = counts.copy()
        elif self._sum.shape != counts.shape:
            raise DataError(
                f"cannot average a {counts.size}-pixel frame with {self._sum.size}-pixel ones"
            )
        else:
            self._sum += counts
        self.count += 1
        if self.count < self.n:
            return None
        mean = self._sum / self.n
        self.reset()
        return mean

    def reset(self) -> None:
        self._sum = None
        self.count = 0


@dataclass(frozen=True)
class SpectralAxis:
    """A device's pixel axis: wavelengths (nm), optionally as Raman shift from ``laser_nm``.

    ``axis`` is per pixel in device order (Raman shift in cm⁻¹ when ``laser_nm`` is set, else
    wavelength); :meth:`apply` returns ``(intensity, axis)`` sorted increasing. Negative shifts
    (laser longer than some wavelengths) are allowed; a non-monotonic axis is not.
    """

    wavelengths: np.ndarray
    laser_nm: float | None = None

    def __post_init__(self) -> None:
        wl = np.asarray(self.wavelengths, dtype=np.float64)
        if wl.ndim != 1 or wl.size < 2:
            raise ConfigError(f"need a 1-D wavelength axis of at least 2 pixels, got {wl.shape}")
        if not np.isfinite(wl).all() or (wl <= 0).any():
            raise ConfigError("wavelengths must be finite and positive")
        d = np.diff(wl)
        if not ((d > 0).all() or (d < 0).all()):
            s = np.sign(d)
            j = int(np.flatnonzero((s == 0) | (s != s[0]))[0])
            raise ConfigError(
                f"wavelength axis is not strictly monotonic at pixel {j + 1} "
                f"({wl[j]:g} then {wl[j + 1]:g} nm): check the calibration coefficients"
            )
        object.__setattr__(self, "wavelengths", wl)
        axis = wl.copy() if self.laser_nm is None else raman_shift(wl, self.laser_nm)
        ordered = axis[::-1].copy() if wl[-1] < wl[0] else axis.copy()
        ordered.flags.writeable = False  # shared by every apply(): worked out once
        object.__setattr__(self, "_sorted", ordered)

    @classmethod
    def from_coefficients(
        cls, coefficients: Sequence[float], pixels: int, laser_nm: float | None = None
    ) -> SpectralAxis:
        return cls(wavelengths_from_coefficients(coefficients, pixels), laser_nm)

    @property
    def pixels(self) -> int:
        return int(self.wavelengths.size)

    @property
    def unit(self) -> str:
        return "cm-1" if self.laser_nm is not None else "nm"

    @property
    def axis(self) -> np.ndarray:
        """Per pixel, device order: Raman shift (cm⁻¹) or wavelength (nm)."""
        if self.laser_nm is None:
            return self.wavelengths.copy()
        return raman_shift(self.wavelengths, self.laser_nm)

    @property
    def reversed(self) -> bool:
        """True when the axis decreases with pixel index (outputs are flipped)."""
        return bool(self.wavelengths[-1] < self.wavelengths[0])

    def sorted_axis(self) -> np.ndarray:
        """The axis in increasing order."""
        return self._sorted.copy()

    def apply(
        self, counts: np.ndarray, dark: np.ndarray | float | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(intensity, axis)``: dark-subtracted counts and the increasing axis (read-only,
        the same array for every call)."""
        counts = np.asarray(counts, dtype=np.float64)
        if counts.shape != (self.pixels,):
            raise DataError(f"spectrum has {counts.size} pixels, the axis has {self.pixels}")
        intensity = subtract_dark(counts, dark)
        if self.reversed:
            return intensity[::-1].copy(), self._sorted
        return intensity, self._sorted


def resample(
    intensity: np.ndarray, axis: np.ndarray, target: np.ndarray, *, extrapolate: bool = False
) -> np.ndarray:
    """Linear interpolation of ``intensity`` (on increasing ``axis``) onto ``target``.

    Unless ``extrapolate``, a ``target`` reaching outside ``axis`` is a :class:`ConfigError`
    (the device does not cover the model's range); with it, edge values are held.
    """
    axis = np.asarray(axis, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    if axis.size < 2 or (np.diff(axis) <= 0).any():
        raise ConfigError("source axis must be strictly increasing")
    if not extrapolate and (target.min() < axis[0] or target.max() > axis[-1]):
        raise ConfigError(
            f"target axis {target.min():g}…{target.max():g} reaches outside the device's "
            f"{axis[0]:g}…{axis[-1]:g}"
        )
    return np.interp(target, axis, np.asarray(intensity, dtype=np.float64))
