"""``pace-edge train``: fit a PACE model on labelled spectra and save a bundle."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import PaceEdgeError
from .common import fraction, positive_int, writable_dir

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
    p.add_argument("--data", required=True, type=Path,
                   help="training data: a cov-style .npy folder (train split), a wide CSV, "
                        "or a folder with one sub-folder of spectrum files per class")
    p.add_argument("--out", required=True, type=Path, help="bundle directory to write")
    p.add_argument("--preset", default="paper", choices=sorted(PRESETS),
                   help="architecture preset (default: paper)")
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
    p.add_argument("--calibration-fraction", type=float, default=d.calibration_fraction,
                   help="stratified share of the training spectra kept out of every fit to "
                        "calibrate the temperature and the 'unknown' threshold "
                        f"(default: {d.calibration_fraction:g}; 0 = none, no calibration)")
    p.add_argument("--accept-rate", type=fraction, default=d.accept_rate,
                   help="share of in-distribution spectra the 'unknown' detector accepts, "
                        f"set on the calibration spectra (default: {d.accept_rate:g})")
    p.add_argument("--eval", type=Path, default=None,
                   help="held-out data to score the selected model on after training "
                        "(a cov-style folder's test split); never used for selection")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..data import load_dataset
    from ..evaluate.trust_report import trust_text
    from ..model import preset
    from ..preprocess import Pipeline
    from ..train import Recipe
    from ..train.bundle_training import train_bundle
    from .progress import EpochBar
    from .scoring import judge_bundle

    if args.lr <= 0:
        raise PaceEdgeError(f"--lr must be positive, got {args.lr:g}")
    if args.patience < 0:
        raise PaceEdgeError(f"--patience must be 0 or more, got {args.patience}")
    spec = args.preprocess.strip()
    pipeline = Pipeline([]) if spec in ("", "none") else Pipeline.from_spec(spec)
    if not any(step.name == "normalize" and getattr(step, "method", "") in ("snv", "minmax")
               for step in pipeline.steps):
        print(GAIN_WARNING, file=sys.stderr)
    data = load_dataset(args.data, split="train")
    held_out = load_dataset(args.eval, split="test") if args.eval else None
    writable_dir(args.out, "bundle")
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
    config = preset(args.preset, num_classes=len(data.classes))
    print(f"training {args.preset} PACE on {len(data)} spectra x {data.x.shape[1]} points, "
          f"{len(data.classes)} classes ({', '.join(data.classes)})")
    with EpochBar(recipe.epochs) as bar:
        bundle, result = train_bundle(data, config, recipe, pipeline, on_epoch=bar.update)
    metrics = bundle.training["metrics"]
    calibration_spectra = bundle.training["data"]["split"].get("calibration", 0)
    averaged = (f", averaged over {recipe.select_window} epochs"
                if recipe.select_window > 1 else "")
    held = (f"{recipe.select_folds}-fold, mean over {result.split['validation']} spectra"
            if recipe.select_folds > 1 else f"{result.split['validation']} spectra")
    print(f"selected epoch {result.best_epoch}/{result.epochs_run}: validation accuracy "
          f"{result.val_accuracy:.2%} ({held}{averaged}), "
          f"{result.seconds:.0f} s"
          + (f"; refit on the {len(data) - calibration_spectra} spectra outside the "
             f"calibration share for "
             f"{result.refit_epochs} epochs"
             if result.refit_epochs else ""))
    calibration = bundle.training["trust"]["calibration"]
    if calibration.get("spectra"):
        trust = bundle.training["trust"]
        print(f"calibrated on {calibration['spectra']} held-out training spectra: temperature "
              f"{trust['temperature']:.3g} (calibration error {calibration['ece_before']:.3f} "
              f"-> {calibration['ece_after']:.3f}), 'unknown' threshold "
              f"{trust['detector']['threshold']:.4g} for an accept rate of "
              f"{recipe.accept_rate:.0%}")
    if held_out is not None:
        scored, trust_summary, _ = judge_bundle(bundle, held_out)
        metrics["test"] = {"source": held_out.source, **scored.to_dict(), "trust": trust_summary}
        print(f"held-out accuracy {scored.accuracy:.2%} ({scored.correct}/{scored.total}) "
              f"on {held_out.source}")
        print(trust_text(trust_summary))
    bundle.save(args.out)
    print(f"bundle written to {args.out}")
    return 0
