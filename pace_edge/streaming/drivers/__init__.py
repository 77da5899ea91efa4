"""Spectrometer drivers: one module per protocol behind the :class:`Spectrometer` interface."""

from __future__ import annotations

from .ascii_device import AsciiSpectrometer
from .base import DriverStats, RawFrame, Spectrometer
from .obp_device import ObpSpectrometer
from .registry import DRIVERS, open_spectrometer

__all__ = [
    "DRIVERS",
    "AsciiSpectrometer",
    "DriverStats",
    "ObpSpectrometer",
    "RawFrame",
    "Spectrometer",
    "open_spectrometer",
]
