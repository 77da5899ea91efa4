"""Streaming from a spectrometer next to the model: transport, protocols, drivers, axis maths,
and an emulator that plays a device on a pseudo-terminal.

Layers (as in python-seabreeze): :mod:`.transport` moves bytes over any pyserial port or URL;
:mod:`.protocols` turn bytes into messages and back without doing I/O; :mod:`.drivers` speak a
protocol over a transport and deliver :class:`~.drivers.base.RawFrame` spectra;
:mod:`.spectral_axis` maps pixels to the model's axis. Device-side code: numpy and pyserial only.
"""

from __future__ import annotations

from .errors import (
    ChecksumError,
    ConfigError,
    DeviceChanged,
    DeviceError,
    FrameError,
    LineError,
    NonFiniteValue,
    NonNumericValue,
    PixelCountError,
    ProtocolError,
    StreamError,
    TransportClosed,
    TransportError,
    TransportTimeout,
    TruncatedFrame,
)

__all__ = [
    "ChecksumError",
    "ConfigError",
    "DeviceChanged",
    "DeviceError",
    "FrameError",
    "LineError",
    "NonFiniteValue",
    "NonNumericValue",
    "PixelCountError",
    "ProtocolError",
    "StreamError",
    "TransportClosed",
    "TransportError",
    "TransportTimeout",
    "TruncatedFrame",
]
