"""Measure the "unknown" answer: leave-one-class-out on a labelled data set, and a trained
bundle against synthetic spectra, dark, flat and saturated frames and heavy fluorescence.

Leave-one-class-out: for each class, train with the default recipe on the training split
without it, then score the known classes' test spectra (in distribution) against every
spectrum of the left-out class (train and test split: the model never saw any). Candidate
scores, each with its threshold set on the same held-out calibration spectra at the same
accept rate: the deployed Mahalanobis detector, 1-nearest-neighbour distance in feature space,
energy and maximum softmax probability. AUROC and the false-accept rate (share of unknown
spectra accepted) at the calibrated threshold.

    python scripts/measure_unknown.py --data ../shared/datasets/cov --preset paper --seed 0 \\
        --model runs/cov-snv-s0 --json runs/unknown.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from pace_edge.data import SpectralDataset, load_dataset, make_synthetic
from pace_edge.evaluate.classifier import BundleClassifier
from pace_edge.model import preset
from pace_edge.preprocess import Pipeline
from pace_edge.train import Recipe
from pace_edge.train.bundle_training import calibration_split, train_bundle
from pace_edge.trust import accept_threshold
from pace_edge.trust.ood import auroc, energy_score, knn_score, msp_score


def _subset(data: SpectralDataset, keep: np.ndarray, classes: list[int]) -> SpectralDataset:
    remap = {c: i for i, c in enumerate(classes)}
    return SpectralDataset(data.x[keep], np.array([remap[int(v)] for v in data.y[keep]]),
                           data.axis, [data.classes[c] for c in classes], data.source)


def _scores(clf: BundleClassifier, x: np.ndarray, axis: np.ndarray,
            fit_feats: np.ndarray) -> dict[str, np.ndarray]:
    logits, feats = clf.logits_and_features(clf.preprocess(x, axis))
    return {"mahalanobis": clf.detector.score(feats), "knn1": knn_score(fit_feats, feats, 1),
            "energy": energy_score(logits), "msp": msp_score(logits)}


def leave_one_class_out(train: SpectralDataset, test: SpectralDataset, recipe: Recipe,
                        name: str, pipeline: Pipeline) -> list[dict[str, Any]]:
    rows = []
    for left in range(len(train.classes)):
        known = [c for c in range(len(train.classes)) if c != left]
        sub = _subset(train, np.isin(train.y, known), known)
        start = time.perf_counter()
        bundle, _ = train_bundle(sub, preset(name, len(known)), recipe, pipeline)
        clf = BundleClassifier(bundle)
        fit_idx, cal_idx = calibration_split(sub.y, recipe)
        _, fit_feats = clf.logits_and_features(clf.preprocess(sub.x[fit_idx], sub.axis))
        cal = _scores(clf, sub.x[cal_idx], sub.axis, fit_feats)
        id_x = test.x[np.isin(test.y, known)]
        ood_x = np.concatenate([train.x[train.y == left], test.x[test.y == left]])
        ind = _scores(clf, id_x, test.axis, fit_feats)
        ood = _scores(clf, ood_x, test.axis, fit_feats)
        # the deployed verdict: physical checks, then the detector at the stored threshold
        id_v, _ = clf.judge(id_x, test.axis)
        ood_v, _ = clf.judge(ood_x, test.axis)
        row: dict[str, Any] = {"unknown": train.classes[left], "in": len(id_x),
                               "out": len(ood_x), "seconds": round(time.perf_counter() - start),
                               "deployed": {"accepted_in": float(id_v.accepted.mean()),
                                            "false_accept": float(ood_v.accepted.mean())}}
        for key in ind:
            t = accept_threshold(cal[key], recipe.accept_rate)
            row[key] = {"auroc": auroc(ind[key], ood[key]),
                        "accepted_in": float((ind[key] <= t).mean()),
                        "false_accept": float((ood[key] <= t).mean())}
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def shifted_sets(test: SpectralDataset, seed: int) -> dict[str, np.ndarray]:
    """Spectra no model of ``test``'s classes should accept, on ``test``'s axis."""
    rng = np.random.default_rng(seed)
    x, axis = test.x, test.axis
    n, length = x.shape
    span = np.ptp(x, axis=1, keepdims=True)
    u = (axis - axis[0]) / (axis[-1] - axis[0])
    offsets = rng.uniform(500, 2000, (n, 1))
    gains = rng.uniform(2000, 20000, (n, 1))
    clipped = x.copy()
    top = x.min(1, keepdims=True) + 0.6 * span
    clipped = np.minimum(clipped, top)
    fluorescence = np.stack([np.exp(-((u - c) / w) ** 2) for c, w in
                             zip(rng.uniform(0.2, 1.2, n), rng.uniform(0.4, 1.0, n),
                                 strict=True)])
    synthetic = make_synthetic(n_per_class=max(1, n // 3), axis=axis, seed=seed).x
    return {
        "synthetic Raman spectra (other peaks)": synthetic,
        "dark frames (offset + read noise)": offsets + rng.normal(0, 3, (n, length)),
        "flat frames": np.repeat(offsets, length, axis=1),
        "saturated (clipped at 60 % of range)": gains * clipped + offsets,
        "fluorescence background 3x the Raman range": x + 3 * span * fluorescence,
        "fluorescence background 10x the Raman range": x + 10 * span * fluorescence,
    }


def shifts(bundle_dir: Path, train: SpectralDataset, test: SpectralDataset,
           seed: int) -> list[dict[str, Any]]:
    from pace_edge.bundle import Bundle

    bundle = Bundle.load(bundle_dir)
    clf = BundleClassifier(bundle)
    recipe = Recipe.from_dict(bundle.training["recipe"])
    fit_idx, _ = calibration_split(train.y, recipe)
    _, fit_feats = clf.logits_and_features(clf.preprocess(train.x[fit_idx], train.axis))
    id_scores = _scores(clf, test.x, test.axis, fit_feats)
    rng = np.random.default_rng(seed + 1)
    gain = rng.uniform(0.7, 1.3, (len(test), 1)) * 5000
    offset = rng.uniform(100, 1000, (len(test), 1))
    sets = {"test spectra (in distribution)": test.x,
            "test spectra as counts, gain ±30 % and offset": gain * test.x + offset,
            **shifted_sets(test, seed)}
    rows = []
    for label, x in sets.items():
        v, logits = clf.judge(x, test.axis)
        reasons: dict[str, int] = {}
        for r in v.reasons:
            if r is not None:
                reasons[r] = reasons.get(r, 0) + 1
        row: dict[str, Any] = {"set": label, "spectra": len(x),
                               "accepted": float(v.accepted.mean()), "refused_by": reasons}
        if label.startswith("test"):
            row["accuracy"] = float((logits.argmax(1) == test.y).mean())
        else:
            scores = _scores(clf, x, test.axis, fit_feats)
            row["auroc"] = {k: auroc(id_scores[k], scores[k]) for k in scores}
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def runtimes(bundle_dir: Path, exports: list[str], test: SpectralDataset,
             seed: int) -> list[dict[str, Any]]:
    """AUROC of the detector score (in distribution: the test spectra; unknown: the shift
    sets the physical checks pass) and accept/refuse agreement with PyTorch, per runtime."""
    from pace_edge.runtimes import load_runner
    from pace_edge.trust.ood import auroc

    sets = {k: v for k, v in shifted_sets(test, seed).items()
            if k.startswith(("synthetic", "fluorescence"))}
    x = np.concatenate([test.x, *sets.values()])
    n_in = len(test.x)
    rows, reference = [], None
    for spec in [f"{bundle_dir}:torch", *exports]:
        path, backend = spec.rsplit(":", 1)
        with load_runner(path, backend=backend, threads=2) as runner:
            v = runner.judge(x, test.axis)
        row = {"runtime": f"{backend} {runner.precision}", "export": path,
               "auroc": {}, "accepted_in": float(v.accepted[:n_in].mean())}
        start = n_in
        for name, ood in sets.items():
            row["auroc"][name] = auroc(v.scores[:n_in], v.scores[start:start + len(ood)])
            start += len(ood)
        if reference is None:
            reference = v
        row["same_verdict_as_torch"] = float((v.accepted == reference.accepted).mean())
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--preset", default="paper")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int, default=Recipe().epochs)
    p.add_argument("--preprocess", default="normalize:snv")
    p.add_argument("--model", type=Path, help="a bundle of all classes for the shift sets")
    p.add_argument("--skip-loco", action="store_true")
    p.add_argument("--exports", nargs="*", default=[], metavar="DIR:BACKEND",
                   help="exports of --model to compare, e.g. build-x86:openvino")
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    train = load_dataset(args.data, split="train")
    test = load_dataset(args.data, split="test")
    recipe = Recipe(seed=args.seed, epochs=args.epochs)
    out: dict[str, Any] = {"data": str(args.data), "preset": args.preset, "seed": args.seed,
                           "recipe": recipe.to_dict(), "preprocess": args.preprocess}
    if not args.skip_loco:
        out["leave_one_class_out"] = leave_one_class_out(
            train, test, recipe, args.preset, Pipeline.from_spec(args.preprocess))
    if args.model:
        out["shifts"] = shifts(args.model, train, test, args.seed)
        out["runtimes"] = runtimes(args.model, args.exports, test, args.seed)
    if args.json:
        args.json.write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
