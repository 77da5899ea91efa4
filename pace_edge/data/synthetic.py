"""SYNTHETIC Raman-like spectra for demos, tests and the spectrometer emulator.

Nothing here is measured data. Each class is a fixed set of Lorentzian bands (shared
biological-looking bands, with class-specific position shifts of a few cm⁻¹ and intensity
ratios). The class definitions depend only on the class index, so spectra streamed one at a
time by :func:`synthetic_spectrum` match a dataset made by :func:`make_synthetic` with any seed.

Each spectrum is simulated as a detector would see it, in counts: band amplitude and position
jitter, a random overall signal level (strongest band about ``peak_counts``), a broad
fluorescence background several times larger than the bands, Poisson shot noise, a dark offset
with Gaussian read noise, and, in about 5 % of spectra, a 1–2 pixel cosmic-ray spike.
"""

from __future__ import annotations

from functools import lru_cache
from string import ascii_uppercase

import numpy as np

from ..errors import PaceEdgeError
from .dataset import SpectralDataset

DEFAULT_AXIS = (400.0, 1800.0, 701)  # np.linspace arguments, cm⁻¹
CLASS_SEED = 0x5EC7  # fixes the class definitions; independent of the data seed

# Shared bands: centre (cm⁻¹), half width at half maximum (cm⁻¹), relative amplitude.
_BANDS = np.array(
    [
        (621, 6, 0.25), (643, 6, 0.30), (720, 8, 0.35), (757, 7, 0.40), (852, 8, 0.45),
        (937, 10, 0.40), (1003, 5, 1.00), (1031, 6, 0.35), (1125, 9, 0.40), (1157, 7, 0.50),
        (1245, 15, 0.45), (1340, 12, 0.55), (1448, 12, 0.80), (1515, 8, 0.45),
        (1555, 10, 0.35), (1605, 8, 0.30), (1655, 15, 0.75),
    ],
    dtype=np.float64,
)  # fmt: skip
_N_SHIFTED, _SHIFT_CM = 3, (1.0, 3.0)  # bands moved per class, by this many cm⁻¹
_N_SCALED, _LOG_RATIO = 3, (0.06, 0.18)  # bands rescaled per class, by exp(± this)


def default_axis() -> np.ndarray:
    """``np.linspace(400, 1800, 701)``: 2 cm⁻¹ steps."""
    return np.linspace(*DEFAULT_AXIS)


def class_name(index: int) -> str:
    """``synthetic-A``, ``synthetic-B``, ... (at most 26 classes)."""
    return f"synthetic-{ascii_uppercase[index]}"


@lru_cache(maxsize=64)
def class_bands(class_index: int) -> np.ndarray:
    """The fixed ``(centre, hwhm, amplitude)`` rows of class ``class_index``'s bands."""
    if not 0 <= class_index < len(ascii_uppercase):
        raise PaceEdgeError(f"synthetic class index must be 0..25, got {class_index}")
    rng = np.random.default_rng([CLASS_SEED, class_index])
    bands = _BANDS.copy()
    n = len(bands)
    shifted = rng.choice(n, _N_SHIFTED, replace=False)
    bands[shifted, 0] += rng.choice([-1.0, 1.0], _N_SHIFTED) * rng.uniform(*_SHIFT_CM, _N_SHIFTED)
    scaled = rng.choice(n, _N_SCALED, replace=False)
    log_ratio = rng.choice([-1.0, 1.0], _N_SCALED) * rng.uniform(*_LOG_RATIO, _N_SCALED)
    bands[scaled, 2] *= np.exp(log_ratio)
    bands.flags.writeable = False
    return bands


def synthetic_spectrum(
    rng: np.random.Generator,
    class_index: int,
    axis: np.ndarray | None = None,
    *,
    peak_counts: float = 2000.0,
    spike_probability: float = 0.05,
    counts: bool = False,
) -> np.ndarray:
    """One SYNTHETIC spectrum of class ``class_index`` on ``axis``, in detector counts.

    ``counts=True`` rounds to whole non-negative counts, as a spectrometer's ADC delivers them;
    otherwise the same values are returned unrounded. Both are float64 arrays.
    """
    axis = default_axis() if axis is None else np.asarray(axis, dtype=np.float64)
    bands = class_bands(class_index)
    signal = peak_counts * np.exp(rng.normal(0.0, 0.2)) * _bands(rng, bands, axis)
    expected = signal + _fluorescence(rng, axis, peak_counts)
    value = rng.poisson(np.maximum(expected, 0.0)).astype(np.float64)
    value += rng.normal(600.0, 20.0) + rng.normal(0.0, 6.0, axis.size)  # dark offset, read noise
    if rng.random() < spike_probability:
        _add_cosmic_ray(rng, value, peak_counts)
    return np.maximum(np.rint(value), 0.0) if counts else value


def _bands(rng: np.random.Generator, bands: np.ndarray, axis: np.ndarray) -> np.ndarray:
    """Sum of Lorentzians with per-spectrum amplitude, position and width jitter."""
    n = len(bands)
    centre = bands[:, 0] + rng.normal(0.0, 0.8) + rng.normal(0.0, 0.4, n)
    hwhm = bands[:, 1] * np.exp(rng.normal(0.0, 0.05, n))
    amp = bands[:, 2] * np.exp(rng.normal(0.0, 0.12, n))
    u = (axis[None, :] - centre[:, None]) / hwhm[:, None]
    return (amp[:, None] / (1.0 + u * u)).sum(axis=0)


def _fluorescence(rng: np.random.Generator, axis: np.ndarray, peak_counts: float) -> np.ndarray:
    """A broad Gaussian hump plus a tilt, 2–6 times the strongest band."""
    centre = rng.uniform(1000.0, 3000.0)
    width = rng.uniform(600.0, 1500.0)
    t = (axis - axis.mean()) / (np.ptp(axis) or 1.0)
    hump = np.exp(-0.5 * ((axis - centre) / width) ** 2)
    tilt = 1.0 + rng.uniform(-0.3, 0.3) * t
    return peak_counts * rng.uniform(2.0, 6.0) * hump / hump.max() * tilt


def _add_cosmic_ray(rng: np.random.Generator, value: np.ndarray, peak_counts: float) -> None:
    width = int(rng.integers(1, 3))
    start = int(rng.integers(0, value.size - width + 1))
    value[start : start + width] += peak_counts * rng.uniform(1.0, 8.0, width)


def make_synthetic(
    n_per_class: int = 100,
    n_classes: int = 3,
    axis: np.ndarray | None = None,
    seed: int = 0,
    counts: bool = False,
) -> SpectralDataset:
    """A seeded, shuffled SYNTHETIC dataset of ``n_per_class`` spectra per class.

    Classes are ``synthetic-A``, ``synthetic-B``, ...; intensities are detector counts (see
    :func:`synthetic_spectrum`); the source reads ``synthetic(seed=...)``.
    """
    if not 2 <= n_classes <= len(ascii_uppercase):
        raise PaceEdgeError(f"n_classes must be 2..26, got {n_classes}")
    if n_per_class < 1:
        raise PaceEdgeError(f"n_per_class must be at least 1, got {n_per_class}")
    axis = default_axis() if axis is None else np.asarray(axis, dtype=np.float64)
    rng = np.random.default_rng(seed)
    y = rng.permutation(np.repeat(np.arange(n_classes), n_per_class))
    x = np.stack([synthetic_spectrum(rng, int(c), axis, counts=counts) for c in y])
    source = f"synthetic(seed={seed})"
    names = [f"{source}: spectrum {i}" for i in range(y.size)]
    classes = [class_name(i) for i in range(n_classes)]
    return SpectralDataset(x, y, axis, classes, source=source, names=names)


def make_grouped_synthetic(
    samples_per_class: int = 10,
    spectra_per_sample: int = 10,
    n_classes: int = 3,
    sample_effect: float = 0.3,
    axis: np.ndarray | None = None,
    seed: int = 0,
    peak_counts: float = 2000.0,
) -> SpectralDataset:
    """SYNTHETIC spectra measured several times per sample, with group ids = sample ids.

    Each sample has its own chemistry and optics: every band's amplitude is scaled by
    ``exp(N(0, sample_effect))``, band positions move by a common few tenths of a cm⁻¹, and the
    fluorescence background and signal level are fixed per sample. Spectra of one sample differ
    only by small amplitude jitter, shot and read noise, as repeated acquisitions on one spot
    do. A model can therefore recognise a sample it has seen from its idiosyncrasies, which is
    what a split that separates a sample's spectra measures. Sample ids read ``s-<seed>-<n>``,
    so data sets made with different seeds share no sample.
    """
    if not 2 <= n_classes <= len(ascii_uppercase):
        raise PaceEdgeError(f"n_classes must be 2..26, got {n_classes}")
    if samples_per_class < 1 or spectra_per_sample < 1:
        raise PaceEdgeError("samples_per_class and spectra_per_sample must be at least 1")
    axis = default_axis() if axis is None else np.asarray(axis, dtype=np.float64)
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.repeat(np.arange(n_classes), samples_per_class))
    x, y, groups = [], [], []
    for s, c in enumerate(labels):
        bands = class_bands(int(c)).copy()
        bands[:, 2] *= np.exp(rng.normal(0.0, sample_effect, len(bands)))
        bands[:, 0] += rng.normal(0.0, 0.5)
        level = peak_counts * np.exp(rng.normal(0.0, 0.2))
        background = _fluorescence(rng, axis, peak_counts)
        dark = rng.normal(600.0, 20.0)
        for _ in range(spectra_per_sample):
            jittered = bands.copy()
            jittered[:, 2] *= np.exp(rng.normal(0.0, 0.03, len(bands)))
            signal = level * np.exp(rng.normal(0.0, 0.05)) * _lorentzians(jittered, axis)
            value = rng.poisson(np.maximum(signal + background, 0.0)).astype(np.float64)
            x.append(value + dark + rng.normal(0.0, 6.0, axis.size))
            y.append(int(c))
            groups.append(f"s-{seed}-{s}")
    order = rng.permutation(len(y))  # a sample's spectra are not stored together
    source = f"synthetic-grouped(seed={seed})"
    names = [f"{source}: spectrum {i}" for i in range(len(y))]
    return SpectralDataset(np.array(x)[order], np.array(y)[order], axis,
                           [class_name(i) for i in range(n_classes)], source=source,
                           names=names, groups=np.array(groups)[order])


def _lorentzians(bands: np.ndarray, axis: np.ndarray) -> np.ndarray:
    """Sum of the Lorentzian rows ``(centre, hwhm, amplitude)`` of ``bands`` on ``axis``."""
    u = (axis[None, :] - bands[:, 0, None]) / bands[:, 1, None]
    return (bands[:, 2, None] / (1.0 + u * u)).sum(axis=0)
