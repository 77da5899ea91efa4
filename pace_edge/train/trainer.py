"""Fit a PACE model: AdamW, cosine schedule, best-validation checkpoint, seeded.

The validation split comes from the training data alone; the test data never reaches this
module, so it cannot influence model selection.
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

from ..data import SpectralDataset, stratified_split
from ..errors import PaceEdgeError
from ..model import ModelConfig
from ..model.pace import PACE
from .augment import augment as augment_batch
from .recipe import Recipe

EpochCallback = Callable[[dict[str, Any]], None]


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


def seed_everything(seed: int) -> torch.Generator:
    """Seed torch's global RNG and return a generator for data order and augmentation."""
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def _evaluate(model: PACE, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    model.eval()
    with torch.no_grad():
        logits = torch.cat([model(x[i : i + 256]) for i in range(0, len(x), 256)])
    loss = float(F.cross_entropy(logits, y))
    return float((logits.argmax(1) == y).float().mean()), loss


def fit(
    train: SpectralDataset,
    config: ModelConfig,
    recipe: Recipe,
    on_epoch: EpochCallback | None = None,
) -> FitResult:
    """Train on ``train`` (already preprocessed); keep the best-validation-accuracy weights.

    Ties in validation accuracy go to the lower validation loss. ``on_epoch`` receives a dict
    with epoch, loss, val_accuracy, val_loss and lr after each epoch.
    """
    recipe.validate()
    if recipe.device == "cuda" and not torch.cuda.is_available():
        raise PaceEdgeError("--device cuda was asked for but torch sees no CUDA device")
    device = torch.device(recipe.device)
    g = seed_everything(recipe.seed)
    train_idx, val_idx = stratified_split(train.y, recipe.val_fraction, recipe.seed)
    if len(val_idx) == 0 or len(train_idx) == 0:
        raise PaceEdgeError(
            f"{train.source}: too few spectra ({len(train)}) for a validation split of "
            f"{recipe.val_fraction:g}"
        )

    def tensors(idx: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.as_tensor(train.x[idx], dtype=torch.float32, device=device)
        return x, torch.as_tensor(train.y[idx], device=device)

    xt, yt = tensors(train_idx)
    xv, yv = tensors(val_idx)
    model = PACE(config).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    t_max = recipe.t_max or recipe.epochs
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=t_max)
    best: tuple[float, float] = (-1.0, math.inf)
    best_state: dict[str, torch.Tensor] = {}
    best_epoch, stale, history = 0, 0, []
    start = time.perf_counter()
    for epoch in range(1, recipe.epochs + 1):
        model.train()
        order = torch.randperm(len(xt), generator=g).to(device)
        total, seen = 0.0, 0
        for b in range(0, len(order), recipe.batch_size):
            j = order[b : b + recipe.batch_size]
            xb = xt[j]
            if recipe.augment:
                xb = augment_batch(xb.cpu(), g).to(device)
            loss = F.cross_entropy(model(xb), yt[j], label_smoothing=recipe.label_smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * len(j)
            seen += len(j)
        lr = opt.param_groups[0]["lr"]
        sched.step()
        val_acc, val_loss = _evaluate(model, xv, yv)
        row = {"epoch": epoch, "loss": total / seen, "val_accuracy": val_acc,
               "val_loss": val_loss, "lr": lr}
        history.append(row)
        if (val_acc, -val_loss) > (best[0], -best[1]):
            best, best_epoch, stale = (val_acc, val_loss), epoch, 0
            best_state = copy.deepcopy(model.state_dict())
        else:
            stale += 1
        if on_epoch is not None:
            on_epoch({**row, "best_epoch": best_epoch, "best_val_accuracy": best[0]})
        if recipe.patience and stale >= recipe.patience:
            break
    model.load_state_dict(best_state)
    return FitResult(
        model=model.cpu().eval(),
        best_epoch=best_epoch,
        val_accuracy=best[0],
        val_loss=best[1],
        epochs_run=len(history),
        seconds=time.perf_counter() - start,
        history=history,
        split={"train": int(len(train_idx)), "validation": int(len(val_idx))},
    )
