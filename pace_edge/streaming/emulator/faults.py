"""Fault-injection specs: ``"checksum=0.01,truncate=0.01,garbage=0.02,stall=0.005"``.

Grammar: comma-separated ``kind=probability`` items (blanks allowed, each kind at most once);
an empty string or ``none`` means no faults. Probabilities are per frame, in ``[0, 1]``, and
must sum to at most 1: each frame suffers at most one fault, drawn from a seeded generator.

=========== ===============================================================================
kind        what the emulated device does to that frame
=========== ===============================================================================
checksum    OBP: one payload byte flipped under an MD5 checksum; ASCII: one character
            replaced by a non-numeric one
truncate    the frame stops part-way (OBP: no end, ASCII: the line ends early)
garbage     random line noise before the frame (OBP: the frame itself is intact)
stall       the device goes silent: no reply to that request (free-running: no frames for
            ``stall_s`` seconds)
disconnect  the pty pair is closed and re-created ``reconnect_s`` later behind the same path
nan         ASCII only: ``nan`` in place of some values
saturate    every pixel at the ADC full scale
pixels      a frame with a different number of pixels
=========== ===============================================================================
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from ..errors import ConfigError

FAULT_KINDS = (
    "checksum",
    "truncate",
    "garbage",
    "stall",
    "disconnect",
    "nan",
    "saturate",
    "pixels",
)
PROTOCOL_FAULTS = {
    "obp": frozenset(FAULT_KINDS) - {"nan"},
    "ascii": frozenset(FAULT_KINDS),
}


def parse_faults(spec: str | Mapping[str, float] | None) -> dict[str, float]:
    """``{"checksum": 0.01, ...}`` from a spec string (or a mapping, validated the same way)."""
    if spec is None:
        return {}
    if isinstance(spec, Mapping):
        items = [(str(k), v) for k, v in spec.items()]
    else:
        text = spec.strip()
        if text in ("", "none"):
            return {}
        items = []
        for part in text.split(","):
            part = part.strip()
            if not part:
                raise ConfigError(f"fault spec {spec!r}: empty item")
            kind, eq, value = part.partition("=")
            if not eq:
                raise ConfigError(f"fault spec {spec!r}: expected kind=probability, got {part!r}")
            items.append((kind.strip(), value.strip()))
    rates: dict[str, float] = {}
    for kind, value in items:
        if kind not in FAULT_KINDS:
            raise ConfigError(f"unknown fault {kind!r}; choose from {', '.join(FAULT_KINDS)}")
        if kind in rates:
            raise ConfigError(f"fault {kind!r} given twice")
        try:
            p = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"fault {kind!r}: probability {value!r} is not a number") from None
        if not math.isfinite(p) or not 0.0 <= p <= 1.0:
            raise ConfigError(f"fault {kind!r}: probability {value} outside 0..1")
        rates[kind] = p
    total = sum(rates.values())
    if total > 1.0 + 1e-9:
        raise ConfigError(f"fault probabilities sum to {total:g} > 1 (at most one fault per frame)")
    return rates


def format_faults(rates: Mapping[str, float]) -> str:
    """The spec string for ``rates`` (``none`` when empty)."""
    return ",".join(f"{k}={v:g}" for k, v in rates.items() if v) or "none"


def check_protocol(rates: Mapping[str, float], protocol: str) -> None:
    """ConfigError for a fault that the protocol cannot show (``nan`` in binary OBP)."""
    allowed = PROTOCOL_FAULTS[protocol]
    for kind, p in rates.items():
        if p and kind not in allowed:
            raise ConfigError(f"fault {kind!r} does not apply to the {protocol} protocol")


class FaultDraw:
    """Draws at most one fault per frame with the given probabilities (seeded)."""

    def __init__(self, rates: Mapping[str, float], rng: np.random.Generator):
        self.kinds = [k for k in FAULT_KINDS if rates.get(k, 0.0) > 0.0]
        self.edges = np.cumsum([rates[k] for k in self.kinds])
        self.rng = rng

    def draw(self) -> str | None:
        if not self.kinds:
            return None
        i = int(np.searchsorted(self.edges, self.rng.random(), side="right"))
        return self.kinds[i] if i < len(self.kinds) else None
