"""Cosmic-ray spike removal (Whitaker & Hayes, 2018), with a narrowness check."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from .steps import Step, as_float, as_int


def jump_scores(x: np.ndarray) -> np.ndarray:
    """Signed modified z-scores ``0.6745 (d - median d) / MAD`` of each row's first
    difference ``d``, shape ``(n, L - 1)``.

    Where the MAD is 0 the scale falls back to ``1.2533 * mean |d - median d|``; rows whose
    differences are all equal score 0.
    """
    d = np.diff(x, axis=1)
    dev = d - np.median(d, axis=1, keepdims=True)
    scale = np.median(np.abs(dev), axis=1, keepdims=True) / 0.6745
    scale = np.where(scale > 0, scale, 1.253314 * np.abs(dev).mean(axis=1, keepdims=True))
    z = np.zeros_like(dev)
    np.divide(dev, scale, out=z, where=scale > 0)
    return z


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """``(start, stop)`` of each run of True in a 1-D mask (stop exclusive)."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True))


def spike_mask(x: np.ndarray, threshold: float, window: int) -> np.ndarray:
    """Boolean ``(n, L)`` mask of spike pixels.

    Both pixels of every difference with ``|z| > threshold`` are candidates. A run of
    adjacent candidates is a spike only if it is at most ``2 * window + 1`` pixels long and
    goes both up and down (or touches an end of the spectrum): the steep flanks of a sharp
    but genuine band are monotonic or wider, and are kept. The run's outer pixels (the
    "feet" before the first and after the last jump) are not part of the spike.
    """
    z = jump_scores(x)
    length = x.shape[1]
    mask = np.zeros(x.shape, dtype=bool)
    for i in np.flatnonzero((np.abs(z) > threshold).any(axis=1)):
        up, down = z[i] > threshold, z[i] < -threshold
        candidate = np.zeros(length, dtype=bool)
        candidate[:-1] |= up | down
        candidate[1:] |= up | down
        for start, stop in _runs(candidate):
            at_end = start == 0 or stop == length
            both = up[start : stop - 1].any() and down[start : stop - 1].any()
            if stop - start <= 2 * window + 1 and (both or at_end):
                mask[i, start + (start > 0) : stop - (stop < length)] = True
    return mask


def _replacement(row: np.ndarray, bad: np.ndarray, j: int, window: int) -> float:
    """Mean of the non-spike pixels within ``window`` of ``j``, else of the nearest ones."""
    lo, hi = max(0, j - window), min(row.size, j + window + 1)
    good = ~bad[lo:hi]
    if good.any():
        return float(row[lo:hi][good].mean())
    left = np.flatnonzero(~bad[:j])
    right = np.flatnonzero(~bad[j + 1 :])
    near = [row[left[-1]]] if left.size else []
    near += [row[j + 1 + right[0]]] if right.size else []
    return float(np.mean(near)) if near else float(row[j])


@dataclass(frozen=True)
class Despike(Step):
    """Replace cosmic-ray spikes by the mean of the nearest non-spike pixels (within
    ``window`` on each side); see :func:`spike_mask`.

    Spectra in which no spike is detected are returned bit-identical.
    """

    name: ClassVar[str] = "despike"
    positional: ClassVar[tuple[str, ...]] = ("threshold", "window")
    threshold: float = 6.0
    window: int = 3

    def __post_init__(self) -> None:
        self._set("threshold", as_float(self, "threshold", self.threshold))
        self._set("window", as_int(self, "window", self.window, minimum=1))
        if self.threshold <= 0:
            raise self._error(f"threshold must be positive, got {self.threshold:g}")

    def apply(self, x: np.ndarray, axis: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mask = spike_mask(x, self.threshold, self.window)
        out = x.copy()
        for i, j in np.argwhere(mask):
            out[i, j] = _replacement(x[i], mask[i], int(j), self.window)
        return out, axis.copy()
