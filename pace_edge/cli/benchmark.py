"""``pace-edge benchmark``: export builds of a bundle and compare their accuracy and latency
with the bundle on eager PyTorch FP32.

Exit status: 0; 1 when no requested build could be measured (every export failed or cannot
run here), or when ``--min-accuracy`` is given and a build is below it (a build without an
accuracy, because its export failed or it cannot run here, counts as below); 2 for a user
error (bad arguments, unreadable bundle or data).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from ..errors import PaceEdgeError
from .common import QualityGateFailed, add_allow_failed, positive_int

HELP = "compare exported builds of a bundle with PyTorch FP32: accuracy, latency, throughput"
DEFAULT_TARGETS = "onnx:fp32,openvino:fp32,openvino:int8"


def batch_list(text: str) -> list[int]:
    """``--batch 1,8,64``: positive whole numbers."""
    try:
        return sorted({positive_int(part) for part in text.split(",") if part.strip()}) or \
            [positive_int("")]
    except argparse.ArgumentTypeError as exc:
        raise argparse.ArgumentTypeError(f"batch sizes: {exc}") from None


def accuracy_value(text: str) -> float:
    """``--min-accuracy``: a fraction (0.95) or a percentage (95%)."""
    raw = text.strip()
    try:
        value = float(raw.rstrip("%")) / (100.0 if raw.endswith("%") else 1.0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a fraction or a percentage, got {text!r}") \
            from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected 0..1 or 0..100%, got {text!r}")
    return value


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("benchmark", help=HELP, description=HELP + ".")
    p.add_argument("--model", required=True, type=Path, help="model bundle directory")
    p.add_argument("--targets", default=DEFAULT_TARGETS, metavar="T:P,...",
                   help="builds as target:precision[@backend], comma-separated; targets torch "
                        "(the baseline, always included), onnx, openvino, x86, tensorrt, jetson; "
                        f"precisions fp32, fp16, int8 (default {DEFAULT_TARGETS})")
    p.add_argument("--data", type=Path, default=None, metavar="EVAL",
                   help="labelled spectra (test split) to measure each build's accuracy on; "
                        "their first spectra are also the timed inputs")
    p.add_argument("--batch", type=batch_list, default=[1, 8, 64], metavar="B,...",
                   help="batch sizes to time (default 1,8,64); the table shows latency at the "
                        "smallest and throughput at the largest")
    p.add_argument("--iterations", type=positive_int, default=200, metavar="N",
                   help="timed calls per build and batch size (default 200)")
    p.add_argument("--warmup", type=int, default=20, metavar="N",
                   help="untimed calls first (default 20)")
    p.add_argument("--threads", type=positive_int, default=None, metavar="N",
                   help="CPU threads per runtime (default: the CPUs this process may use)")
    p.add_argument("--min-accuracy", type=accuracy_value, default=None, metavar="X",
                   help="with --data, exit 1 when a build's accuracy is below X (0.95 or 95%%)")
    p.add_argument("--calib", type=Path, default=None, metavar="DATA",
                   help="training spectra to calibrate INT8 builds with (default: the bundle's "
                        "recorded training data)")
    p.add_argument("--workdir", type=Path, default=None, metavar="DIR",
                   help="keep exports in DIR/<target>-<precision> and reuse matching ones "
                        "(default: a temporary directory, removed afterwards)")
    p.add_argument("--no-reuse", dest="reuse", action="store_false",
                   help="export again even when --workdir holds a matching export")
    add_allow_failed(p)
    p.add_argument("--profile", action="store_true",
                   help="also print where the time goes: each build's slowest layers at every "
                        "batch size, from the runtime's own per-layer counters (OpenVINO, ONNX "
                        "Runtime)")
    p.add_argument("--json", type=Path, default=None, metavar="FILE",
                   help="write the full results (every latency sample) as JSON")
    p.add_argument("--plot", type=Path, default=None, metavar="FILE",
                   help="write a PNG of the latency distributions per build and batch size")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..benchmark import benchmark_builds, parse_builds
    from ..bundle import Bundle
    from ..data import load_dataset
    from ..runtimes.select import package_available

    missing = [name for name in ("torch", "onnx") if not package_available(name)]
    if missing:
        raise PaceEdgeError(
            f"benchmark exports the bundle and times it against PyTorch, which needs "
            f"{' and '.join(missing)} (not installed): pip install 'pace-edge[export]'; on a "
            "device, time a stream instead (pace-edge stream prints latency percentiles)")
    specs = parse_builds(args.targets)
    if args.min_accuracy is not None and args.data is None:
        raise PaceEdgeError("--min-accuracy needs --data (labelled spectra to measure it on)")
    if args.warmup < 0:
        raise PaceEdgeError(f"--warmup must be 0 or more, got {args.warmup}")
    Bundle.load(args.model)  # a clear error for a bad bundle before any export
    data = load_dataset(args.data, split="test") if args.data is not None else None

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory(prefix="pace-bench-") as tmp:
        workdir = args.workdir if args.workdir is not None else Path(tmp)
        report = benchmark_builds(
            args.model, specs, workdir, batches=args.batch, iterations=args.iterations,
            warmup=args.warmup, threads=args.threads, data=data, calib=args.calib,
            reuse=args.reuse, min_accuracy=args.min_accuracy, profile=args.profile,
            allow_failed=args.allow_failed, log=log,
        )
    print(report.table())
    if args.profile:
        print(report.profile_text())
    if args.json:
        print(f"wrote {report.write_json(args.json)}")
    if args.plot:
        print(f"wrote {report.plot(args.plot)}")
    requested = [r for r in report.results if r.label != report.baseline]
    if requested and not any(r.latency for r in requested):
        detail = "; ".join(f"{r.label}: {r.status}"
                           + (f" ({' '.join(r.reason.split())})" if r.reason else "")
                           for r in requested)
        raise QualityGateFailed(f"no build could be measured: {detail}")
    below = report.below_min_accuracy()
    if below:
        detail = ", ".join(
            f"{r.label} ({r.accuracy:.2%})" if r.accuracy is not None
            else f"{r.label} (no accuracy: {r.status})" for r in below)
        raise QualityGateFailed(f"below --min-accuracy {args.min_accuracy:.2%}: {detail}")
    return 0
