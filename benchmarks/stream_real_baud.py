"""Streaming at real serial speeds: spectra/s an Ocean STS (OBP, 1024 pixels) and a
C12880MA board (ASCII lines, 288 pixels) give at 9600 and 115200 baud.

The emulator (``pace-edge simulate --baud``, its own process) releases bytes as a UART does
(8N1: 10 bits a byte) and answers a spectrum request once the integration time has passed;
the classifier (Python ``StreamClassifier``, and ``pace-stream`` with ``--native``) streams
``--frames`` frames after the handshake. Printed per row: spectra/s measured, bytes per
spectrum on the wire, and the link's ceiling (1 / (integration + request and reply on the
wire)), which the measured rate should approach: at these speeds the link, not the model,
sets the rate.

    PYTHONPATH=. python benchmarks/stream_real_baud.py --native build/pace-stream
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _stream_tools import LASER_NM, QUERY, Simulator, tiny_export  # noqa: E402

DEVICES = [("obp", 1024, "Ocean STS (OBP, 1024 px)"), ("ascii", 288, "C12880MA (ASCII, 288 px)")]
BAUDS = (9600, 115200)


def frames_for(baud: int, requested: int | None) -> int:
    return requested or (4 if baud < 19200 else 25)


def python_rate(sim: Simulator, model: Path, baud: int, frames: int,
                integration_ms: float) -> tuple[float, float]:
    from pace_edge.runtimes import load_runner
    from pace_edge.streaming.drivers import open_spectrometer
    from pace_edge.streaming.pipeline import StreamClassifier, StreamConfig

    options = sim.driver_options(timeout=0.5) | {"baudrate": baud}
    if sim.protocol == "ascii":
        options["integration_command"] = "SPEC.INTEG {us}"
    with load_runner(model, backend="auto", threads=1) as runner:
        device = open_spectrometer(sim.protocol, sim.port, **options)
        try:
            device.set_integration_time_us(int(integration_ms * 1000))
            bytes_before = device.stats.bytes_in
            start = time.perf_counter()
            stats = StreamClassifier(device, runner, StreamConfig(
                laser_nm=LASER_NM, max_frames=frames), lambda record: None).run()
            elapsed = time.perf_counter() - start
            nbytes = (device.stats.bytes_in - bytes_before) / frames
        finally:
            device.close()
    if stats.classified != frames:
        raise SystemExit(f"python {sim.protocol} {baud}: {stats.summary_text()}")
    return frames / elapsed, nbytes


def native_rate(pace_stream: str, sim: Simulator, model: Path, baud: int, frames: int,
                integration_ms: float, workdir: Path) -> float:
    """pace-stream over ``frames`` frames, timed from its first JSON line to its last (the
    handshake and model loading are left out); returns spectra/s."""
    cmd = [pace_stream, "--port", sim.port, "--protocol", sim.protocol, "--model", str(model),
           "--laser-nm", str(LASER_NM), "--timeout", "0.5", "--baud", str(baud),
           "--max-frames", str(frames + 1), "--threads", "1"]
    if sim.protocol == "ascii":
        coeffs = ",".join(repr(c) for c in Simulator.coefficients(288))
        cmd += ["--query", QUERY, "--wavelength-coeffs", coeffs, "--max-count", "4095",
                "--integration-command", "SPEC.INTEG {us}"]
    cmd += ["--integration-ms", str(integration_ms)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    stamps = []
    for line in proc.stdout:
        stamps.append(time.perf_counter())
        if "class" not in json.loads(line):
            raise SystemExit(f"pace-stream rejected a frame: {line}")
    proc.wait()
    if proc.returncode != 0 or len(stamps) != frames + 1:
        raise SystemExit(f"pace-stream failed: {proc.stderr.read() if proc.stderr else ''}")
    return frames / (stamps[-1] - stamps[0])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="export directory (default: tiny synthetic)")
    parser.add_argument("--workdir", type=Path,
                        default=Path(tempfile.gettempdir()) / "pace-real-baud")
    parser.add_argument("--native", help="path of pace-stream: measure it too")
    parser.add_argument("--integration-ms", type=float, default=10.0,
                        help="detector integration time (default 10 ms)")
    parser.add_argument("--frames", type=int, default=None,
                        help="frames per row (default: 4 at 9600 baud, 25 at 115200)")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    model = args.model or tiny_export(args.workdir)
    print("| device | baud | link ceiling (spectra/s) | bytes per spectrum | Python spectra/s |"
          + (" pace-stream spectra/s |" if args.native else ""))
    print("|---|---|---|---|---|" + ("---|" if args.native else ""))
    for protocol, pixels, label in DEVICES:
        for baud in BAUDS:
            frames = frames_for(baud, args.frames)
            link = args.workdir / f"link-{protocol}-{baud}"
            sim = Simulator(protocol, link, "--baud", str(baud), "--integration-ms",
                            str(args.integration_ms), "--pixels", str(pixels), "--seed", "3")
            try:
                rate, nbytes = python_rate(sim, model, baud, frames, args.integration_ms)
                native = (native_rate(args.native, sim, model, baud, frames,
                                      args.integration_ms, args.workdir)
                          if args.native else None)
            finally:
                sim.stop()
            request = 64 if protocol == "obp" else len(QUERY) + 1
            ceiling = 1.0 / (args.integration_ms / 1e3 + (request + nbytes) * 10 / baud)
            print(f"| {label} | {baud} | {ceiling:.2f} | {nbytes:.0f} | {rate:.2f} |"
                  + (f" {native:.2f} |" if native is not None else ""), flush=True)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    raise SystemExit(main())
