"""Fit the trust record (temperature, "unknown" detector, threshold) of an existing bundle
whose recipe held calibration spectra out (``calibration_fraction`` > 0) but that was trained
before trust fitting existed: the calibration spectra are recovered from the recipe's seeded
split, so the result is what ``pace-edge train`` records today. Rewrites the bundle.

    python scripts/attach_trust.py --model runs/cov-snv-s0 --data ../shared/datasets/cov
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pace_edge.bundle import Bundle
from pace_edge.data import load_dataset
from pace_edge.errors import PaceEdgeError
from pace_edge.model import build_model
from pace_edge.train import Recipe
from pace_edge.train.bundle_training import calibration_split
from pace_edge.train.trust_fit import fit_trust


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", type=Path, required=True)
    p.add_argument("--data", type=Path, required=True, help="the training data of the bundle")
    args = p.parse_args(argv)
    bundle = Bundle.load(args.model)
    recipe = Recipe.from_dict(bundle.training["recipe"])
    if recipe.calibration_fraction == 0:
        raise PaceEdgeError(f"{args.model}: its recipe held no calibration spectra out")
    data = load_dataset(args.data, split="train")
    if data.classes != bundle.classes or len(data) != bundle.training["data"]["spectra"]:
        raise PaceEdgeError(f"{args.data} is not the data {args.model} was trained on")
    x, _ = bundle.preprocessing.apply(data.x, data.axis)
    fit_idx, cal_idx = calibration_split(data.y, recipe, data.groups, data.classes)
    model = build_model(bundle.config, bundle.weights)
    trust, arrays = fit_trust(model, x[fit_idx], data.y[fit_idx], x[cal_idx], data.y[cal_idx],
                              data.x[cal_idx], recipe.accept_rate)
    bundle.weights.update(arrays)
    bundle.training["trust"] = trust.to_dict()
    bundle.save(args.model)
    print(f"{args.model}: temperature {trust.temperature:.3g}, threshold {trust.threshold:.4g}, "
          f"calibration {trust.calibration}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
