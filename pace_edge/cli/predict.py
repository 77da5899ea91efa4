"""``pace-edge predict``: classify spectrum files with a bundle."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

HELP = "classify spectrum files (two-column text/CSV, or .npy) with a model bundle"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help=HELP, description=HELP + ".")
    p.add_argument("--model", required=True, type=Path, help="model bundle directory")
    p.add_argument("files", nargs="+", type=Path, metavar="FILE",
                   help="spectrum files; a .npy of intensities alone must be on the model axis")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..bundle import Bundle
    from ..data import read_spectrum_file
    from ..errors import DataError, PaceEdgeError
    from ..evaluate.classifier import BundleClassifier

    bundle = Bundle.load(args.model)
    clf = BundleClassifier(bundle)
    failures = 0
    for path in args.files:
        try:
            axis, intensity = read_spectrum_file(path)
            if axis is None:
                if intensity.size != bundle.input_length:
                    raise DataError(
                        f"{path}: {intensity.size} intensities without an axis; the model "
                        f"expects {bundle.input_length} points on its own axis"
                    )
                axis = bundle.axis
            verdicts, _ = clf.judge(intensity[None, :], axis)
            proba = verdicts.probabilities[0]
        except PaceEdgeError as exc:
            failures += 1
            if args.json:
                print(json.dumps({"file": str(path), "error": str(exc)}))
            else:
                print(f"{path}: error: {exc}")
            continue
        best = int(np.argmax(proba))
        if args.json:
            probabilities = {c: float(v) for c, v in zip(bundle.classes, proba, strict=True)}
            print(json.dumps({"file": str(path), "class": bundle.classes[best],
                              "probability": float(proba[best]), "probabilities": probabilities,
                              **verdicts.record(0)}))
        elif verdicts.accepted[0]:
            print(f"{path}: {bundle.classes[best]} ({proba[best]:.1%})")
        else:
            record = verdicts.record(0)
            score = f", score {record['score']:.3g}" if record["score"] is not None else ""
            print(f"{path}: unknown ({record['reason']}{score}; nearest class "
                  f"{bundle.classes[best]} {proba[best]:.1%})")
    return 1 if failures else 0
