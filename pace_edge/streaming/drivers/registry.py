"""Driver lookup by protocol name."""

from __future__ import annotations

from typing import Any

from ..errors import ConfigError
from .ascii_device import AsciiSpectrometer
from .base import Spectrometer
from .obp_device import ObpSpectrometer

DRIVERS: dict[str, type[Spectrometer]] = {"obp": ObpSpectrometer, "ascii": AsciiSpectrometer}


def open_spectrometer(protocol: str, port: str, **options: Any) -> Spectrometer:
    """An opened driver for ``protocol`` (``obp`` or ``ascii``) on ``port`` (path or URL)."""
    try:
        cls = DRIVERS[protocol]
    except KeyError:
        raise ConfigError(
            f"unknown protocol {protocol!r}; choose one of {', '.join(DRIVERS)}"
        ) from None
    try:
        driver = cls(port, **options)
    except TypeError as exc:  # an option this driver does not take
        raise ConfigError(f"{protocol} driver: {exc}") from exc
    return driver.open()
