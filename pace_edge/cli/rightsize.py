"""``pace-edge rightsize``: find the smallest PACE that keeps the accuracy (see
:mod:`pace_edge.rightsize.search`)."""

from __future__ import annotations

import argparse
import sys
from dataclasses import fields
from pathlib import Path

from ..train.distill import DEFAULT_ALPHA, DEFAULT_TEMPERATURE
from .common import (
    QualityGateFailed,
    non_negative,
    non_negative_int,
    positive_float,
    positive_int,
)

HELP = ("train a ladder of PACE sizes (plain and distilled from the largest), export and time "
        "each at INT8, and recommend the smallest that keeps the accuracy")
EXIT_INTERRUPTED = 130


def register(sub: argparse._SubParsersAction) -> None:
    from ..export import TARGETS
    from ..rightsize import (
        DEFAULT_MAX_DROP_PP,
        DEFAULT_QAT_EPOCHS,
        DEFAULT_SIZES,
        DEFAULT_STANDARD_ERRORS,
    )

    p = sub.add_parser("rightsize", help=HELP, description=HELP + ". Choices use the "
                       "validation split of the training data only; --eval only measures. "
                       "Run the same command again to continue an interrupted run (finished "
                       "candidates are reused).")
    p.add_argument("--data", required=True, type=Path,
                   help="training data (as for train: a cov-style folder's train split, a wide "
                        "CSV, or class folders)")
    p.add_argument("--out", required=True, type=Path,
                   help="output folder: candidates/, exports/, chosen/ (an ordinary bundle), "
                        "report.md, frontier.json, frontier.png")
    p.add_argument("--target", default="x86", choices=[t for t, s in TARGETS.items()
                                                       if "int8" in s.precisions],
                   help="export target of the INT8 builds (default: x86)")
    p.add_argument("--sizes", default=None, metavar="LIST",
                   help="comma-separated sizes: presets or DIMxDEPTH such as 64x2 (default: "
                        f"{','.join(DEFAULT_SIZES)}); the largest is the teacher")
    rule = p.add_mutually_exclusive_group()
    rule.add_argument("--max-drop", type=non_negative, default=DEFAULT_MAX_DROP_PP, metavar="PP",
                      help="choose the smallest model whose validation accuracy is within PP "
                           "percentage points (plus --se standard errors) of the best "
                           f"(default: {DEFAULT_MAX_DROP_PP:g})")
    rule.add_argument("--budget-ms", type=positive_float, default=None, metavar="MS",
                      help="instead, choose the most accurate model whose INT8 build's median "
                           "latency at batch 1 is at most MS")
    p.add_argument("--se", type=non_negative, default=DEFAULT_STANDARD_ERRORS, metavar="K",
                   help="standard errors of the best validation accuracy added to --max-drop "
                        "(the one-standard-error rule: a small validation split cannot tell "
                        f"sizes apart by less; default {DEFAULT_STANDARD_ERRORS:g}; 0: "
                        "--max-drop alone)")
    p.add_argument("--teacher", type=Path, default=None, metavar="BUNDLE",
                   help="the distillation teacher, instead of training it: a bundle of the "
                        "largest size trained on this data with this recipe and preprocessing "
                        "but --no-refit (a refitted model has seen the validation spectra the "
                        "candidates are chosen on)")
    p.add_argument("--qat", type=non_negative_int, default=DEFAULT_QAT_EPOCHS, metavar="N",
                   help="epochs of quantisation-aware fine-tuning for a candidate whose "
                        "post-training INT8 build misses the INT8 criterion, before it is "
                        f"exported again (default {DEFAULT_QAT_EPOCHS}; 0: never)")
    p.add_argument("--eval", type=Path, default=None,
                   help="held-out data (its test split) to measure every candidate and its INT8 "
                        "build on; never used for the choice")
    p.add_argument("--groups", type=Path, default=None, metavar="FILE",
                   help="group id of each training spectrum (as for train); validation then "
                        "holds whole groups")
    p.add_argument("--preprocess", default=None,
                   help="preprocessing steps (default: train's default)")
    p.add_argument("--epochs", type=positive_int, default=None,
                   help="maximum epochs (default: train's default)")
    p.add_argument("--seed", type=int, default=None, help="random seed (default: train's)")
    p.add_argument("--distill-temperature", type=positive_float, default=DEFAULT_TEMPERATURE,
                   metavar="T", help=f"softmax temperature (default: {DEFAULT_TEMPERATURE:g})")
    p.add_argument("--distill-alpha", type=float, default=DEFAULT_ALPHA, metavar="A",
                   help=f"weight of the soft targets in [0, 1] (default: {DEFAULT_ALPHA:g})")
    p.add_argument("--iterations", type=positive_int, default=200,
                   help="timed calls per build and batch size (default: 200)")
    p.add_argument("--threads", type=positive_int, default=None,
                   help="runtime threads for every build (default: each build timed with the "
                        "runtime's default and with 1 thread, the faster kept per batch size)")
    p.add_argument("--quiet", action="store_true", help="no per-epoch progress")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import matplotlib  # noqa: F401  (the frontier plot; fail now, not after training)

    from ..data import load_dataset
    from ..preprocess import Pipeline
    from ..rightsize import parse_ladder
    from ..rightsize.search import Interrupted, Plan, check_out, rightsize
    from ..train import Recipe
    from ..train.checkpoint import TrainingInterrupted
    from ..train.distill import DistillSettings
    from . import train
    from .progress import TrainingProgress

    defaults = train._defaults()  # the recipe is train's, whatever its defaults are
    check_out(args.out)
    known = {f.name for f in fields(Recipe)}
    overrides = {"epochs": args.epochs, "seed": args.seed}
    given = {k: v for k, v in overrides.items() if v is not None}
    recipe = Recipe(**{**{k: v for k, v in defaults.items() if k in known}, **given})
    recipe.validate()
    spec = defaults["preprocess"] if args.preprocess is None else args.preprocess
    pipeline = Pipeline.from_spec(spec) if spec else Pipeline([])
    data = load_dataset(args.data, split="train", groups=args.groups)
    rungs = parse_ladder(args.sizes, len(data.classes), data.x.shape[1])
    plan = Plan(data=args.data, out=args.out, rungs=rungs, recipe=recipe, pipeline=pipeline,
                target=args.target, max_drop_pp=args.max_drop, budget_ms=args.budget_ms,
                standard_errors=args.se,
                distill=DistillSettings(args.distill_temperature, args.distill_alpha),
                eval=args.eval, groups=args.groups, teacher=args.teacher, qat=args.qat,
                iterations=args.iterations, threads=args.threads)
    print(f"rightsize: {len(rungs)} sizes ({', '.join(r.name for r in rungs)}), "
          f"{2 * len(rungs) - 1} candidates, teacher {rungs[-1].name}; recipe: train's, "
          f"seed {recipe.seed}, {recipe.epochs} epochs, preprocessing "
          f"{spec or 'none'}", flush=True)

    def log(message: str) -> None:
        print(message, flush=True)

    try:
        with train._StopRequest() as stop:
            outcome = rightsize(plan, log=log, stop=stop,
                                progress=lambda: TrainingProgress(quiet=args.quiet))
    except (TrainingInterrupted, Interrupted) as exc:
        print(f"pace-edge rightsize: interrupted ({exc}); run the same command again to "
              f"continue", file=sys.stderr)
        return EXIT_INTERRUPTED
    for line in outcome.files:
        print(f"wrote {line}")
    if outcome.choice.chosen is None:
        raise QualityGateFailed(outcome.choice.reason)
    print(f"chosen: {outcome.choice.reason}; bundle {args.out / 'chosen'}")
    return 0


__all__ = ["register", "run"]
