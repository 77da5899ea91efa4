"""``pace-edge fleet``: a live table of the devices publishing under an MQTT prefix."""

from __future__ import annotations

import argparse
import json
import os
import queue
import signal
import sys
import threading
import time
from pathlib import Path

from .common import positive_float

HELP = "live table of the devices streaming to an MQTT broker (pace-edge stream --mqtt)"
CLEAR = "\x1b[H\x1b[2J"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("fleet", help=HELP, description=HELP + ": online, last seen, spectra/s, "
                       "results, class counts, accept rate, p99 latency and model per device. "
                       "Results are counted once however often they are delivered.")
    p.add_argument("--mqtt", required=True, metavar="URL",
                   help="mqtt://[user:pass@]HOST[:PORT]/PREFIX or mqtts://... (the devices' "
                        "--mqtt)")
    p.add_argument("--mqtt-ca", type=Path, default=None, help="mqtts: CA certificate (PEM)")
    p.add_argument("--mqtt-cert", type=Path, default=None, help="mqtts: client certificate")
    p.add_argument("--mqtt-key", type=Path, default=None, help="mqtts: client key")
    p.add_argument("--json", action="store_true",
                   help="one JSON line per refresh ({time, devices: [...]}) instead of a table")
    p.add_argument("--record", type=Path, default=None,
                   help="append every result (first delivery only) to this JSON-lines file")
    p.add_argument("--interval", type=positive_float, default=1.0,
                   help="seconds between refreshes (default: 1)")
    p.add_argument("--duration", type=positive_float, default=None,
                   help="stop after this many seconds (default: until Ctrl-C / SIGTERM)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..fleet.client import TlsFiles, connect_async, make_client
    from ..fleet.errors import FleetError
    from ..fleet.mqtt_url import parse_broker_url
    from ..fleet.view import FleetView, render_table

    address = parse_broker_url(args.mqtt)
    view = FleetView(address.prefix)
    inbox: queue.Queue[tuple[str, object]] = queue.Queue()
    client = make_client(address, f"pace-edge-fleet-{os.getpid()}",
                         TlsFiles(args.mqtt_ca, args.mqtt_cert, args.mqtt_key))

    def on_connect(client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            inbox.put(("refused", str(reason_code)))
            return
        client.subscribe([(address.topic("+", leaf), 1)
                          for leaf in ("results", "health", "status")])
        inbox.put(("log", f"connected to {address.redacted()}"))

    client.on_connect = on_connect
    client.on_message = lambda c, u, m: inbox.put(("message", (m.topic, m.payload)))
    record = None if args.record is None else open(args.record, "a", encoding="utf-8")  # noqa: SIM115
    stop = threading.Event()
    previous = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGINT, signal.SIGTERM)}
    tty = sys.stdout.isatty() and not args.json
    end = None if args.duration is None else time.monotonic() + args.duration
    try:
        connect_async(client, address)
        next_refresh = time.monotonic()
        while not stop.is_set():
            now = time.monotonic()
            if end is not None and now >= end:
                break
            try:
                kind, value = inbox.get(timeout=max(0.0, min(next_refresh - now, 0.2)))
            except queue.Empty:
                kind, value = "", None
            if kind == "message":
                topic, payload = value  # type: ignore[misc]
                result = view.handle(topic, payload)
                if result is not None and record is not None:
                    record.write(json.dumps(result, separators=(",", ":")) + "\n")
                    record.flush()
            elif kind == "refused":
                raise FleetError(f"the broker {address.redacted()} refused the connection: "
                                 f"{value}")
            elif kind == "log":
                print(f"pace-edge fleet: {value}", file=sys.stderr, flush=True)
            if time.monotonic() >= next_refresh:
                _show(view.rows(), args.json, tty, render_table)
                next_refresh = time.monotonic() + args.interval
        _show(view.rows(), args.json, tty, render_table)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        client.disconnect()
        client.loop_stop()
        if record is not None:
            record.close()
    return 0


def _show(rows, as_json: bool, tty: bool, render) -> None:
    if as_json:
        print(json.dumps({"time": time.time(), "devices": rows}, separators=(",", ":")),
              flush=True)
    elif tty:
        print(CLEAR + render(rows), flush=True)
    else:
        print(render(rows) + "\n", flush=True)
