"""``pace-edge simulate``: play a spectrometer on a pseudo-terminal for drivers and pipelines.

Prints the device path to open (one line), and on stderr the ``pace-edge stream`` command that
talks to it; serves spectra until SIGINT/SIGTERM or ``--duration``, then prints a one-line
summary of what it served (``served N frames ...``: the count a client that read everything has
received).
"""

from __future__ import annotations

import argparse
import shlex
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType

from ..errors import PaceEdgeError
from .common import positive_float, positive_int

HELP = "emulate a spectrometer (OBP or ASCII lines) on a pseudo-terminal, with fault injection"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("simulate", help=HELP, description=HELP + ".")
    p.add_argument("--protocol", choices=("obp", "ascii"), required=True,
                   help="obp: Ocean Binary Protocol (STS-like); ascii: one text line per "
                        "spectrum (Arduino + Hamamatsu C12880MA-like)")
    p.add_argument("--dataset", type=Path,
                   help="serve this data set's spectra (axis in cm⁻¹ Raman shift) instead of "
                        "SYNTHETIC ones")
    p.add_argument("--split", default="all",
                   help="part of an npy dataset folder: train, test or all (default: all)")
    p.add_argument("--rate", type=positive_float,
                   help="spectra per second: the free-running rate (ascii, default 10) or the "
                        "most the device answers (default: as fast as asked)")
    p.add_argument("--faults", default="none",
                   help="fault probabilities per frame, e.g. "
                        "'checksum=0.01,truncate=0.01,garbage=0.02,stall=0.005,disconnect=0.001,"
                        "nan=0.01,saturate=0.01,pixels=0.01' (default: none)")
    p.add_argument("--pixels", type=positive_int,
                   help="pixels per spectrum (default: 1024 obp, 288 ascii)")
    p.add_argument("--seed", type=int, default=0, help="seed for spectra and faults (default: 0)")
    p.add_argument("--baud", type=positive_int,
                   help="behave like the wire at this baud rate: bytes trickle out as a UART "
                        "sends them (10 bits a byte, 8N1) and a spectrum request is answered "
                        "only after the integration time (default: pty speed, at once)")
    p.add_argument("--integration-ms", type=positive_float, default=100.0,
                   help="the device's integration time until a client sets one (default: 100)")
    p.add_argument("--serial", default=None,
                   help="serial number the device reports (OBP 'get serial', ASCII 'ID?'; "
                        "default: EMU-STS-0001 / EMU-C12880-0001)")
    p.add_argument("--duration", type=positive_float,
                   help="stop after this many seconds (default: until Ctrl-C / SIGTERM)")
    p.add_argument("--query", default=None,
                   help="ascii: answer this command (e.g. SPEC.READ?) instead of free-running")
    p.add_argument("--checksum", choices=("md5", "none"), default="md5",
                   help="obp: checksum of the device's replies (default: md5)")
    p.add_argument("--link", type=Path,
                   help="path of the device symlink (default: a fresh temporary directory)")
    p.set_defaults(run=run)


def check_faults(spec: str, protocol: str) -> None:
    """Refuse a fault the protocol cannot show, listing the ones it can."""
    from ..streaming.emulator import FAULT_KINDS, parse_faults
    from ..streaming.emulator.faults import PROTOCOL_FAULTS

    allowed = [k for k in FAULT_KINDS if k in PROTOCOL_FAULTS[protocol]]
    wrong = [k for k, p in parse_faults(spec).items() if p and k not in PROTOCOL_FAULTS[protocol]]
    if wrong:
        raise PaceEdgeError(f"fault {', '.join(map(repr, wrong))} does not apply to the "
                            f"{protocol} protocol; its faults are {', '.join(allowed)}")


def stream_command(args: argparse.Namespace, port: str, coefficients: list[float],
                   pixels: int, laser_nm: float, max_count: float) -> str:
    """The ``pace-edge stream`` command line that reads this emulator (the model left to fill)."""
    argv = ["pace-edge", "stream", "--port", port, "--protocol", args.protocol,
            "--laser-nm", f"{laser_nm:g}"]
    if args.baud:
        argv += ["--baud", str(args.baud)]
    default_pixels = 1024 if args.protocol == "obp" else 288
    if pixels != default_pixels:
        argv += ["--pixels", str(pixels)]
    if args.protocol == "ascii":  # an ASCII device cannot report its calibration
        argv += ["--wavelength-coeffs", ",".join(repr(c) for c in coefficients),
                 "--max-count", f"{max_count:g}"]
        if args.query:
            argv += ["--query", args.query]
    return shlex.join(argv) + " --model EXPORT_DIR"


def run(args: argparse.Namespace) -> int:
    from ..streaming.emulator import Emulator

    source = None
    if args.dataset is not None:
        from ..data.load import load_dataset

        source = load_dataset(args.dataset, args.split)
    check_faults(args.faults, args.protocol)
    if args.link is not None and args.link.exists() and not args.link.is_symlink():
        raise PaceEdgeError(f"--link {args.link} exists and is not a symlink")
    emulator = Emulator(
        args.protocol,
        source=source,
        faults=args.faults,
        seed=args.seed,
        pixels=args.pixels,
        rate=args.rate,
        baud=args.baud,
        checksum=args.checksum,
        query=args.query,
        link_path=args.link,
        integration_us=int(round(args.integration_ms * 1000)),
        serial_number=args.serial,
    )
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    start = time.monotonic()
    try:
        with emulator:
            print(emulator.port, flush=True)
            command = stream_command(args, str(emulator.port), emulator.coefficients,
                                     emulator.device.pixels, emulator.laser_nm,
                                     emulator.device.full_scale)
            print(f"pace-edge simulate: stream from it with: {command}", file=sys.stderr,
                  flush=True)
            end = None if args.duration is None else start + args.duration
            while not stop.is_set():
                if end is not None and time.monotonic() >= end:
                    break
                if not emulator.running:
                    raise PaceEdgeError(f"emulator stopped: {emulator.error!r}")
                stop.wait(0.1 if end is None else min(0.1, max(end - time.monotonic(), 0)))
            stats = emulator.stats
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    print(f"served {stats.summary()} in {time.monotonic() - start:.1f} s", flush=True)
    return 0
