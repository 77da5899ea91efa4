"""``pace-edge evaluate``: accuracy, per-class scores and confusion matrix of a bundle."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

HELP = "score a model bundle on labelled spectra"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help=HELP, description=HELP + ".")
    p.add_argument("--model", required=True, type=Path, help="model bundle directory")
    p.add_argument("--data", required=True, type=Path,
                   help="labelled spectra (a cov-style folder's test split, a wide CSV, or a "
                        "folder per class)")
    p.add_argument("--json", action="store_true",
                   help="print the metrics as JSON, with the trust summary and one record per "
                        "spectrum (accepted, and when refused the reason and score)")
    p.add_argument("--confusion-png", type=Path, default=None,
                   help="write the confusion matrix as a PNG here")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..bundle import Bundle
    from ..data import load_dataset
    from ..evaluate import save_confusion_png
    from ..evaluate.trust_report import trust_text
    from .scoring import judge_bundle

    bundle = Bundle.load(args.model)
    data = load_dataset(args.data, split="test")
    metrics, trust, records = judge_bundle(bundle, data)
    if args.confusion_png:
        save_confusion_png(metrics, str(args.confusion_png), title=f"{data.source}")
    if args.json:
        print(json.dumps({"model": str(args.model), "data": data.source, **metrics.to_dict(),
                          "trust": trust, "predictions": records}, indent=2))
    else:
        print(f"model {args.model} on {data.source}")
        print(metrics.to_text())
        print(trust_text(trust))
        if args.confusion_png:
            print(f"\nconfusion matrix written to {args.confusion_png}")
    return 0
