"""Soak: a long fault-injected stream with CPU hogs on every core; every frame accounted.

For each protocol (OBP, ASCII in query mode) and implementation (Python ``StreamClassifier``;
the native ``pace-stream`` with ``--native``), the emulator runs in its own process with every
fault kind it has for that protocol, ``--hogs`` busy loops load every core, and ``--frames``
frames are streamed. A run passes when the classifier received exactly what the emulator
served and every rejection is explained by an injected fault (per reason, equal counts):

    OBP    checksum_error = checksum, truncated_frame = truncate, transport_timeout = stall,
           transport_closed = disconnect, saturated = saturate, pixel_count_error = pixels
           (garbage precedes an intact frame: classified)
    ASCII  non_numeric_value = checksum + garbage, pixel_count_error = pixels + truncate,
           non_finite_value = nan, transport_timeout = stall, transport_closed = disconnect,
           saturated = saturate

    PYTHONPATH=. python benchmarks/soak_stream.py --frames 20000 --native build/pace-stream

Exit status 0 when every run passes. ``--model`` takes an export; without it a tiny synthetic
model is trained and exported into ``--workdir``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _stream_tools import LASER_NM, QUERY, Simulator, cpu_hogs, default_hogs, tiny_export  # noqa: E402

FAULTS = {
    "obp": "checksum=0.01,truncate=0.005,garbage=0.01,stall=0.002,disconnect=0.001,"
           "saturate=0.01,pixels=0.01",
    "ascii": "checksum=0.01,truncate=0.005,garbage=0.01,stall=0.002,disconnect=0.001,"
             "saturate=0.01,pixels=0.01,nan=0.01",
}
EXPLAINED = {  # rejection reason -> fault kinds that cause it
    "obp": {"checksum_error": ("checksum",), "truncated_frame": ("truncate",),
            "transport_timeout": ("stall",), "transport_closed": ("disconnect",),
            "saturated": ("saturate",), "pixel_count_error": ("pixels",)},
    "ascii": {"non_numeric_value": ("checksum", "garbage"),
              "pixel_count_error": ("pixels", "truncate"), "non_finite_value": ("nan",),
              "transport_timeout": ("stall",), "transport_closed": ("disconnect",),
              "saturated": ("saturate",)},
}


def run_python(sim: Simulator, model: Path, frames: int, timeout: float) -> dict:
    from pace_edge.runtimes import load_runner
    from pace_edge.streaming.drivers import open_spectrometer
    from pace_edge.streaming.pipeline import StreamClassifier, StreamConfig

    with load_runner(model, backend="auto", threads=1) as runner:
        device = open_spectrometer(sim.protocol, sim.port, **sim.driver_options(timeout))
        try:
            config = StreamConfig(laser_nm=LASER_NM, max_frames=frames, reconnect_initial_s=0.05)
            stats = StreamClassifier(device, runner, config, lambda record: None).run()
        finally:
            device.close()
    return stats.summary()


def run_native(pace_stream: str, sim: Simulator, model: Path, frames: int,
               timeout: float, workdir: Path) -> dict:
    summary = workdir / f"native-{sim.protocol}.json"
    cmd = [pace_stream, "--port", sim.port, "--protocol", sim.protocol, "--model", str(model),
           "--laser-nm", str(LASER_NM), "--timeout", str(timeout), "--max-frames", str(frames),
           "--threads", "1", "--output", os.devnull, "--summary-json", str(summary)]
    if sim.protocol == "ascii":
        coeffs = ",".join(repr(c) for c in Simulator.coefficients(288))
        cmd += ["--query", QUERY, "--wavelength-coeffs", coeffs, "--max-count", "4095"]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"pace-stream failed: {result.stderr[-2000:]}")
    return json.loads(summary.read_text())


def check(protocol: str, summary: dict, served: int, faults: Counter[str]) -> list[str]:
    """Every problem found (empty: the run passes)."""
    problems = []
    if summary["received"] != served:
        problems.append(f"received {summary['received']} != served {served}")
    if not summary["accounted"]:
        problems.append("not every received frame is accounted")
    rejected = Counter(summary["rejected"])
    for reason, count in rejected.items():
        kinds = EXPLAINED[protocol].get(reason)
        if kinds is None:
            problems.append(f"{count} unexplained '{reason}' rejections")
        elif count != sum(faults[k] for k in kinds):
            problems.append(f"{reason} {count} != injected {'+'.join(kinds)} "
                            f"{sum(faults[k] for k in kinds)}")
    for reason, kinds in EXPLAINED[protocol].items():
        if reason not in rejected and sum(faults[k] for k in kinds):
            problems.append(f"no '{reason}' rejections for {sum(faults[k] for k in kinds)} "
                            f"injected {'+'.join(kinds)}")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=20000, help="frames per run (20000)")
    parser.add_argument("--protocols", default="obp,ascii")
    parser.add_argument("--model", type=Path, help="export directory (default: tiny synthetic)")
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "pace-soak")
    parser.add_argument("--native", help="path of pace-stream: also soak the native stream")
    parser.add_argument("--hogs", type=int, default=default_hogs(),
                        help="busy-loop processes (default: one per usable core)")
    parser.add_argument("--timeout", type=float, default=0.5, help="the stream's slack (0.5 s)")
    parser.add_argument("--seed", type=int, default=21)
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    model = args.model or tiny_export(args.workdir)
    impls = ["python"] + (["native"] if args.native else [])
    results, failed = [], False
    with cpu_hogs(args.hogs):
        for impl in impls:
            for protocol in args.protocols.split(","):
                link = args.workdir / f"link-{impl}-{protocol}"
                sim = Simulator(protocol, link, "--faults", FAULTS[protocol],
                                "--seed", str(args.seed))
                start = time.monotonic()
                try:
                    if impl == "python":
                        summary = run_python(sim, model, args.frames, args.timeout)
                    else:
                        summary = run_native(args.native, sim, model, args.frames,
                                             args.timeout, args.workdir)
                finally:
                    served, faults = sim.stop()
                elapsed = time.monotonic() - start
                problems = check(protocol, summary, served, faults)
                failed |= bool(problems)
                row = {"impl": impl, "protocol": protocol, "served": served,
                       "received": summary["received"], "classified": summary["classified"],
                       "rejected": summary["rejected"], "faults": dict(faults),
                       "reconnects": summary["reconnects"], "seconds": round(elapsed, 1),
                       "hogs": args.hogs, "problems": problems}
                results.append(row)
                print(f"{impl:6} {protocol:5} served {served} received {summary['received']} "
                      f"classified {summary['classified']} rejected {summary['rejected']} "
                      f"faults {dict(faults)} reconnects {summary['reconnects']} "
                      f"in {elapsed:.0f} s with {args.hogs} hogs: "
                      f"{'PASS' if not problems else 'FAIL ' + '; '.join(problems)}",
                      flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
