"""Precise BatchNorm without the test split, and weight averaging on top of it: the figures of
README.md's "Reproducing the paper on real serum Raman data" that follow "The effect shows
without the test split".

1. **Selection curve.** Replays the selection phase of ``pace-edge train --seed S`` (same
   stratified validation split, same seeded run, so the running-statistics column is the
   bundle's ``training.history``) and after every epoch scores the validation split twice: with
   the BatchNorm running statistics gathered during training, and with statistics recomputed on
   the un-augmented selection-training spectra (:func:`~pace_edge.train.trainer.
   precise_batchnorm`, on a copy, so the run itself is untouched). Prints the share of epochs
   ``--from-epoch``..end where recomputed scored better / worse, and the mean validation
   accuracy and loss over epochs ``--mean-from``..end either way.
2. **Weight averaging** (with ``--eval``). Repeats the refit on all training data for the
   selected epoch count and scores on ``--eval``'s test split: the final weights with running
   statistics (``--no-precise-bn``), with recomputed ones (the default recipe), an exponential
   moving average of the weights (``--ema-decay``, updated after every epoch) and the mean of
   the last 25 % and 50 % of the refit's epochs, each averaged model with recomputed
   statistics. The test split only measures: nothing here is chosen on it.

    PYTHONPATH=. python scripts/precise_bn_curve.py --data ../shared/datasets/cov --seed 0
    PYTHONPATH=. python scripts/precise_bn_curve.py --data ../shared/datasets/cov \
        --eval ../shared/datasets/cov --seeds 0 4 6          # + weight averaging on the test split

The default recipe on the paper preset, as the README's training loop runs it. ``--json FILE``
keeps every per-epoch score.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pace_edge.data import SpectralDataset, load_dataset, stratified_split
from pace_edge.model import preset
from pace_edge.model.pace import PACE
from pace_edge.preprocess import Pipeline
from pace_edge.train import Recipe
from pace_edge.train.bundle_training import calibration_split
from pace_edge.train.trainer import (
    REFIT_SEED_OFFSET,
    _evaluate,
    _Run,
    _tensors,
    precise_batchnorm,
)

TAILS = (0.25, 0.5)  # shares of the refit's last epochs whose weights are averaged


def prepared(data: SpectralDataset, pipeline: Pipeline) -> SpectralDataset:
    """``data`` through ``pipeline`` (anchored to the training axis by the caller)."""
    x, axis = pipeline.apply(data.x, data.axis)
    return SpectralDataset(x, data.y, axis, data.classes, data.source, data.names, data.groups)


def recomputed(model: PACE, x: torch.Tensor) -> PACE:
    """A copy of ``model`` with BatchNorm statistics recomputed on ``x``."""
    clone = copy.deepcopy(model)
    precise_batchnorm(clone, x)
    return clone


def selection_curve(train: SpectralDataset, config: Any, recipe: Recipe,
                    device: torch.device) -> tuple[list[dict[str, float]], dict[str, int]]:
    """Per epoch of the hold-out selection: validation accuracy and loss with running and with
    recomputed statistics. The split and the run are the ones ``fit`` makes for ``recipe``."""
    train_idx, val_idx = stratified_split(train.y, recipe.val_fraction, recipe.seed,
                                          groups=train.groups, classes=train.classes)
    xt, yt = _tensors(train, train_idx, device)
    xv, yv = _tensors(train, val_idx, device)
    run = _Run(config, recipe, device, recipe.seed)
    rows = []
    for epoch in range(1, recipe.epochs + 1):
        loss, _ = run.epoch(xt, yt)
        acc_run, loss_run = _evaluate(run.model, xv, yv)
        acc_pbn, loss_pbn = _evaluate(recomputed(run.model, xt), xv, yv)
        rows.append({"epoch": epoch, "train_loss": loss, "val_accuracy": acc_run,
                     "val_loss": loss_run, "val_accuracy_precise_bn": acc_pbn,
                     "val_loss_precise_bn": loss_pbn})
        if epoch % 10 == 0 or epoch == recipe.epochs:
            print(f"seed {recipe.seed} epoch {epoch}/{recipe.epochs}: validation {acc_run:.1%} "
                  f"running, {acc_pbn:.1%} recomputed", file=sys.stderr, flush=True)
    return rows, {"train": int(len(train_idx)), "validation": int(len(val_idx))}


def selected_epoch(rows: list[dict[str, float]]) -> int:
    """The epoch ``fit`` selects: best validation accuracy (running statistics, as training
    scores it), ties to the lower validation loss, then the earlier epoch."""
    best = max(rows, key=lambda r: (r["val_accuracy"], -r["val_loss"], -r["epoch"]))
    return int(best["epoch"])


def curve_summary(rows: list[dict[str, float]], from_epoch: int,
                  mean_from: int) -> dict[str, float]:
    window = [r for r in rows if r["epoch"] >= from_epoch]
    late = [r for r in rows if r["epoch"] >= mean_from]
    if not window or not late:
        raise SystemExit(f"no epochs from {min(from_epoch, mean_from)} on: train for more")
    better = sum(r["val_accuracy_precise_bn"] > r["val_accuracy"] for r in window)
    worse = sum(r["val_accuracy_precise_bn"] < r["val_accuracy"] for r in window)
    return {
        "epochs_compared": len(window), "from_epoch": from_epoch, "mean_from": mean_from,
        "share_better": better / len(window), "share_worse": worse / len(window),
        "mean_val_accuracy_running": float(np.mean([r["val_accuracy"] for r in late])),
        "mean_val_accuracy_precise_bn": float(np.mean(
            [r["val_accuracy_precise_bn"] for r in late])),
        "mean_val_loss_running": float(np.mean([r["val_loss"] for r in late])),
        "mean_val_loss_precise_bn": float(np.mean([r["val_loss_precise_bn"] for r in late])),
    }


def _floats(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A detached copy of ``state``'s floating-point entries (weights and BatchNorm
    statistics; the statistics are recomputed after averaging anyway)."""
    return {k: v.detach().clone() for k, v in state.items() if v.is_floating_point()}


def refit_variants(train: SpectralDataset, config: Any, recipe: Recipe, epochs: int,
                   device: torch.device, ema_decay: float) -> dict[str, PACE]:
    """The refit ``fit`` runs for ``epochs`` epochs, and the averaged models beside it."""
    xa, ya = _tensors(train, slice(None), device)
    refit = _Run(config, recipe, device, recipe.seed + REFIT_SEED_OFFSET, t_max=epochs)
    ema: dict[str, torch.Tensor] = {}
    starts = {share: epochs - max(1, math.floor(share * epochs)) + 1 for share in TAILS}
    sums: dict[float, dict[str, torch.Tensor]] = {share: {} for share in TAILS}
    for epoch in range(1, epochs + 1):
        refit.epoch(xa, ya)
        state = _floats(refit.model.state_dict())
        ema = state if not ema else {k: ema_decay * ema[k] + (1 - ema_decay) * v
                                     for k, v in state.items()}
        for share, start in starts.items():
            if epoch >= start:
                sums[share] = state if not sums[share] else {
                    k: sums[share][k] + v for k, v in state.items()}
    final = refit.model.eval()
    models = {"running statistics (--no-precise-bn)": copy.deepcopy(final),
              "precise BN (default)": recomputed(final, xa)}

    def from_state(state: dict[str, torch.Tensor]) -> PACE:
        model = copy.deepcopy(final)
        model.load_state_dict(state, strict=False)  # integer counters stay as they are
        return recomputed(model, xa)

    models[f"EMA of weights (decay {ema_decay:g}/epoch) + precise BN"] = from_state(ema)
    for share, start in starts.items():
        n = epochs - start + 1
        mean = {k: v / n for k, v in sums[share].items()}
        models[f"mean of last {share:.0%} of epochs ({n}) + precise BN"] = from_state(mean)
    return models


def score(model: PACE, data: SpectralDataset) -> tuple[int, int]:
    with torch.inference_mode():
        x = torch.as_tensor(data.x, dtype=torch.float32)
        predicted = torch.cat([model(x[i:i + 256]) for i in range(0, len(x), 256)]).argmax(1)
    return int((predicted.numpy() == data.y).sum()), len(data)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, help="training data (cov-style folder: train split)")
    p.add_argument("--eval", help="held-out data (test split): adds the refit's weight "
                   "averaging, scored there")
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--preset", default="paper")
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--preprocess", default="", help="as pace-edge train (default: none)")
    p.add_argument("--from-epoch", type=int, default=20,
                   help="first epoch of the better/worse count (default: 20)")
    p.add_argument("--mean-from", type=int, default=50,
                   help="first epoch of the mean validation accuracy and loss (default: 50)")
    p.add_argument("--ema-decay", type=float, default=0.9,
                   help="weight EMA decay per refit epoch (default: 0.9)")
    p.add_argument("--calibration-fraction", type=float, default=0.0,
                   help="share of the training spectra kept out of every fit, as pace-edge "
                        "train's option (default: 0, as when README's figures were measured; "
                        "train's default is 0.1)")
    p.add_argument("--json", type=Path, help="write every per-epoch score and result here")
    args = p.parse_args(argv)
    if not 0.0 < args.ema_decay < 1.0:
        p.error("--ema-decay must be in (0, 1)")
    device = torch.device("cpu")
    data = load_dataset(args.data, split="train")
    pipeline = (Pipeline.from_spec(args.preprocess) if args.preprocess
                else Pipeline([])).anchored(data.axis)
    train = prepared(data, pipeline)
    test = prepared(load_dataset(args.eval, split="test"), pipeline) if args.eval else None
    config = preset(args.preset, len(train.classes))
    results = []
    for seed in args.seeds:
        recipe = Recipe(epochs=args.epochs, seed=seed,
                        calibration_fraction=args.calibration_fraction)
        fit_idx, _ = calibration_split(train.y, recipe, train.groups, train.classes)
        fitted = train.subset(fit_idx)
        start = time.perf_counter()
        rows, split = selection_curve(fitted, config, recipe, device)
        summary = curve_summary(rows, args.from_epoch, args.mean_from)
        best = selected_epoch(rows)
        print(f"seed {seed}: validation split {split['validation']} spectra; precise BN "
              f"scored better at {summary['share_better']:.0%} and worse at "
              f"{summary['share_worse']:.0%} of epochs {args.from_epoch}-{args.epochs}; "
              f"mean validation accuracy over epochs {args.mean_from}-{args.epochs} "
              f"{summary['mean_val_accuracy_running']:.1%} -> "
              f"{summary['mean_val_accuracy_precise_bn']:.1%}, validation loss "
              f"{summary['mean_val_loss_running']:.2f} -> "
              f"{summary['mean_val_loss_precise_bn']:.2f}; selected epoch {best}", flush=True)
        result: dict[str, Any] = {"seed": seed, "split": split, "selected_epoch": best,
                                  "summary": summary, "epochs": rows}
        if test is not None:
            scores = {}
            for name, model in refit_variants(fitted, config, recipe, best, device,
                                              args.ema_decay).items():
                correct, total = score(model, test)
                scores[name] = {"correct": correct, "total": total}
                print(f"seed {seed}: refit {best} epochs, {name}: test {correct}/{total} "
                      f"({correct / total:.2%})", flush=True)
            result["test"] = scores
        result["seconds"] = time.perf_counter() - start
        results.append(result)
    if args.json:
        args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()},
                                         "results": results}, indent=1))


if __name__ == "__main__":
    main()
