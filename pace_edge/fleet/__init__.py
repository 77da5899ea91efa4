"""Fleets of instruments over MQTT: results and health from each stream to a broker, an on-disk
outbox so nothing is lost while the broker or network is away, a live fleet view, and one
config file per device.

Modules: :mod:`.mqtt_url` (the ``mqtt://`` / ``mqtts://`` address), :mod:`.client` (a
configured paho-mqtt client), :mod:`.outbox` (the append-only, fsync'd spool),
:mod:`.publisher` (off the classification path: outbox → broker, acknowledged removal),
:mod:`.health` (what a device reports about itself), :mod:`.view` (the fleet table) and
:mod:`.config` (``device.toml``). paho-mqtt is imported only when a client is made.
"""

from __future__ import annotations

from .errors import FleetError

__all__ = ["FleetError"]
