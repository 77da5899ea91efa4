"""Fit a PACE model: AdamW, cosine schedule, best-validation checkpoint, seeded.

The validation split comes from the training data alone; the test data never reaches this
module, so it cannot influence model selection. With ``recipe.refit`` the number of epochs
chosen on validation is then used to retrain on all the training data, with the cosine
schedule compressed into that many epochs. With ``recipe.precise_bn`` the final model's
BatchNorm statistics are then recomputed on the un-augmented training spectra
(:func:`precise_batchnorm`).
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..data import SpectralDataset, group_record, stratified_folds, stratified_split
from ..errors import PaceEdgeError
from ..model import ModelConfig
from ..model.pace import PACE
from .augment import augment as augment_batch
from .recipe import Recipe

EpochCallback = Callable[[dict[str, Any]], None]

REFIT_SEED_OFFSET = 1_000


@dataclass
class FitResult:
    """The selected model and what happened while training it."""

    model: PACE
    best_epoch: int
    val_accuracy: float
    val_loss: float
    epochs_run: int
    seconds: float
    history: list[dict[str, float]] = field(default_factory=list)
    split: dict[str, int] = field(default_factory=dict)
    refit_epochs: int = 0


def seed_everything(seed: int) -> torch.Generator:
    """Seed torch's global RNG and return a generator for data order and augmentation."""
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def _tensors(data: SpectralDataset, idx: np.ndarray | slice,
             device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Spectra (float32) and labels of ``data[idx]`` on ``device``."""
    x = torch.as_tensor(data.x[idx], dtype=torch.float32, device=device)
    return x, torch.as_tensor(data.y[idx], device=device)


def _evaluate(model: PACE, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    model.eval()
    with torch.no_grad():
        logits = torch.cat([model(x[i : i + 256]) for i in range(0, len(x), 256)])
    loss = float(F.cross_entropy(logits, y))
    return float((logits.argmax(1) == y).float().mean()), loss


class _Run:
    """One training run: model, optimiser and schedule over a fixed set of spectra."""

    def __init__(
        self,
        config: ModelConfig,
        recipe: Recipe,
        device: torch.device,
        seed: int,
        t_max: int | None = None,
    ):
        self.recipe, self.device = recipe, device
        self.g = seed_everything(seed)
        self.model = PACE(config).to(device)
        self.opt = torch.optim.AdamW(
            self.model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay
        )
        self.sched = torch.optim.lr_scheduler.CosineAnnealingLR(
            self.opt, T_max=t_max or recipe.t_max or recipe.epochs
        )

    def epoch(self, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
        """Train one epoch; return (mean loss, learning rate used)."""
        r = self.recipe
        self.model.train()
        order = torch.randperm(len(x), generator=self.g).to(self.device)
        total = 0.0
        for b in range(0, len(order), r.batch_size):
            j = order[b : b + r.batch_size]
            xb = augment_batch(x[j].cpu(), self.g).to(self.device) if r.augment else x[j]
            loss = F.cross_entropy(self.model(xb), y[j], label_smoothing=r.label_smoothing)
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
            total += loss.item() * len(j)
        lr = self.opt.param_groups[0]["lr"]
        self.sched.step()
        return total / len(x), lr


@torch.no_grad()
def precise_batchnorm(model: PACE, x: torch.Tensor, batch_size: int = 512) -> None:
    """Replace every BatchNorm's running mean and variance by the statistics of ``model``'s
    final weights on ``x`` (the mean over near-equal chunks of at most ``batch_size``, so
    every spectrum weighs about the same).

    During training they are an exponential average over augmented mini-batches, taken while
    the weights were still moving; spectra at inference are neither augmented nor produced by
    earlier weights, and the mismatch shifts every normalised activation. Dropout stays off
    while the statistics are gathered, as it is at inference. Leaves ``model`` in eval mode.
    """
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in norms]
    model.eval()
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the batches below
        m.train()
    for chunk in torch.tensor_split(x, max(1, math.ceil(len(x) / batch_size))):
        model(chunk)
    for m, momentum in zip(norms, momenta, strict=True):
        m.momentum = momentum
    model.eval()


def smoothed_choice(history: list[dict[str, float]], window: int) -> tuple[int, tuple[float,
                                                                                     float]]:
    """The epoch whose centred ``window``-epoch moving average of validation accuracy is
    highest (ties: lowest averaged validation loss), with those averages.

    One validation spectrum moves the accuracy of a small split by a percentage point, so the
    single best epoch is partly luck; a plateau of good epochs is a steadier choice of how long
    to train. Windows are cut short at the ends of the run.
    """
    acc = np.array([row["val_accuracy"] for row in history], dtype=np.float64)
    loss = np.array([row["val_loss"] for row in history], dtype=np.float64)
    half = window // 2
    best_key, best_i = (-math.inf, -math.inf), 0
    for i in range(len(history)):
        lo, hi = max(0, i - half), min(len(history), i + half + 1)
        key = (float(acc[lo:hi].mean()), -float(loss[lo:hi].mean()))
        if key > best_key:
            best_key, best_i = key, i
    return int(history[best_i]["epoch"]), (best_key[0], -best_key[1])


def fit(
    train: SpectralDataset,
    config: ModelConfig,
    recipe: Recipe,
    on_epoch: EpochCallback | None = None,
) -> FitResult:
    """Train on ``train`` (already preprocessed); keep the best-validation-accuracy weights.

    Ties in validation accuracy go to the lower validation loss. With ``select_window`` > 1
    the epoch count is chosen on the moving average (:func:`smoothed_choice`) and the refit
    trains for it; with ``select_folds`` > 1 it is chosen on k folds (:func:`_fit_k_fold`).
    ``on_epoch`` receives a dict with phase ("select", "select fold i/k" or "refit"), epoch,
    loss, lr and, while selecting, val_accuracy and val_loss.
    """
    recipe.validate()
    if recipe.device == "cuda" and not torch.cuda.is_available():
        raise PaceEdgeError("--device cuda was asked for but torch sees no CUDA device")
    device = torch.device(recipe.device)
    if recipe.select_folds > 1:
        return _fit_k_fold(train, config, recipe, device, on_epoch)
    train_idx, val_idx = stratified_split(train.y, recipe.val_fraction, recipe.seed,
                                          groups=train.groups, classes=train.classes)
    if len(val_idx) == 0 or len(train_idx) == 0:
        raise PaceEdgeError(
            f"{train.source}: too few spectra ({len(train)}) for a validation split of "
            f"{recipe.val_fraction:g}"
        )

    xt, yt = _tensors(train, train_idx, device)
    xv, yv = _tensors(train, val_idx, device)
    run = _Run(config, recipe, device, recipe.seed)
    best: tuple[float, float] = (-1.0, math.inf)
    best_state: dict[str, torch.Tensor] = {}
    best_epoch, stale, history = 0, 0, []
    start = time.perf_counter()
    for epoch in range(1, recipe.epochs + 1):
        loss, lr = run.epoch(xt, yt)
        val_acc, val_loss = _evaluate(run.model, xv, yv)
        row = {"epoch": epoch, "loss": loss, "val_accuracy": val_acc, "val_loss": val_loss,
               "lr": lr}
        history.append(row)
        if (val_acc, -val_loss) > (best[0], -best[1]):
            best, best_epoch, stale = (val_acc, val_loss), epoch, 0
            best_state = copy.deepcopy(run.model.state_dict())
        else:
            stale += 1
        if on_epoch is not None:
            on_epoch({"phase": "select", **row, "best_epoch": best_epoch,
                      "best_val_accuracy": best[0]})
        if recipe.patience and stale >= recipe.patience:
            break
    model = run.model
    model.load_state_dict(best_state)
    if recipe.select_window > 1:  # the refit only needs the epoch count
        best_epoch, best = smoothed_choice(history, recipe.select_window)
    refit_epochs = 0
    if recipe.refit:
        model, refit_epochs = _refit(train, config, recipe, device, best_epoch, on_epoch)
    elif recipe.precise_bn:
        precise_batchnorm(model, xt)
    return FitResult(
        model=model.cpu().eval(),
        best_epoch=best_epoch,
        val_accuracy=best[0],
        val_loss=best[1],
        epochs_run=len(history),
        seconds=time.perf_counter() - start,
        history=history,
        split={"train": int(len(train_idx)), "validation": int(len(val_idx)),
               **group_record(train.groups, [train_idx, val_idx])},
        refit_epochs=refit_epochs,
    )


def _refit(train: SpectralDataset, config: ModelConfig, recipe: Recipe, device: torch.device,
           epochs: int, on_epoch: EpochCallback | None) -> tuple[PACE, int]:
    """Train on all of ``train`` for ``epochs``, the whole cosine schedule fitted into them
    (so the model ends annealed instead of being cut off at a high learning rate)."""
    xa, ya = _tensors(train, slice(None), device)
    refit = _Run(config, recipe, device, recipe.seed + REFIT_SEED_OFFSET, t_max=epochs)
    for epoch in range(1, epochs + 1):
        loss, lr = refit.epoch(xa, ya)
        if on_epoch is not None:
            on_epoch({"phase": "refit", "epoch": epoch, "loss": loss, "lr": lr,
                      "epochs": epochs})
    if recipe.precise_bn:
        precise_batchnorm(refit.model, xa)
    return refit.model, epochs


def _fit_k_fold(train: SpectralDataset, config: ModelConfig, recipe: Recipe,
                device: torch.device, on_epoch: EpochCallback | None) -> FitResult:
    """Choose the epoch count on the mean validation curve of ``select_folds`` folds (each
    spectrum validates once), then refit on everything for that many epochs.

    Every fold trains for ``epochs`` from its own seed; the choice is the epoch of highest
    mean validation accuracy (ties: lowest mean validation loss), smoothed by
    ``select_window`` when that is above 1.
    """
    k = recipe.select_folds
    folds = stratified_folds(train.y, k, recipe.seed, groups=train.groups,
                             classes=train.classes)
    acc = np.zeros((k, recipe.epochs))
    loss = np.zeros((k, recipe.epochs))
    start = time.perf_counter()
    for f, (train_idx, val_idx) in enumerate(folds):
        xt, yt = _tensors(train, train_idx, device)
        xv, yv = _tensors(train, val_idx, device)
        run = _Run(config, recipe, device, recipe.seed + f)
        for epoch in range(1, recipe.epochs + 1):
            train_loss, lr = run.epoch(xt, yt)
            acc[f, epoch - 1], loss[f, epoch - 1] = _evaluate(run.model, xv, yv)
            if on_epoch is not None:
                on_epoch({"phase": f"select fold {f + 1}/{k}", "epoch": epoch,
                          "loss": train_loss, "val_accuracy": acc[f, epoch - 1],
                          "val_loss": loss[f, epoch - 1], "lr": lr})
    history = [{"epoch": e + 1, "val_accuracy": float(acc[:, e].mean()),
                "val_loss": float(loss[:, e].mean()),
                "fold_val_accuracy": [float(a) for a in acc[:, e]]}
               for e in range(recipe.epochs)]
    best_epoch, (val_acc, val_loss) = smoothed_choice(history, recipe.select_window)
    model, refit_epochs = _refit(train, config, recipe, device, best_epoch, on_epoch)
    return FitResult(
        model=model.cpu().eval(),
        best_epoch=best_epoch,
        val_accuracy=val_acc,
        val_loss=val_loss,
        epochs_run=recipe.epochs,
        seconds=time.perf_counter() - start,
        history=history,
        split={"train": int(len(train)), "validation": int(len(train)), "folds": k,
               **group_record(train.groups, [v for _, v in folds])},
        refit_epochs=refit_epochs,
    )
