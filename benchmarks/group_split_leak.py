"""How much a spectrum-level validation split overstates accuracy when samples repeat.

SYNTHETIC data (:func:`pace_edge.data.make_grouped_synthetic`): several spectra per sample, each
sample with its own band amplitudes and background. For each seed the same model and recipe are
trained twice on the same training samples, choosing the epoch on

* a random stratified split of the spectra (the default without group ids), and
* a group split (whole samples on one side, what ``train`` does with group ids),

and each selected model is scored on new samples (another seed's data: no shared sample).
A trustworthy validation accuracy is close to the accuracy on new samples.

    python benchmarks/group_split_leak.py --seeds 0 1 2

Prints one row per seed and split and the mean gap (validation minus new samples).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from pace_edge.data import make_grouped_synthetic
from pace_edge.evaluate.groups import GroupMetrics
from pace_edge.model import preset
from pace_edge.preprocess import Pipeline
from pace_edge.train import Recipe
from pace_edge.train.trainer import fit


def run(seed: int, args: argparse.Namespace, group_aware: bool) -> dict[str, float]:
    train = make_grouped_synthetic(args.samples, args.spectra, sample_effect=args.effect,
                                   seed=seed)
    new = make_grouped_synthetic(args.test_samples, args.spectra, sample_effect=args.effect,
                                 seed=10_000 + seed)
    pipeline = Pipeline.from_spec(args.preprocess).anchored(train.axis)
    xt, axis = pipeline.apply(train.x, train.axis)
    xn, _ = pipeline.apply(new.x, new.axis)
    prepared = type(train)(xt, train.y, axis, train.classes, train.source,
                           groups=train.groups if group_aware else None)
    recipe = Recipe(epochs=args.epochs, batch_size=32, seed=seed, refit=False,
                    precise_bn=True, val_fraction=0.2)
    start = time.perf_counter()
    result = fit(prepared, preset(args.preset, len(train.classes)), recipe)
    with torch.inference_mode():
        predicted = result.model(torch.as_tensor(xn, dtype=torch.float32)).argmax(1).numpy()
    votes = GroupMetrics.from_labels(new.y, predicted, new.groups, new.classes)
    return {"seed": seed, "split": "group" if group_aware else "random",
            "best_epoch": result.best_epoch, "validation": result.val_accuracy,
            "new_samples": float((predicted == new.y).mean()),
            "new_samples_by_vote": votes.accuracy, "seconds": time.perf_counter() - start}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--samples", type=int, default=12, help="training samples per class")
    p.add_argument("--test-samples", type=int, default=10, help="new samples per class")
    p.add_argument("--spectra", type=int, default=10, help="spectra per sample")
    p.add_argument("--effect", type=float, default=0.3, help="sample effect (log-amplitude sd)")
    p.add_argument("--preset", default="small")
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--preprocess", default="baseline:asls,normalize:snv")
    p.add_argument("--json", action="store_true", help="print rows as JSON lines")
    args = p.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    rows = []
    print(f"{'seed':>4} {'split':>7} {'epoch':>5} {'validation':>10} {'new samples':>11} "
          f"{'by vote':>8} {'s':>5}")
    for seed in args.seeds:
        for group_aware in (False, True):
            row = run(seed, args, group_aware)
            rows.append(row)
            if args.json:
                print(json.dumps(row))
            print(f"{row['seed']:>4} {row['split']:>7} {row['best_epoch']:>5} "
                  f"{row['validation']:>10.2%} {row['new_samples']:>11.2%} "
                  f"{row['new_samples_by_vote']:>8.2%} {row['seconds']:>5.0f}", flush=True)
    for split in ("random", "group"):
        mine = [r for r in rows if r["split"] == split]
        val = np.mean([r["validation"] for r in mine])
        new = np.mean([r["new_samples"] for r in mine])
        print(f"{split:>7} split: validation {val:.2%}, new samples {new:.2%}, "
              f"gap {100 * (val - new):+.1f} pp (mean of {len(mine)} seeds)")


if __name__ == "__main__":
    main()
