"""Choose the "unknown" detector's score on training spectra only (the test split is not read).

For a trained bundle, the features of its fitted spectra (the ones the final model was trained
on) and of its held-out calibration spectra (never seen by any fit) are scored by candidate
detectors: Mahalanobis with the Ledoit–Wolf covariance on all feature dimensions (the first
deployed one), with stronger shrinkage, and on the top-k principal components of the
class-centred fitted features. Per candidate:

- ``seen_vs_unseen``: AUROC of calibration scores against fitted-spectra scores; 0.5 means the
  score does not tell spectra the model was trained on from new ones of the same classes (what
  a threshold set on the calibration spectra assumes of the spectra it will see), 1.0 means
  the fitted features are much tighter than new ones;
- ``loo_accept``: leave-one-out acceptance of the calibration spectra, each scored against the
  threshold the other calibration spectra give (at the bundle's accept rate);
- ``loo_accept_stream``: the same for the calibration spectra served as a spectrometer would
  (the emulator's 1024-pixel axis, gain 0.7-1.3x, offset, shot and read noise; the stream
  end-to-end test's model of the instrument), against thresholds from the clean ones;
- ``auroc``: calibration spectra against spectra derived from them that no model of these
  classes should accept (other substances, heavy fluorescence, dark, flat, clipped).

Temperature scaling, checked the same way: leave-one-out over the calibration spectra (the
temperature fitted on the others, applied to the one left out), negative log-likelihood, Brier
score and expected calibration error (10 and 5 bins) with and without it.

    python scripts/choose_detector.py --model runs/small-cov --data ../shared/datasets/cov
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from measure_unknown import shifted_sets  # noqa: E402

from pace_edge.bundle import Bundle  # noqa: E402
from pace_edge.data import SpectralDataset, load_dataset  # noqa: E402
from pace_edge.evaluate.classifier import BundleClassifier  # noqa: E402
from pace_edge.streaming import spectral_axis  # noqa: E402
from pace_edge.streaming.emulator.emulator import default_coefficients  # noqa: E402
from pace_edge.train import Recipe  # noqa: E402
from pace_edge.train.bundle_training import calibration_split  # noqa: E402
from pace_edge.trust import (  # noqa: E402
    MahalanobisDetector,
    accept_threshold,
    expected_calibration_error,
    fit_temperature,
    scaled_softmax,
)
from pace_edge.trust.ood import auroc  # noqa: E402

LASER_NM = 785.0
FULL_SCALE = 2.0**14 - 1


def as_counts(x: np.ndarray, axis: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``x`` as an emulated OBP spectrometer serves it (tests/test_trust_stream.py's model):
    on its 1024-pixel axis, each spectrum with its own gain and offset, shot and read noise."""
    rng = np.random.default_rng(seed)
    device = spectral_axis.SpectralAxis.from_coefficients(
        [float(np.float32(c)) for c in default_coefficients(1024)], 1024, LASER_NM).axis
    lo, hi = np.percentile(x, [0.5, 99.9])
    scale = 0.4 * FULL_SCALE / float(hi - lo)
    out = []
    for row in x:
        gain = scale * rng.uniform(0.7, 1.3)
        offset = rng.uniform(0.0, 0.1) * scale
        signal = np.maximum((np.interp(device, axis, row) - lo) * gain + offset, 0.0)
        out.append(rng.poisson(signal) + 0.04 * FULL_SCALE + rng.normal(0, 4.0, signal.size))
    return np.asarray(out), device


def candidates(f_fit: np.ndarray, y_fit: np.ndarray) -> dict[str, MahalanobisDetector]:
    out = {"ledoit-wolf, all dims": MahalanobisDetector.fit(f_fit, y_fit)}
    for alpha in (0.1, 0.25, 0.5, 0.75, 0.9):
        out[f"shrinkage {alpha:g}, all dims"] = MahalanobisDetector.fit(f_fit, y_fit,
                                                                        shrinkage=alpha)
    for k in (2, 4, 8, 16, 32):
        if k < f_fit.shape[1]:
            out[f"top {k} components"] = MahalanobisDetector.fit(f_fit, y_fit, components=k)
    return out


def temperature_check(z: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    """Leave-one-out temperature scaling on held-out logits ``z`` with labels ``y``."""
    loo = np.zeros_like(z, dtype=np.float64)
    temps = []
    for i in range(len(y)):
        keep = np.arange(len(y)) != i
        t = fit_temperature(z[keep], y[keep])
        temps.append(t)
        loo[i] = scaled_softmax(z[i : i + 1], t)[0]
    out: dict[str, Any] = {"spectra": len(y), "temperature_all": fit_temperature(z, y),
                           "temperature_loo_range": [min(temps), max(temps)]}
    for name, p in (("T=1", scaled_softmax(z)), ("T fitted (leave-one-out)", loo)):
        onehot = np.eye(z.shape[1])[y]
        out[name] = {"nll": float(-np.log(np.maximum(p[np.arange(len(y)), y], 1e-300)).mean()),
                     "brier": float(((p - onehot) ** 2).sum(1).mean()),
                     "ece10": expected_calibration_error(p, y, 10),
                     "ece5": expected_calibration_error(p, y, 5),
                     "mean_confidence": float(p.max(1).mean()),
                     "accuracy": float((p.argmax(1) == y).mean())}
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", type=Path, required=True)
    p.add_argument("--data", type=Path, required=True, help="the bundle's training data")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    bundle = Bundle.load(args.model)
    clf = BundleClassifier(bundle)
    recipe = Recipe.from_dict(bundle.training["recipe"])
    train = load_dataset(args.data, split="train")
    fit_idx, cal_idx = calibration_split(train.y, recipe, train.groups, train.classes)
    _, f_fit = clf.logits_and_features(clf.preprocess(train.x[fit_idx], train.axis))
    y_fit = train.y[fit_idx]
    x_cal = train.x[cal_idx]
    z_cal, f_cal = clf.logits_and_features(clf.preprocess(x_cal, train.axis))
    counts, device = as_counts(x_cal, train.axis, args.seed)
    _, f_stream = clf.logits_and_features(clf.preprocess(counts, device))
    cal = SpectralDataset(x_cal, train.y[cal_idx], train.axis, train.classes, train.source)
    shifts = {}
    for name, x in shifted_sets(cal, args.seed).items():
        shifts[name] = clf.logits_and_features(clf.preprocess(x, train.axis))[1]
    rate = recipe.accept_rate
    rows: list[dict[str, Any]] = []
    for name, det in candidates(f_fit, y_fit).items():
        s_fit, s_cal, s_stream = det.score(f_fit), det.score(f_cal), det.score(f_stream)
        keep = np.ones(len(s_cal), bool)
        loo, loo_stream = [], []
        for i in range(len(s_cal)):
            keep[i] = False
            t = accept_threshold(s_cal[keep], rate)
            keep[i] = True
            loo.append(s_cal[i] <= t)
            loo_stream.append(s_stream[i] <= t)
        row = {"detector": name, "dim": det.dim,
               "seen_vs_unseen": round(auroc(s_fit, s_cal), 3),
               "loo_accept": round(float(np.mean(loo)), 3),
               "loo_accept_stream": round(float(np.mean(loo_stream)), 3),
               "auroc": {k: round(auroc(s_cal, det.score(v)), 3) for k, v in shifts.items()}}
        rows.append(row)
        print(json.dumps(row), flush=True)
    temperature = temperature_check(z_cal, train.y[cal_idx])
    print(json.dumps({"temperature": temperature}), flush=True)
    if args.json:
        args.json.write_text(json.dumps({"model": str(args.model), "calibration": len(cal_idx),
                                         "fitted": len(fit_idx), "rows": rows,
                                         "temperature": temperature}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
