"""``pace-edge train``: fit a PACE model on labelled spectra and save a bundle."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Any

from ..errors import PaceEdgeError
from ..train.distill import DEFAULT_ALPHA, DEFAULT_TEMPERATURE
from .common import fraction, positive_float, positive_int, unit_interval, writable_dir

EXIT_INTERRUPTED = 130

HELP = "train a PACE model on labelled spectra and save a model bundle"
DEFAULT_PREPROCESS = "normalize:snv"
GAIN_WARNING = ("warning: no per-spectrum normalisation; predictions will depend on the "
                "instrument's gain and offset (integration time, laser power, focus), so "
                "spectra from another detector or setting may be misclassified with confidence")


def register(sub: argparse._SubParsersAction) -> None:
    from ..model import PRESETS
    from ..train import Recipe

    d = Recipe()
    p = sub.add_parser("train", help=HELP, description=HELP + ".")
    p.add_argument("--data", type=Path, default=None,
                   help="training data: a cov-style .npy folder (train split), a wide CSV, "
                        "or a folder with one sub-folder of spectrum files per class "
                        "(required, except with --resume)")
    p.add_argument("--out", required=True, type=Path,
                   help="bundle directory to write; while training it holds the training "
                        "state (training-state.pt), saved every 30 s and on Ctrl-C")
    p.add_argument("--resume", action="store_true",
                   help="continue the interrupted run whose state --out holds, with its "
                        "options and data (the result is the same as an uninterrupted run)")
    p.add_argument("--quiet", action="store_true",
                   help="no progress report (by default: a bar on a terminal, otherwise a "
                        "line every 5 s on stderr)")
    p.add_argument("--preset", default="paper", choices=sorted(PRESETS),
                   help="architecture preset (default: paper)")
    for name, what in (("dim", "channels"), ("depth", "mixer blocks"),
                       ("kernel", "depthwise kernel length"), ("patch", "patch length")):
        p.add_argument(f"--{name}", type=positive_int, default=None,
                       help=f"{what}, in place of the preset's")
    distil = p.add_argument_group("knowledge distillation")
    distil.add_argument("--distill-from", type=Path, default=None, metavar="BUNDLE",
                        help="train this model as a student of a trained bundle: soft targets "
                             "at a temperature plus the labels; the student uses the teacher's "
                             "preprocessing, and its bundle records the teacher's sha256")
    distil.add_argument("--distill-temperature", type=positive_float,
                        default=DEFAULT_TEMPERATURE, metavar="T",
                        help=f"softmax temperature of the soft targets "
                             f"(default: {DEFAULT_TEMPERATURE:g})")
    distil.add_argument("--distill-alpha", type=unit_interval, default=DEFAULT_ALPHA,
                        metavar="A",
                        help=f"weight of the soft targets; 1 - A weighs the labels "
                             f"(default: {DEFAULT_ALPHA:g})")
    p.add_argument("--epochs", type=positive_int, default=d.epochs,
                   help=f"maximum epochs (default: {d.epochs})")
    p.add_argument("--batch-size", type=positive_int, default=d.batch_size,
                   help=f"batch size (default: {d.batch_size})")
    p.add_argument("--lr", type=float, default=d.lr,
                   help=f"AdamW learning rate (default: {d.lr:g})")
    p.add_argument("--weight-decay", type=float, default=d.weight_decay,
                   help=f"AdamW weight decay (default: {d.weight_decay:g})")
    p.add_argument("--label-smoothing", type=float, default=d.label_smoothing,
                   help="cross-entropy label smoothing in [0, 1) "
                        f"(default: {d.label_smoothing:g})")
    p.add_argument("--select-window", type=positive_int, default=d.select_window,
                   help="choose the epoch count on a centred moving average of validation "
                        "accuracy over this many epochs (odd; 1 = the single best epoch; "
                        f"needs --refit) (default: {d.select_window})")
    p.add_argument("--select-folds", type=positive_int, default=d.select_folds,
                   help="choose the epoch count on the mean validation curve of K stratified "
                        "folds of the training data (K training runs, then the refit; "
                        "--val-fraction is then unused) (default: 1, one hold-out split)")
    p.add_argument("--val-fraction", type=fraction, default=d.val_fraction,
                   help="share of the training data held out for model selection "
                        f"(default: {d.val_fraction:g})")
    p.add_argument("--patience", type=int, default=d.patience,
                   help="stop after N epochs without a better validation accuracy; 0 = never "
                        f"(default: {d.patience})")
    p.add_argument("--seed", type=int, default=d.seed, help=f"random seed (default: {d.seed})")
    p.add_argument("--device", choices=("cpu", "cuda"), default=d.device,
                   help="where to train (default: cpu)")
    aug = p.add_mutually_exclusive_group()
    aug.add_argument("--augment", dest="augment", action="store_true", default=d.augment,
                     help="noise, blur, intensity scaling and masking"
                          + (" (default)" if d.augment else ""))
    aug.add_argument("--no-augment", dest="augment", action="store_false",
                     help="train on the spectra as they are" + ("" if d.augment else " (default)"))
    refit = p.add_mutually_exclusive_group()
    refit.add_argument("--refit", dest="refit", action="store_true", default=d.refit,
                       help="after choosing the epoch count on validation, retrain on all the "
                            "training data for that many epochs"
                            + (" (default)" if d.refit else ""))
    refit.add_argument("--no-refit", dest="refit", action="store_false",
                       help="keep the best-validation model itself"
                            + ("" if d.refit else " (default)"))
    bn = p.add_mutually_exclusive_group()
    bn.add_argument("--precise-bn", dest="precise_bn", action="store_true",
                    default=d.precise_bn,
                    help="after training, recompute BatchNorm statistics on the un-augmented "
                         "training spectra" + (" (default)" if d.precise_bn else ""))
    bn.add_argument("--no-precise-bn", dest="precise_bn", action="store_false",
                    help="keep the running statistics gathered during training"
                         + ("" if d.precise_bn else " (default)"))
    p.add_argument("--preprocess", default=DEFAULT_PREPROCESS,
                   help="preprocessing steps, e.g. 'despike,baseline:asls,normalize:snv', or "
                        "'none' (predictions then depend on the instrument's gain and offset) "
                        f"(default: {DEFAULT_PREPROCESS}: each spectrum centred and scaled to "
                        "unit standard deviation, which cancels detector gain and offset; the "
                        "model axis is always recorded)")
    p.add_argument("--calibration-fraction", type=unit_interval, default=d.calibration_fraction,
                   help="stratified share of the training spectra kept out of every fit to "
                        "calibrate the temperature and the 'unknown' threshold "
                        f"(default: {d.calibration_fraction:g}; 0 = none, no calibration)")
    p.add_argument("--accept-rate", type=fraction, default=d.accept_rate,
                   help="share of in-distribution spectra the 'unknown' detector accepts, "
                        f"set on the calibration spectra (default: {d.accept_rate:g})")
    p.add_argument("--groups", type=Path, default=None, metavar="FILE",
                   help="group (sample or patient) id of each training spectrum, one per line "
                        "in the data's order (text, CSV with a 'group' column, or .npy); "
                        "replaces the data's own group ids. Validation, calibration and k-fold "
                        "splits keep each group on one side")
    p.add_argument("--eval", type=Path, default=None,
                   help="held-out data to score the selected model on after training "
                        "(a cov-style folder's test split); never used for selection")
    p.set_defaults(run=run)


# The options that define a run: recorded in the training state, reused by --resume.
RUN_OPTIONS = ("data", "eval", "preset", "preprocess", "epochs", "batch_size", "lr",
               "weight_decay", "label_smoothing", "select_window", "select_folds",
               "val_fraction", "patience", "seed", "device", "augment", "refit", "precise_bn",
               "dim", "depth", "kernel", "patch", "distill_from", "distill_temperature",
               "distill_alpha", "calibration_fraction", "accept_rate")
PATH_OPTIONS = ("data", "eval", "distill_from")
# Recorded only when used (see _recorded).
OPTIONAL_OPTIONS = ("dim", "depth", "kernel", "patch", "distill_from", "distill_temperature",
                    "distill_alpha")
ARCHITECTURE_OPTIONS = ("dim", "depth", "kernel", "patch")


def _option(name: str) -> str:
    return "--" + name.replace("_", "-")


def _defaults() -> dict[str, Any]:
    sub = argparse.ArgumentParser().add_subparsers()
    register(sub)
    train = sub.choices["train"]
    return {name: train.get_default(name) for name in RUN_OPTIONS}


def _recorded(args: argparse.Namespace) -> dict[str, Any]:
    """The run options as JSON values (paths absolute, so --resume works from anywhere).

    Architecture overrides and distillation settings are left out when unused, so a plain
    run records what runs recorded before those options existed (and their states resume).
    """
    values = {}
    for name in RUN_OPTIONS:
        value = getattr(args, name)
        if name in OPTIONAL_OPTIONS and (value is None or (
                name.startswith("distill_") and args.distill_from is None)):
            continue
        values[name] = str(Path(value).resolve()) if isinstance(value, Path) else value
    return values


def _apply_recorded(args: argparse.Namespace, out: Path) -> None:
    """Fill ``args`` from the interrupted run in ``out``; refuse options given differently."""
    from ..train.checkpoint import recorded_run, state_path

    if not state_path(out).is_file():
        finished = " (it holds a finished bundle)" if (out / "model.json").is_file() else ""
        raise PaceEdgeError(f"--resume: {out} holds no interrupted training run to continue "
                            f"({state_path(out).name} not found){finished}")
    recorded = recorded_run(out)["options"]
    defaults, given = _defaults(), _recorded(args)
    for name in RUN_OPTIONS:
        value = given.get(name, defaults[name])
        if value != defaults[name] and value != recorded.get(name):
            raise PaceEdgeError(
                f"--resume: {_option(name)} {value} differs from the interrupted run's "
                f"{recorded.get(name)}; leave it out to continue that run")
        value = recorded.get(name, defaults[name])
        setattr(args, name, Path(value) if name in PATH_OPTIONS and value else value)


class _StopRequest:
    """SIGINT/SIGTERM: the first asks training to stop after the current epoch (saving its
    state), a second stops at once."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, Any] = {}

    def __call__(self) -> bool:
        return self.requested

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print("pace-edge train: stopping after this epoch to save the training state "
              "(press Ctrl-C again to stop at once)", file=sys.stderr, flush=True)

    def __enter__(self) -> _StopRequest:
        if threading.current_thread() is threading.main_thread():
            self._previous = {s: signal.signal(s, self._on_signal)
                              for s in (signal.SIGINT, signal.SIGTERM)}
        return self

    def __exit__(self, *exc: object) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)


def _time_summary(result: Any, refit: bool, precise_bn: bool, resumed: bool) -> str:
    after = result.seconds - result.selection_seconds
    parts = [f"selection {result.selection_seconds:.0f} s"]
    if refit or precise_bn:
        parts.append(("refit" if refit else "") + (" and " if refit and precise_bn else "")
                     + ("precise BN" if precise_bn else "") + f" {after:.0f} s")
    return (f"training took {result.seconds:.0f} s in all ({' + '.join(parts)}"
            + (", counting the time before the interruption" if resumed else "") + ")")


def _architecture(args: argparse.Namespace, config: Any) -> str:
    """``small`` or ``small (dim 64, depth 2)`` for the progress line."""
    changed = [f"{name} {getattr(config, name)}" for name in ARCHITECTURE_OPTIONS
               if getattr(args, name) is not None]
    return args.preset + (f" ({', '.join(changed)})" if changed else "")


def _teacher(args: argparse.Namespace, pipeline: Any, axis: Any) -> Any:
    """The ``--distill-from`` teacher, or ``None``. The student takes the teacher's
    preprocessing; a ``--preprocess`` other than the default must be the same."""
    if args.distill_from is None:
        return None
    from ..bundle import Bundle
    from ..train.distill import DistillSettings, Teacher

    bundle = Bundle.load(args.distill_from)
    if (args.preprocess != _defaults()["preprocess"]
            and pipeline.anchored(axis) != bundle.preprocessing):
        raise PaceEdgeError(f"--preprocess {args.preprocess!r} differs from the teacher's "
                            f"preprocessing; leave it out to use the teacher's")
    return Teacher(bundle, DistillSettings(args.distill_temperature, args.distill_alpha),
                   device=args.device)


def run(args: argparse.Namespace) -> int:
    from ..data import load_dataset
    from ..evaluate.scoring import judge_bundle
    from ..evaluate.trust_report import trust_text
    from ..model import preset
    from ..preprocess import Pipeline
    from ..train import Recipe
    from ..train.bundle_training import train_bundle
    from ..train.checkpoint import Checkpoint, TrainingInterrupted, data_digest
    from .progress import TrainingProgress

    out: Path = args.out
    created = not out.exists()
    if args.resume:
        _apply_recorded(args, out)
    if args.data is None:
        raise PaceEdgeError("--data is required (unless --resume continues an interrupted run)")
    if args.lr <= 0:
        raise PaceEdgeError(f"--lr must be positive, got {args.lr:g}")
    if args.patience < 0:
        raise PaceEdgeError(f"--patience must be 0 or more, got {args.patience}")
    spec = args.preprocess.strip()
    pipeline = Pipeline([]) if spec in ("", "none") else Pipeline.from_spec(spec)
    if not any(step.name == "normalize" and getattr(step, "method", "") in ("snv", "minmax")
               for step in pipeline.steps):
        print(GAIN_WARNING, file=sys.stderr)
    data = load_dataset(args.data, split="train", groups=args.groups)
    teacher = _teacher(args, pipeline, data.axis)
    if teacher is not None:
        pipeline = teacher.bundle.preprocessing
    held_out = load_dataset(args.eval, split="test") if args.eval else None
    if held_out is not None and data.groups is not None and held_out.groups is not None:
        shared = sorted(set(data.groups) & set(held_out.groups))
        if shared:
            print(f"warning: {len(shared)} group(s) have spectra in both the training data "
                  f"and {held_out.source} (e.g. {shared[0]!r}); the held-out accuracy then "
                  f"overstates accuracy on new samples")
    recipe = Recipe(
        epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
        weight_decay=args.weight_decay, label_smoothing=args.label_smoothing,
        val_fraction=args.val_fraction, patience=args.patience, seed=args.seed,
        augment=args.augment, refit=args.refit, device=args.device,
        select_window=args.select_window, select_folds=args.select_folds,
        precise_bn=args.precise_bn, calibration_fraction=args.calibration_fraction,
        accept_rate=args.accept_rate,
    )
    recipe.validate()
    config = preset(args.preset, num_classes=len(data.classes),
                    **{name: getattr(args, name) for name in ARCHITECTURE_OPTIONS
                       if getattr(args, name) is not None})
    run_record = {"options": _recorded(args), "data_sha256": data_digest(data.x, data.y)}
    if teacher is not None:
        run_record["teacher_sha256"] = teacher.record()["teacher"]["weights_sha256"]
    checkpoint = Checkpoint(out, run_record)
    if args.resume:
        checkpoint.load()
    elif checkpoint.exists():
        raise PaceEdgeError(f"{out} holds an interrupted training run: continue it with "
                            f"'pace-edge train --out {out} --resume', or delete "
                            f"{checkpoint.path} to start over")
    writable_dir(out, "bundle")
    try:
        state = checkpoint.state or {}
        where = (f", continuing after {state['stage']} epoch {state['epoch']}"
                 if args.resume else "")
        print(f"training {_architecture(args, config)} PACE on {len(data)} spectra x "
              f"{data.x.shape[1]} points, {len(data.classes)} classes "
              f"({', '.join(data.classes)})"
              + (f", distilled from {args.distill_from} (T={args.distill_temperature:g}, "
                 f"alpha={args.distill_alpha:g})" if teacher is not None else "")
              + (f", {data.n_groups} groups (splits keep each group on one side)"
                 if data.groups is not None else "") + where, flush=True)
        try:
            with _StopRequest() as stop, TrainingProgress(
                    quiet=args.quiet, elapsed_before=state.get("elapsed", 0.0)) as progress:
                bundle, result = train_bundle(data, config, recipe, pipeline,
                                              on_epoch=progress.update,
                                              checkpoint=checkpoint, stop=stop,
                                              teacher=teacher)
        except TrainingInterrupted as exc:
            print(f"pace-edge train: interrupted after {exc.stage} epoch {exc.epoch}; the state "
                  f"is saved in {checkpoint.path}. Continue with: "
                  f"pace-edge train --out {out} --resume", file=sys.stderr)
            return EXIT_INTERRUPTED
        averaged = (f", averaged over {recipe.select_window} epochs"
                    if recipe.select_window > 1 else "")
        held = (f"{recipe.select_folds}-fold, mean over {result.split['validation']} spectra"
                if recipe.select_folds > 1 else f"{result.split['validation']} spectra")
        if result.split.get("group_aware"):
            held += (f", {result.split['groups']} groups, each in one fold"
                     if recipe.select_folds > 1 else
                     f" from {result.split['groups_per_part'][1]} of {result.split['groups']} "
                     f"groups, none also in training")
        calibration_spectra = bundle.training["data"]["split"].get("calibration", 0)
        print(f"selected epoch {result.best_epoch} of {result.epochs_run}: validation accuracy "
              f"{result.val_accuracy:.2%} ({held}{averaged})"
              + (f"; refit on the {len(data) - calibration_spectra} spectra outside the "
                 f"calibration share for {result.refit_epochs} epochs"
                 if result.refit_epochs else "")
              + ("; BatchNorm statistics recomputed on the training spectra"
                 if recipe.precise_bn else ""))
        print(_time_summary(result, bool(result.refit_epochs), recipe.precise_bn, args.resume))
        trust = bundle.training["trust"]
        calibration = trust["calibration"]
        if calibration.get("spectra"):
            print(f"calibrated on {calibration['spectra']} held-out training spectra: "
                  f"temperature {trust['temperature']:.3g} (calibration error "
                  f"{calibration['ece_before']:.3f} -> {calibration['ece_after']:.3f}), "
                  f"'unknown' threshold {trust['detector']['threshold']:.4g} for an accept "
                  f"rate of {recipe.accept_rate:.0%}")
        if held_out is not None:
            scored, summary, _ = judge_bundle(bundle, held_out)
            bundle.training["metrics"]["test"] = {"source": held_out.source, **scored.to_dict(),
                                                  "trust": summary}
            print(f"held-out accuracy {scored.accuracy:.2%} ({scored.correct}/{scored.total}) "
                  f"on {held_out.source}")
            print(trust_text(summary))
        bundle.save(out)
        checkpoint.remove()
        print(f"bundle written to {out}")
        return 0
    finally:  # never leave behind an empty folder that the run created
        if created and out.is_dir() and not any(out.iterdir()):
            out.rmdir()
