"""The in-memory labelled spectra every loader returns and every later stage consumes."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from ..errors import DataError
from .groups import check_group_count, group_ids


@dataclass
class SpectralDataset:
    """Labelled spectra on one common axis.

    ``x``: ``(n, length)`` float64 intensities; ``y``: ``(n,)`` int64 class indices into
    ``classes``; ``axis``: ``(length,)`` strictly increasing wavenumbers (cm⁻¹) or wavelengths.
    ``groups``: optional ``(n,)`` string ids of the sample (or patient) each spectrum was
    measured on; every split made from the data keeps a group on one side
    (:mod:`pace_edge.data.groups`).
    """

    x: np.ndarray
    y: np.ndarray
    axis: np.ndarray
    classes: list[str]
    source: str = "<memory>"
    names: list[str] = field(default_factory=list)  # optional per-spectrum origin (file/row)
    groups: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.x = np.asarray(self.x, dtype=np.float64)
        self.y = np.asarray(self.y, dtype=np.int64)
        self.axis = np.asarray(self.axis, dtype=np.float64)
        self.classes = [str(c) for c in self.classes]
        if self.groups is not None:
            self.groups = group_ids(self.groups, self.source)
        self.validate()

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def where(self, i: int) -> str:
        """Human description of spectrum ``i``'s origin, for error messages."""
        return self.names[i] if i < len(self.names) else f"{self.source}: row {i}"

    def validate(self) -> None:
        """Raise :class:`DataError` naming the first problem found."""
        src = self.source
        if self.x.ndim != 2:
            raise DataError(f"{src}: spectra must be a 2-D array (n, length), got {self.x.shape}")
        n, length = self.x.shape
        if n == 0:
            raise DataError(f"{src}: no spectra")
        if self.y.shape != (n,):
            raise DataError(f"{src}: {n} spectra but {self.y.size} labels")
        check_axis(self.axis, length, src)
        bad = ~np.isfinite(self.x)
        if bad.any():
            i, j = np.argwhere(bad)[0]
            raise DataError(
                f"{self.where(int(i))}: non-finite intensity {self.x[i, j]} at x={self.axis[j]:g}"
            )
        if len(self.classes) < 2:
            raise DataError(f"{src}: need at least 2 classes, got {len(self.classes)}")
        if self.y.min() < 0 or self.y.max() >= len(self.classes):
            i = int(np.flatnonzero((self.y < 0) | (self.y >= len(self.classes)))[0])
            raise DataError(
                f"{self.where(i)}: label {self.y[i]} outside 0..{len(self.classes) - 1}"
            )
        if self.groups is not None:
            check_group_count(self.groups, n, src, src)

    @property
    def n_groups(self) -> int:
        """How many distinct groups (samples) the spectra come from; 0 without group ids."""
        return 0 if self.groups is None else int(np.unique(self.groups).size)

    def with_groups(self, groups: np.ndarray | None, source: str) -> SpectralDataset:
        """A copy whose group ids are ``groups`` (read from ``source``, named in errors)."""
        if groups is not None:
            groups = group_ids(groups, source)
            check_group_count(groups, len(self), source, self.source)
        return replace(self, groups=groups)

    def class_counts(self) -> dict[str, int]:
        counts = np.bincount(self.y, minlength=len(self.classes))
        return {c: int(k) for c, k in zip(self.classes, counts, strict=True)}

    def subset(self, index: np.ndarray) -> SpectralDataset:
        """The spectra at ``index`` (same axis and classes)."""
        index = np.asarray(index)
        names = [self.names[i] for i in index] if self.names else []
        groups = None if self.groups is None else self.groups[index]
        return SpectralDataset(
            self.x[index], self.y[index], self.axis, self.classes, self.source, names, groups
        )


def check_axis(axis: np.ndarray, length: int, source: str) -> None:
    """Raise :class:`DataError` unless ``axis`` is a finite, strictly increasing ``length`` axis."""
    if axis.ndim != 1 or axis.size != length:
        raise DataError(f"{source}: axis has {axis.size} points but spectra have {length}")
    if not np.isfinite(axis).all():
        raise DataError(f"{source}: axis contains NaN or inf")
    d = np.diff(axis)
    if (d == 0).any():
        j = int(np.flatnonzero(d == 0)[0])
        raise DataError(f"{source}: duplicated axis value {axis[j]:g} at points {j} and {j + 1}")
    if (d < 0).any():
        j = int(np.flatnonzero(d < 0)[0])
        raise DataError(
            f"{source}: axis is not monotonic increasing at point {j + 1} "
            f"({axis[j]:g} then {axis[j + 1]:g})"
        )
