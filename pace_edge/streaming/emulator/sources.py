"""Where the emulator's spectra come from: the synthetic generator or a data set.

A source is any object with ``next() -> (counts, label)``, giving counts per emulated pixel at
the reference integration time, noise included, and ``dark``: the part of those counts that
does not grow with integration time. The emulator scales, rounds and clips them.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from ...data.dataset import SpectralDataset
from ..errors import ConfigError


class SpectrumSource(Protocol):
    dark: float

    def next(self) -> tuple[np.ndarray, int]: ...


class SyntheticSource:
    """SYNTHETIC Raman-like spectra (:func:`pace_edge.data.synthetic.synthetic_spectrum`)
    on the device's Raman-shift axis; classes drawn uniformly."""

    dark = 600.0  # the generator's dark offset

    def __init__(
        self,
        shift_axis: np.ndarray,
        rng: np.random.Generator,
        *,
        n_classes: int = 3,
        peak_counts: float = 800.0,
        spike_probability: float = 0.05,
    ):
        from ...data.synthetic import synthetic_spectrum

        self._make = synthetic_spectrum
        self.axis = np.asarray(shift_axis, dtype=np.float64)
        self.rng = rng
        self.n_classes = n_classes
        self.peak_counts = peak_counts
        self.spike_probability = spike_probability

    def next(self) -> tuple[np.ndarray, int]:
        label = int(self.rng.integers(self.n_classes))
        counts = self._make(
            self.rng,
            label,
            self.axis,
            peak_counts=self.peak_counts,
            spike_probability=self.spike_probability,
        )
        return counts, label


class DatasetSource:
    """Spectra of a data set (axis in cm⁻¹ Raman shift) as a detector would count them.

    Each spectrum is interpolated onto the device's shift axis (edge values held outside the
    data's range), mapped linearly so the data set's 0.5–99.9 % intensity range spans
    ``signal_fraction`` of ``full_scale``, then given Poisson shot noise, a dark offset and
    Gaussian read noise. Spectra are served in a seeded random order, reshuffled each pass.
    """

    def __init__(
        self,
        dataset: SpectralDataset,
        shift_axis: np.ndarray,
        rng: np.random.Generator,
        *,
        full_scale: float,
        signal_fraction: float = 0.45,
        dark_fraction: float = 0.04,
        read_noise: float = 4.0,
    ):
        self.x = dataset.x
        self.y = dataset.y
        self.data_axis = dataset.axis
        self.axis = np.asarray(shift_axis, dtype=np.float64)
        lo_d, hi_d = float(self.data_axis[0]), float(self.data_axis[-1])
        lo_a, hi_a = float(self.axis.min()), float(self.axis.max())
        if hi_d <= lo_a or lo_d >= hi_a:
            raise ConfigError(
                f"{dataset.source}: axis {lo_d:g}…{hi_d:g} cm⁻¹ does not overlap the emulated "
                f"device's {lo_a:g}…{hi_a:g} cm⁻¹"
            )
        lo, hi = np.percentile(self.x, [0.5, 99.9])
        self.offset = float(lo)
        self.scale = signal_fraction * full_scale / (float(hi - lo) or 1.0)
        self.dark = dark_fraction * full_scale
        self.read_noise = read_noise
        self.rng = rng
        self._order = rng.permutation(len(self.y))
        self._k = 0

    def next(self) -> tuple[np.ndarray, int]:
        if self._k >= self._order.size:
            self._order = self.rng.permutation(len(self.y))
            self._k = 0
        i = int(self._order[self._k])
        self._k += 1
        signal = np.interp(self.axis, self.data_axis, self.x[i])
        signal = np.maximum((signal - self.offset) * self.scale, 0.0)
        counts = self.rng.poisson(signal).astype(np.float64) + self.dark
        counts += self.rng.normal(0.0, self.read_noise, counts.size)
        return counts, int(self.y[i])
