"""The fleet's user error: a bad address, option, config file or outbox, reported as one line."""

from __future__ import annotations

from ..errors import PaceEdgeError


class FleetError(PaceEdgeError):
    """A fleet (MQTT, outbox, config) problem caused by the user's input or environment."""
