"""From a labelled data set to a saved bundle: preprocess, fit, record, save."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from ..bundle import Bundle, library_versions
from ..data import SpectralDataset, stratified_split
from ..model import ModelConfig
from ..preprocess import Pipeline
from .checkpoint import Checkpoint
from .distill import Teacher
from .recipe import Recipe
from .trainer import EpochCallback, FitResult, StopCheck, fit
from .trust_fit import fit_trust

CALIBRATION_SEED_OFFSET = 2_000


def calibration_split(y: np.ndarray, recipe: Recipe, groups: np.ndarray | None = None,
                      classes: list[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(fit_idx, calibration_idx)``: the stratified share ``recipe.calibration_fraction``
    of the training spectra that no fit (selection or refit) sees, seeded from the recipe;
    with ``groups`` (sample or patient ids), whole groups go to one side.

    The temperature and the "unknown" threshold are fitted on these, so they describe the
    final model on spectra it has never seen; the test data only measure.
    """
    if recipe.calibration_fraction == 0.0:
        return np.arange(len(y), dtype=np.int64), np.array([], dtype=np.int64)
    return stratified_split(y, recipe.calibration_fraction,
                            recipe.seed + CALIBRATION_SEED_OFFSET, groups=groups, classes=classes)


def train_bundle(
    data: SpectralDataset,
    config: ModelConfig,
    recipe: Recipe,
    pipeline: Pipeline,
    out: str | Path | None = None,
    on_epoch: EpochCallback | None = None,
    extra: dict[str, Any] | None = None,
    checkpoint: Checkpoint | None = None,
    stop: StopCheck | None = None,
    teacher: Teacher | None = None,
) -> tuple[Bundle, FitResult]:
    """Preprocess ``data`` with ``pipeline``, fit, and return (and save, if ``out``) the bundle.

    The recorded pipeline is anchored to the data's axis, so spectra from another axis are
    resampled onto the model's input grid. ``checkpoint`` and ``stop`` are passed to
    :func:`~pace_edge.train.trainer.fit` (save state as it goes, resume, stop on request).
    With ``teacher`` the model is distilled from it (:mod:`.distill`): the preprocessed axis
    and the classes must be the teacher's, and the bundle records the teacher's sha256 and the
    settings (``training.distillation``).
    """
    anchored = pipeline.anchored(data.axis)
    x, axis = anchored.apply(data.x, data.axis)
    fit_idx, calib_idx = calibration_split(data.y, recipe, data.groups, data.classes)
    prepared = replace(data, x=x, axis=axis).subset(fit_idx)
    if teacher is not None:
        teacher.check_student(data.classes, axis)
    result = fit(prepared, config, recipe, on_epoch=on_epoch, checkpoint=checkpoint,
                 stop=stop, teacher=teacher)
    weights = {k: v.detach().cpu().numpy() for k, v in result.model.state_dict().items()}
    trust, trust_arrays = fit_trust(result.model, x[fit_idx], data.y[fit_idx], x[calib_idx],
                                    data.y[calib_idx], data.x[calib_idx], recipe.accept_rate)
    weights.update(trust_arrays)
    training = {
        "recipe": recipe.to_dict(),
        "data": {"source": data.source, "spectra": len(data),
                 "class_counts": data.class_counts(),
                 "split": {**result.split, "calibration": int(len(calib_idx)),
                           **({"calibration_groups": int(np.unique(data.groups[calib_idx]).size)}
                              if data.groups is not None else {})},
                 "input_stats": {"mean": float(x.mean()), "std": float(x.std())}},
        "metrics": {"best_epoch": result.best_epoch, "epochs_run": result.epochs_run,
                    "refit_epochs": result.refit_epochs,
                    "val_accuracy": result.val_accuracy, "val_loss": result.val_loss,
                    "seconds": round(result.seconds, 2),
                    "selection_seconds": round(result.selection_seconds, 2)},
        "history": [{k: (round(v, 6) if isinstance(v, float) else v) for k, v in row.items()}
                    for row in result.history],
        "trust": trust.to_dict(),
        **({"distillation": teacher.record()} if teacher is not None else {}),
        **(extra or {}),
    }
    bundle = Bundle(
        config=config,
        weights=weights,
        classes=data.classes,
        axis=axis,
        preprocessing=anchored,
        training=training,
        versions=library_versions("torch", "safetensors", "scipy", "pybaselines"),
    )
    if out is not None:
        bundle.save(out)
    return bundle, result
