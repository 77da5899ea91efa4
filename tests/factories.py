"""Models and bundles for tests: PACE with non-trivial BatchNorms, saved as real bundles.

Imported by test modules (pytest does not collect it). Needs torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from pace_edge.bundle import Bundle
from pace_edge.model import PACE, preset
from pace_edge.preprocess import Pipeline


def random_pace(name: str = "tiny", classes: int = 3, seed: int = 0) -> PACE:
    """A PACE whose BatchNorm statistics and affine terms are randomised, so folding them
    into the convolutions is a real test."""
    torch.manual_seed(seed)
    model = PACE(preset(name, classes))
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm1d):
                m.running_mean.uniform_(-1, 1)
                m.running_var.uniform_(0.5, 2)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
    return model.eval()


def save_bundle(
    directory: Path,
    model: PACE,
    axis: np.ndarray,
    pipeline: Pipeline | None = None,
    classes: Sequence[str] | None = None,
) -> Bundle:
    """Save ``model`` as a bundle on ``axis`` and load it back (hash-verified)."""
    names = list(classes) if classes else [f"class{i}" for i in range(model.config.num_classes)]
    weights = {k: v.numpy() for k, v in model.state_dict().items()}
    Bundle(model.config, weights, names, axis, pipeline or Pipeline([]), {}).save(directory)
    return Bundle.load(directory)


def make_bundle(directory: Path, length: int, name: str = "tiny", classes: int = 3) -> Bundle:
    """A random-BN bundle on an evenly spaced 400–1800 axis of ``length`` points."""
    model = random_pace(name, classes, seed=length)
    return save_bundle(directory, model, np.linspace(400.0, 1800.0, length))


def train_synthetic(
    root: Path, *, seed: int, per_class: int, test_per_class: int, epochs: int,
    calibration_fraction: float = 0.0,
) -> tuple[Path, Path]:
    """(data folder with train/test splits, tiny bundle trained briefly on its train split)
    on SYNTHETIC spectra with baseline removal and SNV; a ``calibration_fraction`` > 0 holds
    that share out to fit the "unknown" detector and temperature, as train's default does."""
    from pace_edge.data import load_dataset, make_synthetic, write_npy_folder
    from pace_edge.train import Recipe
    from pace_edge.train.bundle_training import train_bundle

    folder = write_npy_folder(root / "data", make_synthetic(n_per_class=per_class, seed=seed),
                              make_synthetic(n_per_class=test_per_class, seed=seed + 1))
    train_bundle(load_dataset(folder), preset("tiny", 3),
                 # by default all spectra in the fit, as these tests' thresholds were set on
                 # (the trust layer's calibration hold-out has its own tests)
                 Recipe(epochs=epochs, batch_size=32, lr=3e-3, seed=0,
                        calibration_fraction=calibration_fraction),
                 Pipeline.from_spec("baseline:asls,normalize:snv"), out=root / "bundle")
    return folder, root / "bundle"
