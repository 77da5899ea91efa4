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
    p.add_argument("--json", action="store_true",
                   help="print the metrics as JSON, with the trust summary and one record per "
                        "spectrum (accepted, and when refused the reason and score)")
    p.add_argument("--confusion-png", type=Path, default=None,
                   help="write the confusion matrix as a PNG here")
    p.add_argument("--groups", type=Path, default=None, metavar="FILE",
                   help="group (sample or patient) id of each spectrum, one per line in the "
                        "data's order (text, CSV with a 'group' column, or .npy); replaces "
                        "the data's own group ids")
    p.add_argument("--by-group", action="store_true",
                   help="add per-sample accuracy: each group's verdict is the majority vote "
                        "of its spectra (a tie gives no verdict)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..data import load_dataset
    from ..errors import PaceEdgeError
    from ..evaluate import save_confusion_png
    from ..evaluate.scoring import judge_runner
    from ..evaluate.trust_report import trust_text
    from ..runtimes.select import package_available

    if args.confusion_png and not package_available("matplotlib"):
        raise PaceEdgeError("--confusion-png needs the matplotlib package, which is not "
                            "installed: pip install 'pace-edge[train]'")
    # verified before the data is read
    with open_model(args.model, args.backend, args.allow_failed) as runner:
        data = load_dataset(args.data, split="test", groups=args.groups)
        if args.by_group and data.groups is None:
            raise PaceEdgeError(f"--by-group needs group ids: {data.source} has none; pass "
                                f"--groups FILE (see 'Using real data' in README)")
        metrics, trust, records = judge_runner(runner, data)
        backend = f"{runner.name} {runner.precision}"
    by_group = metrics.by_group(data.groups) if args.by_group else None
    if args.confusion_png:
        save_confusion_png(metrics, str(args.confusion_png), title=f"{data.source}")
    if args.json:
        report = {"model": str(args.model), "backend": backend, "data": data.source,
                  **metrics.to_dict()}
        if by_group is not None:
            report["by_group"] = by_group.to_dict()
        report.update({"trust": trust, "predictions": records})
        print(json.dumps(report, indent=2))
    else:
        print(f"model {args.model} ({backend}) on {data.source}")
        print(metrics.to_text())
        print(trust_text(trust))
        if by_group is not None:
            print("\n" + by_group.to_text())
        if args.confusion_png:
            print(f"\nconfusion matrix written to {args.confusion_png}")
    return 0
