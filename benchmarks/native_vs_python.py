"""`pace-stream` (C++) against `pace-edge stream` (Python) on the same export and the same
emulated stream: the table at the end of README.md's "Latency reports".

For each implementation (``--rounds`` times, alternating) an emulator in its own process
(``pace-edge simulate --protocol obp --dataset DATA --split test --rate RATE``) serves
spectra and the stream classifies ``--frames`` of them with ``--threads`` inference threads,
its JSON lines discarded. Reported per implementation, from the stream's own exit summary
(``--summary-json``): end-to-end latency p50 / p99 (``total``: frame read to JSON line) and
preprocessing p50; and its peak resident memory, the ``ru_maxrss`` the kernel reports for the
process when it exits, taken as ``/usr/bin/time -v`` takes its "Maximum resident set size".

    PYTHONPATH=. python benchmarks/native_vs_python.py --native build/pace-stream \
        --model build-x86 --dataset ../shared/datasets/cov

``--model`` should be what README names (the paper preset's x86 INT8 export of a COV model);
without it a tiny SYNTHETIC x86 export is made in ``--workdir``, which measures the stream's
own costs more than inference. Exit status 1 when a stream did not classify every frame.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _stream_tools import LASER_NM, Simulator, tiny_export  # noqa: E402

IMPLEMENTATIONS = ("pace-stream", "pace-edge stream")

# Runs a command and writes its peak RSS (KiB) to argv[1], as /usr/bin/time does. The stream
# must be the child of a small process: Linux counts a child's memory from before its exec,
# which for a child of this script (torch imported) would be this script's own.
RUSAGE_WRAPPER = """
import os, subprocess, sys
proc = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(proc.pid, 0)
open(sys.argv[1], "w").write(str(usage.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status))
"""


def stream_command(which: str, native: str | None, port: str, model: Path, frames: int,
                   threads: int, backend: str, summary: Path) -> list[str]:
    common = ["--port", port, "--protocol", "obp", "--model", str(model), "--laser-nm",
              str(LASER_NM), "--threads", str(threads), "--max-frames", str(frames),
              "--output", os.devnull, "--summary-json", str(summary), "--backend", backend]
    if which == "pace-stream":
        assert native is not None
        return [native, *common]
    return [sys.executable, "-m", "pace_edge.cli.main", "stream", *common]


def run_once(which: str, args: argparse.Namespace, model: Path, workdir: Path,
             round_: int) -> dict:
    """One stream of ``args.frames`` frames; its summary figures and peak RSS."""
    link = workdir / f"sts-{round_}"
    sim_args = ["--rate", str(args.rate), "--seed", str(round_)]
    if args.dataset:
        sim_args += ["--dataset", str(args.dataset), "--split", args.split]
    sim = Simulator("obp", link, *sim_args)
    summary, rss = workdir / f"summary-{round_}.json", workdir / f"rss-{round_}"
    summary.unlink(missing_ok=True)
    try:
        proc = subprocess.run(
            [sys.executable, "-c", RUSAGE_WRAPPER, str(rss),
             *stream_command(which, args.native, sim.port, model, args.frames, args.threads,
                             args.backend, summary)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            timeout=120 + 10 * args.frames / args.rate)
    finally:
        sim.stop()
    if proc.returncode != 0 or not summary.is_file():
        raise SystemExit(f"{which} failed (exit {proc.returncode}): {proc.stderr.strip()[-500:]}")
    s = json.loads(summary.read_text())
    latency = s["latency_ms"]
    return {"implementation": which, "classified": s["classified"], "received": s["received"],
            "total_p50_ms": latency["total"]["p50"], "total_p99_ms": latency["total"]["p99"],
            "preprocess_p50_ms": latency["preprocess"]["p50"],
            "peak_rss_mib": int(rss.read_text()) / 1024}  # Linux reports KiB


def median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def table(runs: list[dict]) -> str:
    lines = ["| | end-to-end latency p50 / p99 | preprocess p50 | peak resident memory |",
             "|---|---|---|---|"]
    names = {"pace-stream": "`build/pace-stream` (C++)",
             "pace-edge stream": "`pace-edge stream` (Python)"}
    for which in IMPLEMENTATIONS:
        mine = [r for r in runs if r["implementation"] == which]
        if not mine:
            continue
        m = {k: median([r[k] for r in mine]) for k in
             ("total_p50_ms", "total_p99_ms", "preprocess_p50_ms", "peak_rss_mib")}
        lines.append(f"| {names[which]} | {m['total_p50_ms']:.2f} / {m['total_p99_ms']:.2f} ms "
                     f"| {m['preprocess_p50_ms']:.3f} ms | {m['peak_rss_mib']:.0f} MiB |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--native", help="the pace-stream binary (pace-edge build-native); "
                   "without it only the Python stream runs")
    p.add_argument("--model", type=Path, help="export to stream with (default: a tiny "
                   "SYNTHETIC x86 export made in --workdir)")
    p.add_argument("--dataset", type=Path, help="spectra the emulator serves (an npy folder; "
                   "default: SYNTHETIC ones)")
    p.add_argument("--split", default="test")
    p.add_argument("--rate", type=float, default=100.0, help="spectra/s (default: 100)")
    p.add_argument("--frames", type=int, default=500, help="frames per stream (default: 500)")
    p.add_argument("--threads", type=int, default=1, help="inference threads (default: 1)")
    p.add_argument("--backend", default="openvino")
    p.add_argument("--rounds", type=int, default=1, help="streams per implementation "
                   "(alternating; the table shows medians)")
    p.add_argument("--workdir", type=Path)
    p.add_argument("--json", type=Path, help="write every round's figures here")
    args = p.parse_args(argv)
    if args.native and not os.access(args.native, os.X_OK):
        p.error(f"--native {args.native} is not an executable (build it: pace-edge "
                "build-native)")
    with tempfile.TemporaryDirectory() as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        model = args.model or tiny_export(workdir)
        which = [w for w in IMPLEMENTATIONS if args.native or w != "pace-stream"]
        runs = []
        for r in range(args.rounds):
            for name in which:
                runs.append(run_once(name, args, model, workdir, r))
                print(json.dumps(runs[-1]), flush=True)
    if args.json:
        args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()},
                                         "runs": runs}, indent=1))
    print(f"{model}, {args.frames} frames at {args.rate:g} spectra/s, {args.threads} "
          f"thread(s), {args.backend}; medians of {args.rounds} round(s):")
    print(table(runs))
    complete = all(r["classified"] == args.frames for r in runs)
    if not complete:
        print("not every frame was classified", file=sys.stderr)
    return 0 if complete else 1


if __name__ == "__main__":
    sys.exit(main())
