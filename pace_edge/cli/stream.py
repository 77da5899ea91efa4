"""``pace-edge stream``: classify spectra from a spectrometer, one JSON line per spectrum."""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path
from typing import Any

import numpy as np

from . import stream_fleet
from .common import add_allow_failed, positive_int

HELP = "classify spectra from a spectrometer on a serial port, one JSON line each"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("stream", help=HELP, description=HELP + ". A summary (frames received, "
                       "classified, rejected by reason, latency p50/p99/max) goes to stderr "
                       "on exit; Ctrl-C or SIGTERM stop cleanly.")
    p.add_argument("--port", required=True,
                   help="serial device or pyserial URL (e.g. /dev/ttyUSB0, the path printed by "
                        "pace-edge simulate)")
    p.add_argument("--protocol", required=True, choices=("obp", "ascii"),
                   help="obp: Ocean Binary Protocol (STS...); ascii: line-oriented counts")
    p.add_argument("--model", required=True, type=Path,
                   help="export directory (pace-edge export) or model bundle (PyTorch)")
    p.add_argument("--backend", default="auto",
                   help="auto, onnxruntime, openvino, tensorrt or torch (default: auto)")
    p.add_argument("--threads", type=positive_int, default=None, help="inference threads")
    p.add_argument("--trusted-keys", type=Path, default=None, metavar="DIR",
                   help="run only an export signed (pace-edge export --sign) by one of the "
                        "Ed25519 public keys (*.pem) in DIR; refuse unsigned or foreign ones")
    add_allow_failed(p)
    p.add_argument("--baud", type=positive_int, default=None,
                   help="baud rate (default: 9600 for obp, as Ocean STS ships; 115200 for ascii)")
    p.add_argument("--timeout", type=float, default=1.0,
                   help="slack in seconds: a reply may start this long after its wire time "
                        "plus the integration time (x scans), and the line may then fall "
                        "silent at most this long; the rest of a deadline follows from "
                        "--baud, the frame size and --integration-ms (default: 1)")
    p.add_argument("--laser-nm", type=float, default=None,
                   help="excitation wavelength: converts the device's wavelengths to Raman "
                        "shift (cm-1)")
    p.add_argument("--integration-ms", type=float, default=None,
                   help="set the integration time before streaming")
    p.add_argument("--average", type=positive_int, default=1,
                   help="scans to average into one spectrum (default: 1)")
    p.add_argument("--dark", type=Path, default=None,
                   help="dark spectrum to subtract: .npy or text of counts per pixel")
    p.add_argument("--pixels", type=positive_int, default=None,
                   help="pixels per spectrum (default: 1024 for obp, 288 for ascii)")
    p.add_argument("--query", default=None,
                   help="ascii: command that asks for one spectrum, e.g. 'SPEC.READ?' "
                        "(default: free-running)")
    p.add_argument("--wavelength-coeffs", default=None,
                   help="ascii: wavelength polynomial c0,c1,c2,... (nm, λ(p) = Σ cᵢ pⁱ)")
    p.add_argument("--max-count", type=float, default=None,
                   help="ADC full scale, to reject saturated spectra (ascii)")
    p.add_argument("--identify", default=None,
                   help="ascii: command the device answers with one identification line "
                        "(e.g. 'ID?'), checked on every reconnect (obp reads the serial "
                        "number)")
    p.add_argument("--integration-command", default=None,
                   help="ascii: command that sets the integration time, with {us}, {ms} or "
                        "{s} for the value (e.g. 'SPEC.INTEG {us}'; needed by --integration-ms)")
    p.add_argument("--allow-device-change", action="store_true",
                   help="keep streaming when a reconnect finds another device (other serial "
                        "number / identification line); default: stop with the reason")
    p.add_argument("--max-batch", type=positive_int, default=64,
                   help="largest micro-batch when frames queue up (default: 64)")
    p.add_argument("--schedule", choices=("threaded", "inline"), default="threaded",
                   help="threaded (default): a reader thread drains the device while the "
                        "model runs, micro-batching a backlog (throughput); inline: read "
                        "and classify each spectrum on one thread (lowest latency when the "
                        "device is slower than the model; no micro-batching)")
    p.add_argument("--output", default="-", help="JSON-lines file, or - for stdout (default)")
    p.add_argument("--summary-json", type=Path, default=None,
                   help="also write the exit summary as JSON here")
    p.add_argument("--vote", type=positive_int, default=None, metavar="N",
                   help="after every N consecutive accepted spectra (one sample's spectra) "
                        "also write a verdict by majority vote: {\"vote\": class, ...}; "
                        "rejected and refused spectra do not vote, a tie gives null")
    p.add_argument("--max-frames", type=positive_int, default=None,
                   help="stop after this many frames (default: until stopped)")
    stream_fleet.add_arguments(p)
    p.set_defaults(run=run)
    stream_fleet.allow_config(p)  # last: every option above may come from --config


def _driver_options(args: argparse.Namespace) -> dict[str, Any]:
    from ..errors import PaceEdgeError

    options: dict[str, Any] = {"timeout": args.timeout,
                               "allow_device_change": args.allow_device_change}
    if args.baud:
        options["baudrate"] = args.baud
    if args.pixels:
        options["pixels"] = args.pixels
    if args.protocol == "ascii":
        if args.query:
            options["query"] = args.query
        if args.max_count:
            options["max_count"] = args.max_count
        if args.identify:
            options["identify"] = args.identify
        if args.integration_command:
            options["integration_command"] = args.integration_command
        if args.wavelength_coeffs:
            try:
                coeffs = [float(c) for c in args.wavelength_coeffs.split(",")]
            except ValueError:
                raise PaceEdgeError(
                    f"--wavelength-coeffs must be numbers separated by commas, got "
                    f"{args.wavelength_coeffs!r}"
                ) from None
            options["wavelength_coefficients"] = coeffs
    elif (args.query or args.wavelength_coeffs or args.max_count or args.identify
          or args.integration_command):
        raise PaceEdgeError("--query, --wavelength-coeffs, --max-count, --identify and "
                            "--integration-command are for --protocol ascii")
    return options


def _load_dark(path: Path | None) -> np.ndarray | None:
    from ..errors import DataError

    if path is None:
        return None
    try:
        dark = np.load(path, allow_pickle=False) if path.suffix == ".npy" else np.loadtxt(path)
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot read the dark spectrum ({exc})") from None
    dark = np.asarray(dark, dtype=np.float64).ravel()
    if not np.isfinite(dark).all():
        raise DataError(f"{path}: dark spectrum contains NaN or inf")
    return dark


def run(args: argparse.Namespace) -> int:
    from ..runtimes import load_runner
    from ..streaming.drivers import open_spectrometer
    from ..streaming.pipeline import JsonLines, StreamClassifier, StreamConfig
    from ..streaming.vote import Voter

    def log(message: str) -> None:
        print(f"pace-edge stream: {message}", file=sys.stderr, flush=True)

    args = stream_fleet.resolve(args)
    dark = _load_dark(args.dark)
    runner = load_runner(args.model, backend=args.backend, threads=args.threads,
                         trusted_keys=args.trusted_keys, allow_failed=args.allow_failed)
    log(f"backend {runner.name} ({runner.precision}): {runner.reason}")
    runner.warmup()
    out = sys.stdout if args.output == "-" else open(args.output, "a", encoding="utf-8")  # noqa: SIM115
    device = open_spectrometer(args.protocol, args.port, **_driver_options(args))
    try:
        if args.integration_ms is not None:
            device.set_integration_time_us(int(round(args.integration_ms * 1000)))
        config = StreamConfig(laser_nm=args.laser_nm, dark=dark, average=args.average,
                              max_batch=args.max_batch, max_frames=args.max_frames,
                              schedule=args.schedule)
        json_lines, publisher = JsonLines(out), None
        voter = Voter(json_lines, args.vote) if args.vote else None
        write = voter or json_lines

        def emit(record: dict[str, Any]) -> None:
            write(record)
            if publisher is not None:
                publisher.submit(record)

        stream = StreamClassifier(device, runner, config, emit, log)
        publisher = stream_fleet.start_publisher(args, device, runner, stream.stats, log)
        previous = {s: signal.signal(s, lambda *_: stream.stop())
                    for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            log(f"streaming from {args.port} ({args.protocol}, identity "
                f"{device.identity or 'unknown'}, {device.pixels} px, {device.baudrate} baud)")
            stats = stream.run()
            if voter is not None:
                voter.flush()
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)
            if publisher is not None:
                publisher.close()
    finally:
        device.close()
        if out is not sys.stdout:
            out.close()
        runner.close()
    print(stats.summary_text(), file=sys.stderr, flush=True)
    if voter is not None:
        print(voter.summary_text(), file=sys.stderr, flush=True)
    summary = stats.summary()
    if publisher is not None:
        summary["mqtt"] = publisher.state()
        print(stream_fleet.summary_text(summary["mqtt"]), file=sys.stderr, flush=True)
    if args.summary_json:
        args.summary_json.write_text(json.dumps(summary, indent=2) + "\n")
    return 1 if stats.stop_reason else 0
