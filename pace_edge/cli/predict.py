"""``pace-edge predict``: classify spectrum files with an export (no torch needed) or a bundle.

Files are two-column text/CSV (x, intensity) or ``.npy``: intensities on the model's axis
(or on ``--axis``), an ``(N, points)`` batch of them, or x and intensity as ``(2, n)`` /
``(n, 2)``; see :func:`pace_edge.data.spectrum_file.read_spectra` for the exact rules.
Every file is tried; the exit status is 2 when any could not be read.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from .common import EXIT_USER_ERROR, add_model_arguments, open_model

HELP = ("classify spectrum files (two-column text/CSV, or .npy: one spectrum or an (N, points) "
        "batch) with an export or a model bundle")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help=HELP, description=HELP + ".")
    add_model_arguments(p)
    p.add_argument("files", nargs="+", type=Path, metavar="FILE",
                   help="spectrum files; .npy intensities without x values must be on the "
                        "model's axis, or on --axis")
    p.add_argument("--axis", type=Path, default=None, metavar="FILE",
                   help="x values (.npy, or text with one per line) of .npy files that hold "
                        "intensities alone (default: the model's input axis)")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.set_defaults(run=run)


def read_axis(path: Path) -> np.ndarray:
    """``--axis``: one strictly increasing row of finite x values."""
    from ..data.spectrum_file import load_npy, read_text_lines
    from ..errors import DataError

    if path.suffix.lower() == ".npy":
        values = load_npy(path)
    else:
        try:
            values = np.array([float(line) for line in read_text_lines(path) if line.strip()])
        except ValueError:
            raise DataError(f"--axis {path}: expected one number per line") from None
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1 or values.size < 2 or not np.isfinite(values).all() \
            or not np.all(np.diff(values) > 0):
        raise DataError(f"--axis {path}: expected a strictly increasing 1-D axis of finite values")
    return values


def run(args: argparse.Namespace) -> int:
    from ..data.spectrum_file import read_spectra
    from ..errors import PaceEdgeError

    given_axis = read_axis(args.axis) if args.axis is not None else None
    failures = 0
    with open_model(args.model, args.backend, args.allow_failed) as runner:
        default_axis = runner.axis if given_axis is None else given_axis
        for path in args.files:
            try:
                axis, spectra = read_spectra(path, default_axis.size, default_axis)
                verdicts = runner.judge(spectra, default_axis if axis is None else axis)
            except PaceEdgeError as exc:
                failures += 1
                if args.json:
                    print(json.dumps({"file": str(path), "error": str(exc)}), flush=True)
                print(f"pace-edge predict: error: {exc}", file=sys.stderr, flush=True)
                continue
            proba = verdicts.probabilities
            for i, row in enumerate(proba):
                best = int(np.argmax(row))
                name = str(path) if len(proba) == 1 else f"{path}[{i}]"
                if args.json:
                    record = {"file": str(path), **({"index": i} if len(proba) > 1 else {}),
                              "class": runner.classes[best], "probability": float(row[best]),
                              "probabilities": {c: float(v) for c, v in
                                                zip(runner.classes, row, strict=True)},
                              **verdicts.record(i)}
                    print(json.dumps(record))
                elif verdicts.accepted[i]:
                    print(f"{name}: {runner.classes[best]} ({row[best]:.1%})")
                else:
                    record = verdicts.record(i)
                    score = f", score {record['score']:.3g}" if record["score"] is not None else ""
                    print(f"{name}: unknown ({record['reason']}{score}; nearest class "
                          f"{runner.classes[best]} {row[best]:.1%})")
    return EXIT_USER_ERROR if failures else 0
