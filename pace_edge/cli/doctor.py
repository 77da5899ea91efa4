"""``pace-edge doctor``: what this machine can run, and why not.

Exit status: 0 when the named export (or, without ``--export``, some backend) can run here, 1
when it cannot, 2 on a usage error (an ``--export`` that is neither an export nor a bundle).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..errors import PaceEdgeError

HELP = "report what this device can run: CPU, runtimes, TensorRT, GPU, serial ports, an export"
EXIT_CANNOT_RUN = 1


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("doctor", help=HELP, description=HELP + ". Exit 0 when the export (or, "
                       "without --export, some backend) can run here, 1 when it cannot.")
    p.add_argument("--export", type=Path, default=None, metavar="DIR",
                   help="an export (or bundle) directory: the backend it would run on, or why "
                        "it cannot run here")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..device_check import collect, render
    from ..export.manifest import MANIFEST_FILE

    if args.export is not None:
        path = Path(args.export)
        if not path.is_dir():
            raise PaceEdgeError(f"--export {path}: no such directory")
        if not ((path / MANIFEST_FILE).is_file() or (path / "model.json").is_file()):
            raise PaceEdgeError(f"--export {path}: neither an export ({MANIFEST_FILE}) nor a "
                                "model bundle (model.json)")
    report = collect(args.export)
    print(json.dumps(report.to_dict(), indent=2) if args.json else render(report))
    return 0 if report.can_run else EXIT_CANNOT_RUN
