"""A folder of single-spectrum files, one sub-folder per class.

::

    data/
      Healthy/   a.txt  b.txt ...
      COVID-19/  c.csv  d.txt ...

or, with several spectra per sample (or patient), one sub-sub-folder per sample::

    data/
      Healthy/   patient-01/ a.txt b.txt   patient-02/ c.txt ...
      COVID-19/  patient-07/ d.txt ...

The sample folders become group ids (``Healthy/patient-01``), so that no split separates a
sample's spectra. A class folder holds either spectrum files or sample folders, not both.
Each file is read by :func:`~pace_edge.data.spectrum_file.read_spectrum_file` (two-column text,
or a two-column ``.npy``); files with other suffixes, hidden files and files directly in the
top folder are ignored. Classes are the sub-folder names, sorted. Every spectrum is resampled
(linear interpolation) onto one common axis: ``axis`` if given, else the range all files cover,
with as many evenly spaced points as the median file has inside that range.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import DataError
from .dataset import SpectralDataset, check_axis
from .spectrum_file import is_spectrum_file, read_spectrum_file

Spectrum = tuple[Path, np.ndarray, np.ndarray]


def load_text_folder(path: str | Path, axis: np.ndarray | None = None) -> SpectralDataset:
    """Load a class-per-sub-folder spectrum folder, resampled onto a common axis."""
    path = Path(path)
    if not path.is_dir():
        raise DataError(f"{path}: not a directory (expected one sub-folder per class)")
    class_dirs = class_folders(path)
    if len(class_dirs) < 2:
        raise DataError(
            f"{path}: found {len(class_dirs)} class sub-folder(s); need at least 2 "
            f"(one sub-folder of spectrum files per class)"
        )
    spectra: list[Spectrum] = []
    labels: list[int] = []
    groups: list[str] = []
    found = [_class_files(folder) for folder in class_dirs]
    grouped = [any(g is not None for _, g in files) for files in found]
    if any(grouped) and not all(grouped):
        flat = class_dirs[grouped.index(False)]
        raise DataError(f"{flat}: spectrum files directly in the class folder, but other classes "
                        f"hold sample sub-folders ({class_dirs[grouped.index(True)]}); use "
                        f"sample sub-folders in every class or in none")
    for label, (folder, files) in enumerate(zip(class_dirs, found, strict=True)):
        for file, group in files:
            spectra.append(_read_with_axis(file))
            labels.append(label)
            groups.append(f"{folder.name}/{group}")
    grid = _common_axis(spectra, path) if axis is None else _given_axis(axis, path)
    x = np.stack([_resample(s, grid) for s in spectra])
    return SpectralDataset(
        x,
        np.array(labels),
        grid,
        [d.name for d in class_dirs],
        source=str(path),
        names=[str(f) for f, _, _ in spectra],
        groups=np.array(groups, dtype=str) if all(grouped) else None,
    )


def _class_files(folder: Path) -> list[tuple[Path, str | None]]:
    """A class folder's spectrum files with their sample sub-folder's name (``None`` if flat)."""
    entries = _listdir(folder)
    files = [(f, None) for f in entries if f.is_file() and is_spectrum_file(f)]
    samples = [d for d in entries if d.is_dir() and not d.name.startswith(".")]
    if files and samples:
        raise DataError(f"{folder}: holds both spectrum files ({files[0][0].name}) and sample "
                        f"sub-folders ({samples[0].name}); use one or the other")
    for sample in samples:
        inside = [(f, sample.name) for f in _listdir(sample) if f.is_file() and is_spectrum_file(f)]
        if not inside:
            raise DataError(f"{sample}: sample folder without spectrum files "
                            f"(.txt, .csv, .tsv, .dat, .npy)")
        files.extend(inside)
    if not files:
        raise DataError(f"{folder}: no spectrum files (.txt, .csv, .tsv, .dat, .npy)")
    return files


def class_folders(path: Path) -> list[Path]:
    """The non-hidden sub-folders of ``path``, sorted by name."""
    return [d for d in _listdir(path) if d.is_dir() and not d.name.startswith(".")]


def _listdir(folder: Path) -> list[Path]:
    try:
        return sorted(folder.iterdir())
    except OSError as exc:
        raise DataError(f"{folder}: cannot list folder ({exc.strerror or exc})") from None


def _read_with_axis(file: Path) -> Spectrum:
    x, y = read_spectrum_file(file)
    if x is None:
        raise DataError(f"{file}: intensities only, no x values (need two columns: x, intensity)")
    return file, x, y


def _given_axis(axis: np.ndarray, path: Path) -> np.ndarray:
    grid = np.asarray(axis, dtype=np.float64)
    if grid.ndim != 1 or grid.size < 2:
        raise DataError(f"{path}: the requested axis must be 1-D with at least 2 points")
    check_axis(grid, grid.size, "requested axis")
    return grid


def _common_axis(spectra: list[Spectrum], path: Path) -> np.ndarray:
    lo_file, lo_x, _ = max(spectra, key=lambda s: s[1][0])
    hi_file, hi_x, _ = min(spectra, key=lambda s: s[1][-1])
    lo, hi = lo_x[0], hi_x[-1]
    if lo >= hi:
        raise DataError(
            f"{path}: spectra share no common x range ({lo_file} starts at {lo:g}, "
            f"{hi_file} ends at {hi:g})"
        )
    inside = [int(np.count_nonzero((x >= lo) & (x <= hi))) for _, x, _ in spectra]
    return np.linspace(lo, hi, max(int(np.median(inside)), 2))


def _resample(spectrum: Spectrum, grid: np.ndarray) -> np.ndarray:
    file, x, y = spectrum
    tol = 1e-9 * max(abs(grid[0]), abs(grid[-1]), 1.0)
    if x[0] > grid[0] + tol or x[-1] < grid[-1] - tol:
        raise DataError(
            f"{file}: covers x {x[0]:g}..{x[-1]:g}, not the common axis {grid[0]:g}..{grid[-1]:g}"
        )
    return np.interp(grid, x, y)
