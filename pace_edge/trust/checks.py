"""Physical checks on a raw spectrum, before the model: is there a usable signal at all?

Each is invariant to the detector's gain and offset, so one setting serves every
instrument:

* ``flat``: no variation at all (a constant frame, a dead detector, a zeroed buffer);
* ``saturated``: a run of at least ``clip_run`` pixels sharing the spectrum's maximum, the
  flat top a clipping ADC leaves (streams also refuse frames the device flags as saturated);
* ``low_signal``: the spectrum's spread is below ``snr_min`` times its pixel-to-pixel noise
  (a dark frame, the shutter closed, the laser off). White noise alone scores about 1; the
  noise is estimated robustly from first differences, ``median|Δx| / (0.6745 √2)``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

FLAT = "flat"
SATURATED = "saturated"
LOW_SIGNAL = "low_signal"
MAD_TO_SIGMA = 0.6744897501960817 * np.sqrt(2.0)


@dataclass(frozen=True)
class PhysicalChecks:
    """Thresholds of the physical checks (see the module docstring)."""

    snr_min: float = 3.0
    clip_run: int = 3

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PhysicalChecks:
        return cls(snr_min=float(d.get("snr_min", cls.snr_min)),
                   clip_run=int(d.get("clip_run", cls.clip_run)))

    def signal_to_noise(self, raw: np.ndarray) -> np.ndarray:
        """Standard deviation over pixel noise, per row of ``raw`` ``(n, L)``; ``inf`` for a
        noiseless but varying spectrum, 0 for a constant one."""
        x = np.atleast_2d(np.asarray(raw, dtype=np.float64))
        spread = x.std(axis=1)
        noise = np.median(np.abs(np.diff(x, axis=1)), axis=1) / MAD_TO_SIGMA
        with np.errstate(divide="ignore", invalid="ignore"):
            snr = np.where(noise > 0, spread / np.where(noise > 0, noise, 1.0), np.inf)
        return np.where(spread > 0, snr, 0.0)

    def reasons(self, raw: np.ndarray) -> list[str | None]:
        """The first failed check of each row of ``raw`` (``None``: all passed)."""
        x = np.atleast_2d(np.asarray(raw, dtype=np.float64))
        snr = self.signal_to_noise(x)
        out: list[str | None] = []
        for row, s in zip(x, snr, strict=True):
            if np.ptp(row) <= 1e-12 * max(1.0, float(np.abs(row).max())):
                out.append(FLAT)
            elif _longest_run(row == row.max()) >= self.clip_run:
                out.append(SATURATED)
            elif s < self.snr_min:
                out.append(LOW_SIGNAL)
            else:
                out.append(None)
        return out


def _longest_run(mask: np.ndarray) -> int:
    """Length of the longest run of ``True`` in a 1-D boolean array."""
    if not mask.any():
        return 0
    padded = np.concatenate([[0], mask.astype(np.int8), [0]])
    edges = np.flatnonzero(np.diff(padded))
    return int((edges[1::2] - edges[::2]).max())
