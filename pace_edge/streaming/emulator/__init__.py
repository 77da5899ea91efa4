"""A spectrometer emulator on a pseudo-terminal (OBP or ASCII lines), with fault injection."""

from __future__ import annotations

from .device import EmulatorStats
from .emulator import Emulator, default_coefficients
from .faults import FAULT_KINDS, format_faults, parse_faults
from .sources import DatasetSource, SpectrumSource, SyntheticSource

__all__ = [
    "FAULT_KINDS",
    "DatasetSource",
    "Emulator",
    "EmulatorStats",
    "SpectrumSource",
    "SyntheticSource",
    "default_coefficients",
    "format_faults",
    "parse_faults",
]
