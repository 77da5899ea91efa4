"""``pace-edge evaluate``: accuracy, per-class scores and confusion matrix of an export (on
ONNX Runtime / OpenVINO, no torch needed) or a bundle (on PyTorch)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .common import add_model_arguments, open_model

HELP = "score an export or a model bundle on labelled spectra"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help=HELP, description=HELP + ".")
    add_model_arguments(p)
    p.add_argument("--data", required=True, type=Path,
                   help="labelled spectra (a cov-style folder's test split, a wide CSV, or a "
                        "folder per class)")
    p.add_argument("--json", action="store_true", help="print the metrics as JSON")
    p.add_argument("--confusion-png", type=Path, default=None,
                   help="write the confusion matrix as a PNG here")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..data import load_dataset
    from ..errors import PaceEdgeError
    from ..evaluate import save_confusion_png
    from ..runtimes.select import package_available
    from .scoring import score_runner

    if args.confusion_png and not package_available("matplotlib"):
        raise PaceEdgeError("--confusion-png needs the matplotlib package, which is not "
                            "installed: pip install 'pace-edge[train]'")
    with open_model(args.model, args.backend) as runner:
        data = load_dataset(args.data, split="test")
        metrics = score_runner(runner, data)
        backend = f"{runner.name} {runner.precision}"
    if args.confusion_png:
        save_confusion_png(metrics, str(args.confusion_png), title=f"{data.source}")
    if args.json:
        print(json.dumps({"model": str(args.model), "backend": backend, "data": data.source,
                          **metrics.to_dict()}, indent=2))
    else:
        print(f"model {args.model} ({backend}) on {data.source}")
        print(metrics.to_text())
        if args.confusion_png:
            print(f"\nconfusion matrix written to {args.confusion_png}")
    return 0
