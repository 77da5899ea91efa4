"""The fleet side of ``pace-edge stream``: ``--config device.toml`` and ``--mqtt`` publishing.

Kept apart from :mod:`.stream` so the stream command stays one screen: :func:`add_arguments`
adds the options, :func:`allow_config` lets every option of the parser come from the config
file (command-line flags win), :func:`resolve` merges them, :func:`start_publisher` wires a
:class:`~pace_edge.fleet.publisher.MqttPublisher` to a running stream.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import PaceEdgeError
from .common import positive_float

DEFAULTS_KEY = "_config_defaults"
REQUIRED_KEY = "_config_required"
CONVERTERS_KEY = "_config_converters"
OUTBOX_MAX_MB = 64.0
HEALTH_INTERVAL_S = 10.0


def add_arguments(p: argparse.ArgumentParser) -> None:
    """``--config`` and the MQTT / outbox options."""
    p.add_argument("--config", type=Path, default=None,
                   help="TOML file with any of these options as keys (port = '/dev/ttyUSB0', "
                        "laser-nm = 785, mqtt = 'mqtt://broker/lab1', ...); flags given on "
                        "the command line override it")
    g = p.add_argument_group("fleet (MQTT)")
    g.add_argument("--mqtt", default=None, metavar="URL",
                   help="also publish each result (QoS 1) and health to a broker: "
                        "mqtt://[user:pass@]HOST[:PORT]/PREFIX or mqtts://... (TLS); topics "
                        "PREFIX/<device-id>/results|health|status")
    g.add_argument("--mqtt-ca", type=Path, default=None,
                   help="mqtts: CA certificate (PEM) that signed the broker's (default: the "
                        "system's CAs)")
    g.add_argument("--mqtt-cert", type=Path, default=None,
                   help="mqtts: client certificate (PEM), with --mqtt-key")
    g.add_argument("--mqtt-key", type=Path, default=None, help="mqtts: client key (PEM)")
    g.add_argument("--device-id", default=None,
                   help="this device's name in topics (default: the spectrometer's serial "
                        "number)")
    g.add_argument("--health-interval", type=positive_float, default=HEALTH_INTERVAL_S,
                   help=f"seconds between health messages (default: {HEALTH_INTERVAL_S:g})")
    g.add_argument("--outbox", type=Path, default=None,
                   help="directory spooling results until the broker acknowledges them "
                        "(default: $XDG_STATE_HOME or ~/.local/state, "
                        "pace-edge/outbox/<device-id>)")
    g.add_argument("--outbox-max-mb", type=positive_float, default=OUTBOX_MAX_MB,
                   help=f"outbox size limit; when full, new results are not queued for the "
                        f"broker and are counted as dropped (default: {OUTBOX_MAX_MB:g})")


def allow_config(p: argparse.ArgumentParser) -> None:
    """Let every option of ``p`` come from ``--config``: call after the last argument is added.

    Each option's default becomes ``None`` (so a value given on the command line is told apart
    from one left out) and the real defaults, required options and converters are kept for
    :func:`resolve`."""
    defaults: dict[str, Any] = {}
    required: list[str] = []
    converters: dict[str, Callable[[Any], Any]] = {}
    for action in p._actions:
        if not action.option_strings or action.dest in ("help", "config"):
            continue
        defaults[action.dest] = action.default
        action.default = None
        if action.required:
            action.required = False
            required.append(action.dest)
            action.help = f"{action.help} (required, here or in --config)"
        converters[action.dest] = _converter(action)
    p.set_defaults(**{DEFAULTS_KEY: defaults, REQUIRED_KEY: required,
                      CONVERTERS_KEY: converters})


def _converter(action: argparse.Action) -> Callable[[Any], Any]:
    flag = action.option_strings[-1]

    def convert(value: Any) -> Any:
        if action.nargs == 0:  # a switch
            if not isinstance(value, bool):
                raise ValueError(f"expected true or false, got {value!r}")
            return value
        if isinstance(value, bool) or isinstance(value, dict):
            raise ValueError(f"expected a value as {flag} takes, got {value!r}")
        if isinstance(value, list):
            value = ",".join(str(v) for v in value)
        try:
            converted = action.type(str(value)) if action.type else str(value)
        except argparse.ArgumentTypeError as exc:
            raise ValueError(str(exc)) from None
        if action.choices is not None and converted not in action.choices:
            raise ValueError(f"expected one of {', '.join(map(str, action.choices))}, got "
                             f"{converted!r}")
        return converted

    return convert


def resolve(args: argparse.Namespace) -> argparse.Namespace:
    """Command line, then ``--config``, then the defaults; refuse a missing required option."""
    defaults: dict[str, Any] = getattr(args, DEFAULTS_KEY)
    from_file: dict[str, Any] = {}
    if args.config is not None:
        from ..fleet.config import load_options

        from_file = load_options(args.config, getattr(args, CONVERTERS_KEY))
    for dest, default in defaults.items():
        if getattr(args, dest) is None:
            setattr(args, dest, from_file.get(dest, default))
    for dest in getattr(args, REQUIRED_KEY):
        if getattr(args, dest) is None:
            raise PaceEdgeError(f"--{dest.replace('_', '-')} is required (on the command line "
                                "or in --config)")
    return args


def default_outbox(device_id: str) -> Path:
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "pace-edge" / "outbox" / device_id


def start_publisher(args: argparse.Namespace, device, runner, stats,
                    log: Callable[[str], None]):
    """Connect to ``--mqtt`` and start publishing; ``None`` without ``--mqtt``."""
    from ..fleet.client import TlsFiles
    from ..fleet.errors import FleetError
    from ..fleet.health import DeviceIdentity, HealthReporter, model_sha256
    from ..fleet.mqtt_url import parse_broker_url
    from ..fleet.process import PublisherProcess, PublisherSettings

    tls_given = any(getattr(args, k) is not None for k in ("mqtt_ca", "mqtt_cert", "mqtt_key"))
    if args.mqtt is None:
        if tls_given or args.device_id is not None or args.outbox is not None:
            raise FleetError("--mqtt-ca/--mqtt-cert/--mqtt-key/--device-id/--outbox need --mqtt")
        return None
    address = parse_broker_url(args.mqtt)
    device_id = args.device_id or device.serial_number
    if not device_id:
        raise FleetError("the spectrometer reports no serial number: give --device-id")
    identity = DeviceIdentity(
        device_id=device_id, serial=device.serial_number, model=str(args.model),
        model_sha256=model_sha256(args.model), preprocessing=runner.pipeline.to_list(),
        backend=runner.name, precision=runner.precision, stream_start=time.time(),
    )
    settings = PublisherSettings(
        address=address, device_id=device_id, outbox=args.outbox or default_outbox(device_id),
        outbox_max_bytes=int(args.outbox_max_mb * 1024 * 1024), stamp=identity.stamp(),
        tls=TlsFiles(args.mqtt_ca, args.mqtt_cert, args.mqtt_key))
    reporter = HealthReporter(identity, stats)
    publisher = PublisherProcess(settings, health=reporter.report,
                                 health_interval=args.health_interval).start()
    log(f"publishing to {address.redacted()} as {device_id} (outbox {settings.outbox})")
    return publisher


def summary_text(state: dict[str, Any]) -> str:
    box = state.get("outbox") or {}
    dropped = box.get("dropped", 0) + state.get("queue_dropped", 0)
    return (f"mqtt: published {state.get('published', 0)}, acknowledged "
            f"{state.get('acked', 0)}, outbox pending {box.get('pending', '?')}, dropped "
            f"{dropped}, {box.get('fsyncs', 0)} fsyncs ({box.get('fsync_s', 0) * 1e3:.1f} ms)")
